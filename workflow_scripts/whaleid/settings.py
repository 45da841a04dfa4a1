"""The settings of each model stage, as `config.yaml` spells them: the one place of their defaults.

A stage that takes many settings takes them as one frozen dataclass whose fields are the keys
of its `config.yaml` section that it reads, and no others: Snakemake reruns a job when one of
its params changes, so a stage must not be handed a setting it does not use. The rules build
their ``params: settings=`` from the fields (`StageSettings.from_config`), the rule script
rebuilds the dataclass from them, and a test or a notebook starts from `config.yaml`'s values
with `defaults` and changes what it needs. The package's functions have no defaults of their
own for these values, so no default can drift from `config.yaml`.

Standard library only: the Snakefile imports it, and `snakemake -n` must stay fast.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from whaleid.vocabulary import (
    AGGREGATES,
    CALIBRATIONS,
    CLASS_WEIGHTS,
    EMBEDDING_BACKBONES,
    IMAGENET_BACKBONES,
    INPUT_KINDS,
    NEW_WHALE_MODES,
    OPTIMIZERS,
    SHORTLIST_BY,
    TRANSFORMS,
    check_choice,
)

CONFIG_YAML = Path(__file__).resolve().parents[2] / "config.yaml"
# The settings for a machine without a GPU or internet, merged over config.yaml's.
CPU_PRESET = CONFIG_YAML.parent / "presets" / "cpu.yaml"
# Digits kept of a grid's thresholds: 0.1 * 3 is 0.30000000000000004, which reads badly in a curve.
THRESHOLD_DIGITS = 6

def threshold_grid(start: float, stop: float, step: float) -> list[float]:
    """`start`, `start` + `step`, ... up to `stop` included (when the steps reach it), each
    rounded to `THRESHOLD_DIGITS` decimals: a grid of new_whale thresholds as config.yaml
    gives it ({start, stop, step})."""
    if not all(math.isfinite(v) for v in (start, stop, step)):
        raise ValueError(f"threshold grid bounds must be finite, got start {start}, stop {stop}, step {step}")
    if step <= 0:
        raise ValueError(f"threshold grid step must be positive, got {step}")
    if stop < start:
        raise ValueError(f"threshold grid stop {stop} is below its start {start}")
    # The tolerance lets (0.9 - 0.3) / 0.05 = 11.999999999999998 count as the 12 steps it means.
    n_steps = math.floor((stop - start) / step + 1e-9)
    # + 0.0 turns a rounded -0.0 into 0.0.
    return [round(start + i * step, THRESHOLD_DIGITS) + 0.0 for i in range(n_steps + 1)]


def _at_least(settings: Any, minimum: float, *names: str) -> None:
    for name in names:
        if getattr(settings, name) < minimum:
            raise ValueError(f"{name} must be at least {minimum:g}, got {getattr(settings, name)}")


@dataclasses.dataclass(frozen=True)
class StageSettings:
    """What every stage's settings can do; `SECTION` names their config.yaml section."""

    SECTION: ClassVar[str]

    @classmethod
    def keys(cls) -> list[str]:
        """The config keys the stage reads."""
        return [field.name for field in dataclasses.fields(cls)]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]):
        """The stage's settings from a whole config (its `SECTION` read)."""
        section = config[cls.SECTION]
        return cls(**{key: section[key] for key in cls.keys()})

    @classmethod
    def defaults(cls, *configfiles: str | Path, **changes):
        """config.yaml's settings of the stage with `configfiles` (presets/cpu.yaml, say) merged
        over it key by key, as Snakemake's ``--configfile`` merges them, then `changes`."""
        import yaml  # not for the Snakefile, which has the config already

        config = yaml.safe_load(CONFIG_YAML.read_text())
        for path in configfiles:
            config = _merged(config, yaml.safe_load(Path(path).read_text()) or {})
        return dataclasses.replace(cls.from_config(config), **changes)


