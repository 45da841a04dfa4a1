"""The published transfer-learning classifier: an ImageNet CNN fine-tuned to name individuals.

The write-up feeds the autoencoder's 3-channel codes to VGG19 (or ResNet50) without its top,
adds global average pooling, dropout and a softmax over the individuals, trains the new head
with the base frozen, then fine-tunes the top of the base at a lower learning rate. This
module does that for "vgg19" and "resnet50", and for "mobilenetv2", light enough for a CPU.

Where it differs from the write-up, and why:
- The codes have no fixed range (ReLU outputs), but every backbone's `preprocess_input`
  expects 0..255 pixels: each channel is scaled so that its 99.9th percentile over the fit
  images becomes 255, clipped (`code_scale`, the `to_pixels` layer). The scale is part of the
  saved model, so prediction cannot use another. `input_kind="images"` feeds the preprocessed
  grey images instead (one channel repeated to three).
- Augmentation on the fly (rotation, shift, zoom, brightness), without horizontal flips unless
  asked: a mirrored fluke is another animal's pattern.
- `new_whale` is not a softmax class by default (its photos are of many animals): it is
  inserted among the five answers where the model's confidence falls below a threshold,
  chosen on validation by MAP@5 (`sweep_new_whale_threshold`). Photos that are duplicates of
  catalogue photos (the baseline's test) keep their id first.
- The best epoch is chosen by validation MAP@5, the competition's score, not by loss.
- Training streams from the memory-mapped arrays and resumes after a kill (`training`).

Import this module only after `devices.select_devices` has chosen the job's GPUs: it imports
TensorFlow, which fixes the visible devices when it first initialises CUDA.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from . import ranking
from .files import write_text
from .ingest import NEW_WHALE
# The TensorFlow-free part, which the Snakefile uses too; re-exported for the callers of this module.
from .pretrained import (IMAGENET_BACKBONES, MissingWeightsError, backbone_side, check_choice,
                         imagenet_weights, keras_models_dir, placement_advice)
from .ranking import Candidates, Duplicates, insert_new_whale
from .submission import N_ANSWERS
from .tables import fit_and_validation, read_table, train_table, with_hashes
from .training import (ArrayRows, BestWeights, build_scope, check_model_path, file_identity, final_history,
                       finish_training, fit_resumably, prepare_backup, row_batches, settings_key)

log = logging.getLogger(__name__)

BACKBONES = IMAGENET_BACKBONES
INPUT_KINDS = ("codes", "images")
CLASS_WEIGHTS = ("none", "inverse", "effective")
NEW_WHALE_MODES = ("exclude", "class")
# The backbones' smallest input side without their top (keras.applications refuses less).
MIN_SIDE = 32
CODE_PERCENTILE = 99.9
# Enough pixels for a stable 99.9th percentile, few enough to read quickly at 224x224x3.
SCALE_SAMPLE_IMAGES = 128
ROTATION_DEGREES = 15.0
SHIFT_FRACTION = 0.1
ZOOM_FRACTION = 0.1
BRIGHTNESS_FRACTION = 0.1
# new_whale goes at the first rank whose candidate's probability is below the threshold:
# finer steps at the low end, where the probabilities of a softmax over thousands of ids lie.
DEFAULT_THRESHOLDS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
MONITOR = "val_map5"

_APPLICATIONS = {
    "vgg19": (keras.applications.VGG19, keras.applications.vgg19.preprocess_input),
    "resnet50": (keras.applications.ResNet50, keras.applications.resnet50.preprocess_input),
    "mobilenetv2": (keras.applications.MobileNetV2, keras.applications.mobilenet_v2.preprocess_input),
}
# ---------------------------------------------------------------------------------- backbones


def fetch_imagenet_weights(backbone: str, side: int) -> Path:
    """The local path of `backbone`'s ImageNet weights, downloaded into `keras_models_dir` if
    not there yet. Raises MissingWeightsError, saying which file to put where, if the download
    fails (an offline machine)."""
    spec = imagenet_weights(backbone, side)
    folder = keras_models_dir()
    try:
        # Keras falls back to /tmp/.keras when the folder does not exist yet: make it, so the
        # file lands (and is looked for) where the error message says.
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    try:
        return Path(keras.utils.get_file(spec.file_name, spec.url, cache_dir=str(folder.parent),
                                         cache_subdir=folder.name, file_hash=spec.md5))
    except Exception as error:  # Keras wraps URLError, HTTPError and hash failures in several types
        staged = folder / spec.file_name
        present = (f" A file {staged} is there, but its MD5 is not {spec.md5}: it is incomplete or another file."
                   if staged.exists() else "")
        raise MissingWeightsError(
            f"the ImageNet weights of {backbone} are not in the Keras cache and could not be downloaded "
            f"({type(error).__name__}: {error}).{present} {placement_advice(spec, folder)} (Keras looks in "
            f"$KERAS_HOME/models/ when KERAS_HOME is set, else in ~/.keras/models/; the workflow's rule "
            f"stage_weights puts it in keras_home/models/ on the submit host). Or set weights to the path of a local "
            f"weights file, or to none to train from scratch.") from error


def resolve_weights(weights: str | Path | None) -> str | Path | None:
    """None for no pre-trained weights (None or "none"), "imagenet", or a local file's path."""
    if weights is None or str(weights).lower() == "none":
        return None
    if str(weights).lower() == "imagenet":
        return "imagenet"
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} not found (weights must be imagenet, none or a file path)")
    return path


