"""What the classifier and the embedding are built on: the keras.applications backbones and
their weights, and the layers that turn their inputs into the pictures a backbone expects.

Both models read either the autoencoder's codes (N, s, s, 3), which have no fixed range (ReLU
outputs), or the preprocessed grey squares (N, S, S) uint8; every backbone's
`preprocess_input` expects 0..255 pixels in three channels. `ToPixels` scales each code channel
so that its 99.9th percentile over the fit photos becomes 255 (`code_scale`), clipped, and
repeats a grey channel to three; the scale is part of the saved model, so prediction cannot use
another. `BackbonePreprocessing` is the backbone's own `preprocess_input`, as a layer the saved
model carries.

Weights: "imagenet" (from the Keras cache, where rule stage_weights puts them on the submit
host; downloaded if missing, with an error that says which file goes where when that fails),
none, or the path of a weights file.

Import this module only after `gpus.select_devices` has chosen the job's GPUs: it imports
TensorFlow, which fixes the visible devices when it first initialises CUDA.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from whaleid.learning.pretrained import MissingWeightsError, imagenet_weights, keras_models_dir, placement_advice
from whaleid.vocabulary import IMAGENET_BACKBONES, INPUT_KINDS, check_choice

# The backbones' smallest input side without their top (keras.applications refuses less).
MIN_SIDE = 32
CODE_PERCENTILE = 99.9
# Enough pixels for a stable 99.9th percentile, few enough to read quickly at 224x224x3.
SCALE_SAMPLE_IMAGES = 128

_APPLICATIONS = {
    "vgg19": (keras.applications.VGG19, keras.applications.vgg19.preprocess_input),
    "resnet50": (keras.applications.ResNet50, keras.applications.resnet50.preprocess_input),
    "mobilenetv2": (keras.applications.MobileNetV2, keras.applications.mobilenet_v2.preprocess_input),
}


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
    check_choice("backbone", backbone, IMAGENET_BACKBONES)
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
        check_choice("backbone", backbone, IMAGENET_BACKBONES)
        self.backbone = backbone

    def call(self, x):
        return _APPLICATIONS[self.backbone][1](x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "backbone": self.backbone}


def code_scale(codes: np.ndarray, rows: Sequence[int] | np.ndarray, *, seed: int, percentile: float = CODE_PERCENTILE,
               max_images: int = SCALE_SAMPLE_IMAGES) -> list[float]:
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