def _merged(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        merged[key] = _merged(base.get(key, {}), value) if isinstance(value, Mapping) else value
    return merged


@dataclasses.dataclass(frozen=True)
class AutoencoderSettings(StageSettings):
    """How the autoencoder trains (config.yaml's ``autoencoder``): `epochs` of `batch_size` images
    by the `optimizer` (adam at `learning_rate`, or the published one), its loss checked on a held-out
    `validation_fraction`, the others rotated and shifted where `augment` (mirrored where `flip`)."""

    SECTION: ClassVar[str] = "autoencoder"
    epochs: int
    batch_size: int
    optimizer: str
    learning_rate: float

    # the images held out for the validation loss, and how the others are varied
    validation_fraction: float
    augment: bool
    flip: bool

    mixed_precision: bool
    seed: int

    def __post_init__(self):
        _at_least(self, 1, "epochs", "batch_size")
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")


@dataclasses.dataclass(frozen=True)
class ModelSettings(StageSettings):
    """What the classifier and the embedding share: a `backbone` (its `weights`: imagenet, none
    or a weights file) over the autoencoder's codes or the preprocessed images (`input`),
    resized to `input_size` inside the model (null: as they are), trained in batches of
    `batch_size` with `dropout` before its head and augmentation (`augment`), in mixed precision
    on a GPU (`mixed_precision`), from `seed`."""

    BACKBONES: ClassVar[tuple[str, ...]] = IMAGENET_BACKBONES
    backbone: str
    weights: str | None

    input: str
    input_size: int | None

    batch_size: int
    dropout: float
    augment: bool
    mixed_precision: bool
    seed: int

    def __post_init__(self):
        check_choice("backbone", self.backbone, self.BACKBONES)
        check_choice("input", self.input, INPUT_KINDS)
        _at_least(self, 1, "batch_size")


@dataclasses.dataclass(frozen=True)
class ClassifierSettings(ModelSettings):
    """How the published classifier trains (config.yaml's ``classifier``): its head alone first,
    then the top `fine_tune_layers` of its base too; its classes weighted for their imbalance;
    each epoch scored by validation MAP@5 over its `new_whale_thresholds`."""

    SECTION: ClassVar[str] = "classifier"

    # phase 1: the head alone, the base frozen
    head_epochs: int
    head_learning_rate: float

    # phase 2: the top of the base too
    fine_tune_epochs: int
    fine_tune_learning_rate: float
    fine_tune_layers: int

    # the imbalance of the classes, and new_whale's photos
    class_weights: str
    effective_beta: float
    new_whale: str

    flip: bool
    new_whale_thresholds: Sequence[float]

    def __post_init__(self):
        super().__post_init__()
        check_choice("class_weights", self.class_weights, CLASS_WEIGHTS)
        check_choice("new_whale", self.new_whale, NEW_WHALE_MODES)
        _at_least(self, 0, "head_epochs", "fine_tune_epochs", "fine_tune_layers")
        if self.head_epochs + self.fine_tune_epochs < 1:
            raise ValueError(f"epochs must be 0 or more and at least one in all, got head {self.head_epochs}, "
                             f"fine-tune {self.fine_tune_epochs}")
        if not self.new_whale_thresholds:
            raise ValueError("new_whale_thresholds is empty: no threshold to choose on validation")

    @property
    def thresholds(self) -> list[float]:
        return [float(t) for t in self.new_whale_thresholds]


@dataclasses.dataclass(frozen=True)
class MetricLearningSettings(ModelSettings):
    """How the metric-learning embedding trains (config.yaml's ``metric_learning``): a sub-center
    ArcFace head over an `embedding_size` projection, batches drawn to balance the individuals,
    each epoch scored by validation MAP@5 of retrieval as identification will do it."""

    SECTION: ClassVar[str] = "metric_learning"
    BACKBONES: ClassVar[tuple[str, ...]] = EMBEDDING_BACKBONES
    width: int
    embedding_size: int

    # the sub-center ArcFace head
    sub_centers: int
    margin: float
    scale: float

    epochs: int
    learning_rate: float
    warmup_epochs: int

    # which photos a batch holds
    balance_power: float
    flip_as_new_identity: bool

    # how an individual is scored on validation, as identification will score it
    aggregate: str
    top_k: int
    new_whale_thresholds: Mapping[str, float]

    def __post_init__(self):
        super().__post_init__()
        check_choice("aggregate", self.aggregate, AGGREGATES)
        _at_least(self, 1, "epochs", "width", "sub_centers", "top_k")
        _at_least(self, 2, "embedding_size")
        threshold_grid(**self.new_whale_thresholds)  # a wrong grid fails now, before any work

    @property
    def thresholds(self) -> list[float]:
        return threshold_grid(**self.new_whale_thresholds)


@dataclasses.dataclass(frozen=True)
class KeypointSettings(StageSettings):
    """How the local method finds keypoints (config.yaml's ``local``). `n_features`: at most
    this many per photo, the strongest; `image_size`: side of the preprocessed square they are
    found on, resized; `max_side`: where set, they are found on the original photo instead,
    decoded with its long side at most this; `contrast_threshold`: SIFT's, lower finds more in
    flat images; `border`: keypoints this share of the side or less from the padding (or the
    image edge) are dropped; `upright`: orientation 0 for every keypoint; `detected_per_kept`:
    above 1, each photo's `n_features` times this strongest are found (`detected`), and the
    `n_features` the foreground model finds likeliest on the animal are kept
    (`keypoints.keep_on_animal`)."""

    SECTION: ClassVar[str] = "local"
    n_features: int
    image_size: int
    max_side: int | None
    contrast_threshold: float
    border: float
    upright: bool
    detected_per_kept: int

    def __post_init__(self):
        _at_least(self, 1, "n_features")
        _at_least(self, 1, "detected_per_kept")
        _at_least(self, 32, "image_size")
        if self.max_side is not None:
            _at_least(self, 32, "max_side")
        if not 0 <= self.border < 0.5:
            raise ValueError(f"border must be a share of the side in [0, 0.5), got {self.border}")
        if self.contrast_threshold <= 0:
            raise ValueError(f"contrast_threshold must be positive, got {self.contrast_threshold}")

    @property
    def detected(self) -> int:
        """Keypoints found per photo, the strongest: the slots of the keypoint cache."""
        return self.n_features * self.detected_per_kept

    @property
    def side(self) -> int:
        """The side of the square whose pixels keypoint positions are in: the photo centred in
        it as preprocessing centres it, so that every photo's positions compare."""
        return self.image_size if self.max_side is None else self.max_side


@dataclasses.dataclass(frozen=True)
class MatchSettings(StageSettings):
    """How the local method matches (config.yaml's ``local``). `neighbours`: catalogue
    descriptors each query descriptor votes with; `nprobe`: inverted lists searched per
    descriptor; `shortlist`: individuals verified per query; `shortlist_by`: ``photo`` (an
    individual's best photo's votes) or ``individual`` (all its photos'); `photos_per_individual`: of each,
    the photos verified (most votes first); `ratio`: Lowe's ratio test in verification;
    `transform`: the model RANSAC fits; `reprojection_error`: how far (share of the image side)
    an inlier may land from where the transform puts it; `ransac_iterations`: RANSAC's most;
    `guided_ratio`: guided matching's test along the fitted transform (`geometry.guided_matches`);
    `query_block`: queries whose descriptors are searched in one faiss call; `compress_above`:
    catalogue descriptors above which the index holds them in 8 bits a component (None: never)."""

    SECTION: ClassVar[str] = "local"

    # the shortlist by votes
    neighbours: int
    nprobe: int
    compress_above: int | None
    shortlist: int
    shortlist_by: str

    # the geometric check
    photos_per_individual: int
    ratio: float
    transform: str
    reprojection_error: float
    ransac_iterations: int
    guided_ratio: float

    # how the work is cut
    query_block: int

    def __post_init__(self):
        check_choice("transform", self.transform, TRANSFORMS)
        check_choice("shortlist_by", self.shortlist_by, SHORTLIST_BY)
        _at_least(self, 1, "neighbours", "shortlist", "photos_per_individual", "nprobe", "ransac_iterations",
                  "query_block")
        if self.compress_above is not None and self.compress_above < 0:
            raise ValueError(f"compress_above must be a count of descriptors or null, got {self.compress_above}")
        if not 0 < self.ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], got {self.ratio}")
        if not 0 < self.guided_ratio <= 1:
            raise ValueError(f"guided_ratio must be in (0, 1], got {self.guided_ratio}")
        if self.reprojection_error <= 0:
            raise ValueError(f"reprojection_error must be positive, got {self.reprojection_error}")