def build_backbone(backbone: str, weights: str | Path | None, input_shape: tuple[int, int, int]) -> keras.Model:
    """`backbone` without its top, for `input_shape` (side at least 32), named ``base``.

    `weights`: "imagenet" (from the Keras cache, downloaded if missing), None or "none"
    (random), or a path to a weights file of the same backbone without top: a
    ``.weights.h5`` as ``model.save_weights`` writes it, or a keras.applications ``.h5``.
    """
    check_choice("backbone", backbone, BACKBONES)
    if min(input_shape[:2]) < MIN_SIDE:
        raise ValueError(f"{backbone} needs inputs of at least {MIN_SIDE}x{MIN_SIDE}, got {input_shape[:2]}: "
                         "set input_size to resize them")
    weights = resolve_weights(weights)
    if weights == "imagenet":
        # Fetched here rather than by keras.applications, so that a failure can say what to do.
        weights = fetch_imagenet_weights(backbone, input_shape[0])
    application, _ = _APPLICATIONS[backbone]
    return application(include_top=False, weights=None if weights is None else str(weights),
                       input_shape=tuple(input_shape), name="base")


# ---------------------------------------------------------------------------------- model


@keras.saving.register_keras_serializable(package="whaleid")
class ToPixels(keras.layers.Layer):
    """Model inputs to the 0..255 three-channel pictures the backbones expect: each channel
    times its `scale`, clipped to 0..255; a single (grey) channel repeated to three."""

    def __init__(self, scale: Sequence[float], **kwargs):
        super().__init__(**kwargs)
        self.scale = [float(s) for s in scale]

    def build(self, input_shape) -> None:
        if input_shape[-1] != len(self.scale):
            raise ValueError(f"{input_shape[-1]} input channels but {len(self.scale)} scales")

    def call(self, x):
        x = keras.ops.clip(x * keras.ops.convert_to_tensor(self.scale, dtype=x.dtype), 0.0, 255.0)
        return keras.ops.repeat(x, 3, axis=-1) if len(self.scale) == 1 else x

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="whaleid")
class BackbonePreprocessing(keras.layers.Layer):
    """``keras.applications.<backbone>.preprocess_input`` as a layer, so the saved model carries
    it (a Lambda layer would not load in safe mode)."""

    def __init__(self, backbone: str, **kwargs):
        super().__init__(**kwargs)
        check_choice("backbone", backbone, BACKBONES)
        self.backbone = backbone

    def call(self, x):
        return _APPLICATIONS[self.backbone][1](x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "backbone": self.backbone}


def build_augmentation(*, flip: bool = False, seed: int = 0) -> keras.Sequential:
    """Random rotation, shift, zoom and brightness of 0..255 pictures (black where no pixel comes
    from, like the padding of the preprocessed squares); horizontal flips only with `flip`.
    Active only in training."""
    layers = [
        # Brightness first: after the geometric moves it would lift the black fill too.
        keras.layers.RandomBrightness(BRIGHTNESS_FRACTION, value_range=(0.0, 255.0), seed=seed, dtype="float32",
                                      name="brightness"),
        keras.layers.RandomRotation(ROTATION_DEGREES / 360.0, fill_mode="constant", fill_value=0.0, seed=seed + 1,
                                    dtype="float32", name="rotate"),
        keras.layers.RandomTranslation(SHIFT_FRACTION, SHIFT_FRACTION, fill_mode="constant", fill_value=0.0,
                                       seed=seed + 2, dtype="float32", name="shift"),
        keras.layers.RandomZoom(ZOOM_FRACTION, fill_mode="constant", fill_value=0.0, seed=seed + 3, dtype="float32",
                                name="zoom"),
    ]
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 4, dtype="float32", name="flip"))
    return keras.Sequential(layers, name="augmentation")


def build_classifier(input_shape: tuple[int, ...], n_classes: int, *, backbone: str,
                     weights: str | Path | None, scale: Sequence[float], input_size: int | None = None,
                     dropout: float = 0.5, augment: bool = True, flip: bool = False, seed: int = 0) -> keras.Model:
    """input (codes (s, s, 3) or grey images (S, S, 1)) -> ``to_pixels`` -> [``augmentation``]
    -> [``resize`` to `input_size`] -> ``preprocess`` -> ``base`` (the backbone, without top)
    -> ``pool`` (global average) -> ``dropout`` -> ``probabilities`` (softmax over `n_classes`,
    float32 even under mixed precision). The layers before the base compute in float32."""
    if n_classes < 1:
        raise ValueError(f"n_classes must be at least 1, got {n_classes}")
    inputs = keras.Input(tuple(input_shape), name="input")
    x = ToPixels(scale, dtype="float32", name="to_pixels")(inputs)
    if augment:
        x = build_augmentation(flip=flip, seed=seed)(x)
    if input_size:
        x = keras.layers.Resizing(input_size, input_size, dtype="float32", name="resize")(x)
    side = backbone_side(input_shape[0], input_size)  # as the Snakefile works it out for stage_weights
    x = BackbonePreprocessing(backbone, dtype="float32", name="preprocess")(x)
    base = build_backbone(backbone, weights, (side, side, 3))
    # training=False keeps the base's batch normalisation in inference mode while it is
    # fine-tuned: its statistics came from ImageNet and a small batch of whales would wreck them.
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(dropout, seed=seed, name="dropout")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"{backbone}_classifier")


def freeze_base(model: keras.Model) -> None:
    """Phase 1: only the head (the layers after the base) trains."""
    model.get_layer("base").trainable = False


def unfreeze_top(model: keras.Model, n_layers: int) -> None:
    """Phase 2: the last `n_layers` layers of the base train too, except batch normalisation."""
    if n_layers < 0:
        raise ValueError(f"fine_tune_layers must be 0 or more, got {n_layers}")
    base = model.get_layer("base")
    base.trainable = True
    first = len(base.layers) - n_layers
    for position, layer in enumerate(base.layers):
        layer.trainable = position >= first and not isinstance(layer, keras.layers.BatchNormalization)


def compile_classifier(model: keras.Model, learning_rate: float) -> None:
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])


def load_classifier(path: str | Path) -> keras.Model:
    """A saved classifier, for prediction (not compiled). Safe mode: its only custom layers are
    this module's registered ones, no Lambda."""
    return keras.models.load_model(path, safe_mode=True, compile=False)