@dataclasses.dataclass(frozen=True)
class ForegroundSettings(StageSettings):
    """How the local method learns which keypoints lie on the animal (config.yaml's
    ``foreground``, where ``local.foreground`` is ``learned``). `folds`: the fit photos are
    matched fold by fold against the rest; `max_queries`: at most this many of them asked
    (None: all), each against all of the other folds' photos; `positives`: of each, its own
    individual's photos checked (most votes first); `negatives`: the other individuals' photos
    with most votes checked; `seed`: the folds', the queries' and the trees'."""

    SECTION: ClassVar[str] = "foreground"
    folds: int
    max_queries: int | None
    positives: int
    negatives: int
    seed: int

    def __post_init__(self):
        _at_least(self, 2, "folds")
        if self.max_queries is not None:
            _at_least(self, 1, "max_queries")
        _at_least(self, 1, "positives")
        _at_least(self, 1, "negatives")


@dataclasses.dataclass(frozen=True)
class VerifierSettings(StageSettings):
    """How the local method's verifier learns (config.yaml's ``verifier``). `folds`: the fit
    photos are matched fold by fold against the rest; `max_queries`: at most this many of them
    asked (None: all); `calibration`: ``isotonic``, ``sigmoid`` or ``auto``; `seed`: the
    folds', the queries' and the trees'."""

    SECTION: ClassVar[str] = "verifier"
    folds: int
    max_queries: int | None
    calibration: str
    seed: int

    def __post_init__(self):
        check_choice("calibration", self.calibration, CALIBRATIONS)
        _at_least(self, 2, "folds")
        if self.max_queries is not None:
            _at_least(self, 1, "max_queries")