# ---------------------------------------------------------------------------------- labels


def save_labels(path: str | Path, class_ids: Sequence[str], **details) -> None:
    """The label encoding (class index -> id, in ``classes``) as JSON, with `details` (settings
    a reader may want: backbone, input, scale) beside it."""
    write_text(json.dumps({"classes": list(class_ids), **details}, indent=1) + "\n", path)


def load_labels(path: str | Path) -> list[str]:
    """The ids of the model's classes, in class-index order."""
    return list(json.loads(Path(path).read_text())["classes"])


def class_weights(counts: Sequence[int] | np.ndarray, method: str, beta: float = 0.999) -> np.ndarray:
    """A weight per class from its number of training images, normalised to mean 1.

    "none": all 1. "inverse": proportional to 1/n. "effective": proportional to 1/E_n, the
    inverse effective number of samples E_n = (1 - beta^n) / (1 - beta) (Cui et al. 2019,
    "Class-balanced loss based on effective number of samples"): beta 0 weighs classes
    equally, beta near 1 approaches "inverse".
    """
    check_choice("class_weights", method, CLASS_WEIGHTS)
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or not len(counts) or (counts < 1).any():
        raise ValueError(f"counts must be a vector of positive numbers, got {counts}")
    if method == "none":
        return np.ones_like(counts)
    if method == "inverse":
        raw = 1.0 / counts
    else:
        if not 0 <= beta < 1:
            raise ValueError(f"effective_beta must be in [0, 1), got {beta}")
        raw = (1.0 - beta) / (1.0 - beta ** counts)
    return raw / raw.mean()


# ---------------------------------------------------------------------------------- answers
# The probability-specific part; inserting new_whale and choosing its threshold is `ranking`'s.


def rank_candidates(probabilities: np.ndarray, class_ids: Sequence[str]) -> Candidates:
    """The `Candidates` of each row of `probabilities` (N, classes): the four likeliest known
    ids, and the probability of the new_whale class as ``own`` (zeros when it is not a class).
    Ties go to the earlier class."""
    ids = np.asarray(class_ids, dtype=object)
    probabilities = np.asarray(probabilities)  # float32 kept: a test set's array is large
    if probabilities.ndim != 2 or probabilities.shape[1] != len(ids):
        raise ValueError(f"probabilities of shape {probabilities.shape} for {len(ids)} classes")
    known = ids != NEW_WHALE
    if known.sum() < N_ANSWERS - 1:
        raise ValueError(f"{known.sum()} known ids; five distinct answers need at least {N_ANSWERS - 1}")
    own = probabilities[:, ~known][:, 0] if not known.all() else np.zeros(len(probabilities))
    known_probabilities = probabilities[:, known]
    order = np.argsort(-known_probabilities, axis=1, kind="stable")[:, :N_ANSWERS - 1]
    return Candidates(ids[known][order].tolist(), np.take_along_axis(known_probabilities, order, axis=1), own)


def rank_ids(probabilities: np.ndarray, class_ids: Sequence[str], threshold: float) -> list[list[str]]:
    """Five answers per row of `probabilities` (N, classes): the known ids by probability, with
    new_whale inserted at `threshold` (see `ranking.insert_new_whale`)."""
    return insert_new_whale(rank_candidates(probabilities, class_ids), threshold)


def final_answers(probabilities: np.ndarray | Candidates, class_ids: Sequence[str], threshold: float,
                  duplicates: Duplicates | None = None) -> list[list[str]]:
    """`rank_ids`, with each row's `duplicates` (if given) ahead. `probabilities` may be given
    ranked already (`rank_candidates`), to rank once for many thresholds."""
    candidates = (probabilities if isinstance(probabilities, Candidates)
                  else rank_candidates(probabilities, class_ids))
    return ranking.final_answers(candidates, threshold, duplicates)


def sweep_new_whale_threshold(probabilities: np.ndarray, class_ids: Sequence[str], truths: Sequence[str],
                              thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                              duplicates: Duplicates | None = None) -> tuple[float, pd.DataFrame]:
    """The new_whale threshold with the best MAP@5 of `final_answers` against `truths` (the
    first of equals, in the order given), and the curve (threshold, map5, chosen)."""
    return ranking.sweep_new_whale_threshold(rank_candidates(probabilities, class_ids), truths, thresholds,
                                             duplicates)


# ---------------------------------------------------------------------------------- input


def code_scale(codes: np.ndarray, rows: Sequence[int] | np.ndarray, percentile: float = CODE_PERCENTILE,
               max_images: int = SCALE_SAMPLE_IMAGES, seed: int = 0) -> list[float]:
    """Per channel, the factor that takes the `percentile` of the codes of `rows` (at most
    `max_images` of them, a seeded sample) to 255. A channel that is all zeros gets 1."""
    rows = np.asarray(rows, dtype=np.int64)
    if not len(rows):
        raise ValueError("no rows to compute the code scale on")
    if len(rows) > max_images:
        rows = np.random.default_rng(seed).choice(rows, max_images, replace=False)
    values = np.asarray(codes[np.sort(rows)], dtype=np.float32).reshape(-1, codes.shape[-1])
    high = np.percentile(values, percentile, axis=0)
    # A channel with few nonzero values has a zero percentile but still carries something.
    high = np.where(high > 0, high, values.max(axis=0))
    return [255.0 / h if h > 0 else 1.0 for h in high.tolist()]


def check_array(array: np.ndarray, input_kind: str, path) -> None:
    """`array` (from `path`) is what `input_kind` says: codes (N, s, s, c) or uint8 grey images (N, S, S)."""
    check_choice("input", input_kind, INPUT_KINDS)
    if input_kind == "codes" and array.ndim != 4:
        raise ValueError(f"{path}: codes must be an array (N, s, s, channels), got {array.dtype} {array.shape}")
    if input_kind == "images" and (array.ndim != 3 or array.dtype != np.uint8):
        raise ValueError(f"{path}: images must be a uint8 array (N, S, S), got {array.dtype} {array.shape}")


def check_rows_fit(model: keras.Model, array: np.ndarray, path) -> None:
    """The rows of `array` (from `path`) are what `model` takes: the kind it was trained on."""
    expected = tuple(model.input.shape[1:])
    if (*array.shape[1:], *([1] if array.ndim == 3 else [])) != expected:
        raise ValueError(f"{path} holds rows of shape {array.shape[1:]}; the model takes {expected} "
                         "(codes (s, s, 3) or grey images (S, S), as it was trained on)")


def model_input(values: tf.Tensor) -> tf.Tensor:
    """float32, with a channel axis for grey images (N, S, S)."""
    x = tf.cast(values, tf.float32)
    return x[..., tf.newaxis] if values.shape.rank == 3 else x


def training_data(array_path: str | Path, rows: np.ndarray, labels_by_row: np.ndarray, batch_size: int,
                  seed: int) -> tf.data.Dataset:
    """(x, class index) batches of `rows`, shuffled anew each epoch, streamed from the memory map."""
    labels = tf.constant(labels_by_row, dtype=tf.int32)
    batches = row_batches(ArrayRows([array_path]), rows, batch_size, shuffle=True, seed=seed)
    return (batches.map(lambda batch_rows, values: (model_input(values), tf.gather(labels, batch_rows)),
                        num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def input_data(array_path: str | Path, rows: Sequence[int] | np.ndarray, batch_size: int) -> tf.data.Dataset:
    """x batches of `rows` in ascending row order, streamed from the memory map."""
    batches = row_batches(ArrayRows([array_path]), rows, batch_size, shuffle=False)
    return batches.map(lambda _, values: model_input(values)).prefetch(tf.data.AUTOTUNE)


def predict_probabilities(model: keras.Model, array_path: str | Path, rows: Sequence[int] | np.ndarray | None = None,
                          batch_size: int = 32) -> np.ndarray:
    """Class probabilities (len(rows), classes) of the array's `rows` (default all), in the
    order given."""
    array = np.load(array_path, mmap_mode="r")
    check_rows_fit(model, array, array_path)
    rows = np.arange(len(array)) if rows is None else np.asarray(rows, dtype=np.int64)
    order = np.argsort(rows, kind="stable")
    if not len(rows):
        return np.zeros((0, model.output.shape[-1]), np.float32)
    probabilities = model.predict(input_data(array_path, rows, batch_size), verbose=0)
    out = np.empty_like(probabilities)
    out[order] = probabilities
    return out


class ValidationMap5(keras.callbacks.Callback):
    """Adds ``val_map5`` to each epoch's logs: the MAP@5 of the validation images ranked by the
    model, new_whale inserted at the threshold of `thresholds` that scores best (as prediction
    will choose it), and that threshold as ``val_new_whale_threshold``."""

    def __init__(self, data: tf.data.Dataset, truths: Sequence[str], class_ids: Sequence[str],
                 thresholds: Sequence[float] = DEFAULT_THRESHOLDS):
        super().__init__()
        self.data, self.truths, self.class_ids, self.thresholds = data, list(truths), list(class_ids), thresholds

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        probabilities = self.model.predict(self.data, verbose=0)
        threshold, curve = sweep_new_whale_threshold(probabilities, self.class_ids, self.truths, self.thresholds)
        if logs is not None:
            logs[MONITOR] = float(curve.loc[curve["chosen"], "map5"].iloc[0])
            logs["val_new_whale_threshold"] = threshold


# ---------------------------------------------------------------------------------- stage


def encode_labels(table: pd.DataFrame, new_whale: str) -> tuple[list[str], np.ndarray]:
    """The classes (sorted ids of the `fit` images; new_whale among them only when `new_whale`
    is "class") and each row's class index (-1 for rows not trained on)."""
    check_choice("new_whale", new_whale, NEW_WHALE_MODES)
    learn = (table["subset"] == "fit") & ((table["id"] != NEW_WHALE) | (new_whale == "class"))
    classes = sorted(table.loc[learn, "id"].unique())
    if sum(c != NEW_WHALE for c in classes) < N_ANSWERS - 1:
        raise ValueError(f"the fit images hold {len(classes)} ids; five distinct answers need at least "
                         f"{N_ANSWERS - 1} known ones")
    labels_by_row = np.full(len(table), -1, np.int32)
    labels_by_row[learn.to_numpy()] = table.loc[learn, "id"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    return classes, labels_by_row


def train_classifier(train_array: str | Path, train_index: str | Path, split_csv: str | Path,
                     model_path: str | Path, labels_path: str | Path, history_csv: str | Path,
                     backup_dir: str | Path, *, backbone: str = "vgg19", weights: str | Path | None = "imagenet",
                     input_kind: str = "codes", input_size: int | None = None, head_epochs: int = 10,
                     head_learning_rate: float = 1e-3, fine_tune_epochs: int = 10,
                     fine_tune_learning_rate: float = 1e-5, fine_tune_layers: int = 20, batch_size: int = 32,
                     dropout: float = 0.5, class_weights_method: str = "none", effective_beta: float = 0.999,
                     new_whale: str = "exclude", augment: bool = True, flip: bool = False,
                     thresholds: Sequence[float] = DEFAULT_THRESHOLDS, mixed_precision: bool = True, seed: int = 0,
                     callbacks: Sequence[keras.callbacks.Callback] = ()) -> keras.Model:
    """Train the classifier on the `fit` images of `train_array` (codes or preprocessed images,
    rows named by `train_index`); save it.

    Phase 1 trains the head for `head_epochs` with the base frozen; phase 2 unfreezes the last
    `fine_tune_layers` layers of the base (batch normalisation stays frozen) for
    `fine_tune_epochs` at `fine_tune_learning_rate`, starting from the best head. Each epoch
    is scored by validation MAP@5 (``val_map5``), and the saved model has the best epoch's
    weights (the last epoch's when the split has no validation images).

    Writes `model_path` (.keras), `labels_path` (JSON: ``classes``, the id of each class index,
    and the settings) and `history_csv` (one row an epoch: epoch, phase, loss, accuracy,
    val_map5, val_new_whale_threshold). `backup_dir` (not a rule output) holds an unfinished
    run's state: a rerun with the same inputs and settings resumes from its last finished
    epoch. `class_weights_method`: see `class_weights`. `new_whale`: "exclude" leaves its photos
    out, "class" makes them a class of their own. `callbacks` run after the built-in ones.
    """
    for name, value, allowed in (("backbone", backbone, BACKBONES), ("input", input_kind, INPUT_KINDS),
                                 ("class_weights", class_weights_method, CLASS_WEIGHTS),
                                 ("new_whale", new_whale, NEW_WHALE_MODES)):
        check_choice(name, value, allowed)
    if head_epochs < 0 or fine_tune_epochs < 0 or head_epochs + fine_tune_epochs < 1:
        raise ValueError(f"epochs must be 0 or more and at least one in all, got head {head_epochs}, "
                         f"fine-tune {fine_tune_epochs}")
    model_path = check_model_path(model_path)
    weights = resolve_weights(weights)  # a missing file fails now, before any work
    keras.utils.set_random_seed(seed)

    array = np.load(train_array, mmap_mode="r")
    check_array(array, input_kind, train_array)
    if backbone_side(array.shape[1], input_size) < MIN_SIDE:
        raise ValueError(f"{backbone} needs inputs of at least {MIN_SIDE}x{MIN_SIDE}, but {train_array} holds "
                         f"{array.shape[1]}x{array.shape[2]} and input_size is {input_size}: set input_size to "
                         f"{MIN_SIDE} or more to resize them in the model")
    table = train_table(train_index, split_csv, len(array))
    classes, labels_by_row = encode_labels(table, new_whale)
    fit_rows = np.flatnonzero(labels_by_row >= 0)
    counts = np.bincount(labels_by_row[fit_rows], minlength=len(classes))
    weights_by_class = class_weights(counts, class_weights_method, effective_beta)
    validation_rows = np.flatnonzero((table["subset"] == "validation").to_numpy())
    scale = code_scale(array, fit_rows, seed=seed) if input_kind == "codes" else [1.0]
    input_shape = (*array.shape[1:3], array.shape[3] if array.ndim == 4 else 1)

    settings = dict(inputs=[file_identity(p) for p in (train_array, train_index, split_csv)],
                    weights=file_identity(weights) if isinstance(weights, Path) else weights,
                    backbone=backbone, input=input_kind, input_size=input_size, head_epochs=head_epochs,
                    head_learning_rate=head_learning_rate,
                    fine_tune_epochs=fine_tune_epochs, fine_tune_learning_rate=fine_tune_learning_rate,
                    fine_tune_layers=fine_tune_layers, batch_size=batch_size, dropout=dropout,
                    class_weights=class_weights_method, effective_beta=effective_beta, new_whale=new_whale,
                    augment=augment, flip=flip, thresholds=list(thresholds), mixed_precision=mixed_precision,
                    seed=seed)
    backup_dir = Path(backup_dir)
    prepare_backup(backup_dir, settings_key(settings))
    log.info("training %s on %d fit images of %d ids (%s %s), scoring on %d validation images",
             backbone, len(fit_rows), len(classes), input_kind, "x".join(map(str, input_shape)), len(validation_rows))

    train_data = training_data(train_array, fit_rows, labels_by_row, batch_size, seed)
    metric_callbacks: list[keras.callbacks.Callback] = []
    best = None
    if len(validation_rows):
        truths = table["truth"].to_numpy()[validation_rows]  # rows ascending, as input_data yields them
        best = BestWeights(backup_dir / "best", MONITOR, mode="max")
        metric_callbacks = [ValidationMap5(input_data(train_array, validation_rows, batch_size), truths, classes,
                                           thresholds), best]
    fit = dict(class_weight=None if class_weights_method == "none" else dict(enumerate(weights_by_class.tolist())),
               metric_callbacks=metric_callbacks, callbacks=callbacks, logger=log)

    with build_scope(mixed_precision):
        model = build_classifier(input_shape, len(classes), backbone=backbone, weights=weights, scale=scale,
                                 input_size=input_size, dropout=dropout, augment=augment, flip=flip, seed=seed)
        freeze_base(model)
        compile_classifier(model, head_learning_rate)
    if head_epochs:
        fit_resumably(model, train_data, backup_dir, epochs=head_epochs, state="head", **fit)
    if fine_tune_epochs:
        if best is not None and head_epochs:
            best.restore(model)
        with build_scope(mixed_precision):
            unfreeze_top(model, fine_tune_layers)
            compile_classifier(model, fine_tune_learning_rate)
        fit_resumably(model, train_data, backup_dir, epochs=head_epochs + fine_tune_epochs,
                      initial_epoch=head_epochs, state="fine_tune", **fit)
    if best is not None:
        chosen = best.restore(model)
        log.info("best epoch %d: validation MAP@5 %.4f", chosen["epoch"], chosen["value"])

    history = final_history(backup_dir)
    history.insert(1, "phase", np.where(history["epoch"] < head_epochs, "head", "fine_tune"))
    save_labels(labels_path, classes, backbone=backbone, input=input_kind, input_size=input_size,
                new_whale=new_whale, scale=scale)
    finish_training(model, model_path, history_csv, backup_dir, history)
    return model


def predict_classifier(model_path: str | Path, labels_path: str | Path, train_array: str | Path,
                       train_index: str | Path, test_array: str | Path, test_index: str | Path,
                       split_csv: str | Path, manifest_csv: str | Path, phash_distances: Sequence[int],
                       thresholds: Sequence[float] = DEFAULT_THRESHOLDS, *, batch_size: int = 32
                       ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, float]:
    """Validation and test answers (DataFrames image, answers: five ids), the validation curve
    (max_distance, threshold, map5, chosen) and the chosen new_whale threshold.

    Photos that are duplicates of catalogue photos (identical bytes, or a pHash within a
    distance of `phash_distances` bits) take their ids first, then the model's ranking with
    new_whale inserted; the distance and the threshold are chosen together on validation by
    MAP@5 (`ranking.sweep_duplicates_and_threshold`). Validation photos are matched against the
    `fit` part of train, test photos against all of train.
    """
    class_ids = load_labels(labels_path)
    model = load_classifier(model_path)
    if model.output.shape[-1] != len(class_ids):
        raise ValueError(f"{model_path} has {model.output.shape[-1]} classes but {labels_path} lists {len(class_ids)}")
    manifest = read_table(manifest_csv)
    train, fit_rows, validation_rows = fit_and_validation(train_index, split_csv, manifest, manifest_csv,
                                                          len(np.load(train_array, mmap_mode="r")))
    fit, validation = train[fit_rows], train.iloc[validation_rows]

    candidates = rank_candidates(predict_probabilities(model, train_array, validation_rows, batch_size), class_ids)
    test = with_hashes(read_table(test_index)[["image"]], manifest, "test", manifest_csv)
    if len(test) != len(np.load(test_array, mmap_mode="r")):
        raise ValueError(f"{test_index} lists {len(test)} images but {test_array} has another number of rows")
    test_candidates = rank_candidates(predict_probabilities(model, test_array, None, batch_size), class_ids)
    return ranking.answer_validation_and_test(validation, candidates, fit, test, test_candidates, train,
                                              phash_distances, thresholds, log)
