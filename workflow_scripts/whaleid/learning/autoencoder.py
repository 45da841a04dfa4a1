"""The published convolutional autoencoder: 896x896 grey photos squeezed to 224x224x3 codes.

The encoder halves the image twice, so its code has the input size of an ImageNet CNN and
three channels; the classifier stage takes the codes in place of the photos. The layers are
the write-up's (Conv-BN-ReLU blocks, 3x3 kernels, max pooling, upsampling, a sigmoid output),
each named so that the code layer is found by name ("code"), never by position.

What differs from the write-up, and why:
- Adam with learning rate 1e-3. The published Adam(lr=0.5, decay=0.95) does not learn: see
  `published_optimizer`.
- No horizontal flip by default: a fluke's markings are not mirror-symmetric, so a mirrored
  fluke is another animal's pattern.
- Augmented pixels outside the photo are zeros, like the padding of the preprocessed squares.
- Images stream from the memory-mapped preprocess caches (`make_dataset`), so training never
  holds the set in memory, and a killed run resumes from its last finished epoch.

Import this module only after `gpus.select_devices` has chosen the job's GPUs: it imports
TensorFlow, which fixes the visible devices when it first initialises CUDA.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import keras
import numpy as np
import tensorflow as tf

from whaleid.io.arrays import file_identity, fill_in_chunks, write_rows
from whaleid.io.files import atomic_output
from whaleid.learning.augmentation import similarity_rows, warp
from whaleid.learning.tensorflow_runtime import build_scope, several_replicas
from whaleid.learning.training import ArrayRows, TrainingRun, check_model_path, row_batches, weights_digest
from whaleid.settings import AutoencoderSettings
from whaleid.vocabulary import OPTIMIZERS

log = logging.getLogger(__name__)

CODE_LAYER = "code"
# Two 2x poolings: the code is a quarter of the input's side.
REDUCTION = 4
CODE_CHANNELS = 3
ROTATION_DEGREES = 15.0
SHIFT_FRACTION = 0.15


# ---------------------------------------------------------------------------------- model


def _conv_bn_relu(x, filters: int, name: str):
    x = keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv")(x)
    # Momentum 0.9, not Keras's 0.99: the running statistics that inference (and so every
    # cached code) uses must settle within the few hundred steps of a small dataset's training;
    # at 0.99 the demo's validation loss stayed 15x its training loss and reconstructions grey.
    # synchronized on several GPUs: the statistics of the whole batch rather than of each
    # device's share, so every device's running statistics stay the same (the saved model keeps
    # the first device's).
    x = keras.layers.BatchNormalization(momentum=0.9, synchronized=several_replicas(), name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def build_autoencoder(size: int) -> keras.Model:
    """The autoencoder for `size`x`size` grey images (floats in 0..1, shape (size, size, 1)).

    Layer names: enc1..enc4 and dec1..dec4 (each ``_conv``, ``_bn``, ``_relu``), ``enc_pool1``,
    ``code`` (the second pooling: (size/4, size/4, 3)), ``dec_up1``, ``dec_up2`` and
    ``reconstruction`` (sigmoid, float32 even under mixed precision, so the loss is computed
    at full precision).
    """
    if not isinstance(size, (int, np.integer)) or size <= 0 or size % REDUCTION:
        raise ValueError(f"autoencoder size must be a positive multiple of {REDUCTION} "
                         f"(two 2x poolings), got {size!r}")
    image = keras.Input((size, size, 1), name="image")
    x = _conv_bn_relu(image, 16, "enc1")
    x = _conv_bn_relu(x, 16, "enc2")
    x = keras.layers.MaxPooling2D(2, padding="same", name="enc_pool1")(x)
    x = _conv_bn_relu(x, 8, "enc3")
    x = _conv_bn_relu(x, CODE_CHANNELS, "enc4")
    code = keras.layers.MaxPooling2D(2, padding="same", name=CODE_LAYER)(x)
    x = _conv_bn_relu(code, 8, "dec1")
    x = _conv_bn_relu(x, 8, "dec2")
    x = keras.layers.UpSampling2D(2, name="dec_up1")(x)
    x = _conv_bn_relu(x, 16, "dec3")
    x = _conv_bn_relu(x, 16, "dec4")
    x = keras.layers.UpSampling2D(2, name="dec_up2")(x)
    reconstruction = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid", dtype="float32",
                                         name="reconstruction")(x)
    return keras.Model(image, reconstruction, name="autoencoder")


def encoder_from(autoencoder: keras.Model) -> keras.Model:
    """The encoder half: the autoencoder's input to its ``code`` layer, sharing its weights."""
    return keras.Model(autoencoder.inputs, autoencoder.get_layer(CODE_LAYER).output, name="encoder")


def load_autoencoder(path: str | Path) -> keras.Model:
    """A saved autoencoder, for prediction (not compiled: encoding needs no optimizer).

    Safe mode refuses models carrying Python code (Lambda layers); this model has none.
    """
    return keras.models.load_model(path, safe_mode=True, compile=False)


def published_optimizer() -> keras.optimizers.Optimizer:
    """The write-up's optimiser, ``Adam(lr=0.5, decay=0.95)``, in Keras 3 terms.

    Keras 2's ``decay`` divided the rate by ``1 + decay * step`` at every batch: an
    `InverseTimeDecay` with ``decay_steps=1``; its ``epsilon=None`` meant 1e-7. It does not
    train. Tried on the 1,249 right-whale training photos at 128x128 (batch 32, 5 epochs,
    seed 0): the first steps of 0.5 throw the weights so far that ReLUs die (11 of the 16
    channels of the last decoder block output nothing) and the training loss stops at 0.030
    from the second epoch on; the reconstructions are worse than the mean image (MSE 0.042
    against 0.039). Adam at 1e-3 reached a training loss of 0.005 in the same 5 epochs.
    Kept so that this can be shown: ``optimizer: published`` in the settings.
    """
    schedule = keras.optimizers.schedules.InverseTimeDecay(0.5, decay_steps=1, decay_rate=0.95)
    return keras.optimizers.Adam(schedule, beta_1=0.9, beta_2=0.999, epsilon=1e-7)


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """``"adam"``: Adam at `learning_rate`; ``"published"``: `published_optimizer` (rate ignored)."""
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "published":
        return published_optimizer()
    raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")


# ---------------------------------------------------------------------------------- input


class CacheRows(ArrayRows):
    """The rows of one or more preprocess caches (uint8 (N, S, S), memory-mapped), numbered one
    after another; `read(rows)` gives them in ascending row order."""

    def __init__(self, cache_paths: Sequence[str | Path]):
        if not cache_paths:
            raise ValueError("no cache files given")
        arrays = [np.load(p, mmap_mode="r") for p in cache_paths]
        if (len({a.shape[1:] for a in arrays}) != 1
                or any(a.ndim != 3 or a.dtype != np.uint8 or a.shape[1] != a.shape[2] for a in arrays)):
            raise ValueError("caches must be uint8 arrays (N, S, S) of one size; got "
                             + ", ".join(f"{Path(p).name}: {a.dtype} {a.shape}" for p, a in zip(cache_paths, arrays)))
        super().__init__(cache_paths)
        self.size = self.row_shape[0]


def split_rows(n_rows: int, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, validation rows), each sorted: a seeded random `validation_fraction`
    of 0..n_rows-1 held out (at least one row when the fraction is above 0)."""
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    n_validation = int(round(n_rows * validation_fraction))
    if validation_fraction > 0:
        n_validation = max(1, n_validation)
    if n_rows - n_validation < 1:
        raise ValueError(f"{n_rows} rows leave none for training with validation_fraction={validation_fraction}")
    order = np.random.default_rng(seed).permutation(n_rows)
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])


def _augment(x: tf.Tensor, seed: tf.Tensor, flip: bool) -> tf.Tensor:
    """Rotate each image of float batch `x` (B, S, S, 1) by up to +-15 degrees about its centre and
    shift it by up to +-15 % of its side, in one resampling; zeros where no pixel comes from;
    mirror half of them when `flip`. Random numbers are drawn statelessly from `seed` (int64
    (2,)), so batches can be augmented in parallel and still come out the same for a seed."""
    batch, side = tf.shape(x)[0], tf.cast(tf.shape(x)[2], tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, 4)
    limit = ROTATION_DEGREES * np.pi / 180.0
    angle = tf.random.stateless_uniform([batch], seeds[0], -limit, limit)
    shift_x = tf.random.stateless_uniform([batch], seeds[1], -SHIFT_FRACTION, SHIFT_FRACTION) * side
    shift_y = tf.random.stateless_uniform([batch], seeds[2], -SHIFT_FRACTION, SHIFT_FRACTION) * side
    zeros = tf.zeros_like(angle)
    transform = tf.stack([*similarity_rows(tf.cos(angle), tf.sin(angle), 1.0, shift_x, shift_y, side), zeros, zeros],
                         axis=1)
    x = warp(x, transform)
    if flip:
        mirrored = tf.random.stateless_uniform([batch], seeds[3]) < 0.5
        x = tf.where(mirrored[:, None, None, None], tf.reverse(x, axis=[2]), x)
    return x


def augment_batches(batches: tf.data.Dataset, *, augment: bool, flip: bool = False, seed: int = 0) -> tf.data.Dataset:
    """uint8 image batches (B, S, S) -> (x, x) with x float32 (B, S, S, 1) in 0..1, augmented when
    `augment` (see `_augment`), different each epoch, the same for the same `seed`; prefetched."""
    # One seed a batch, a new sequence each epoch, reproducible from `seed`.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def transform(images: tf.Tensor, batch_seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = tf.cast(images, tf.float32)[..., tf.newaxis] / 255.0
        if augment:
            x = _augment(x, batch_seed, flip)
        return x, x

    return (tf.data.Dataset.zip(batches, seeds)
            .map(transform, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def make_dataset(cache_paths: Sequence[str | Path], indices: Sequence[int] | np.ndarray, batch_size: int, *,
                 shuffle: bool, augment: bool, flip: bool = False, seed: int = 0) -> tf.data.Dataset:
    """(x, x) batches of the cache rows `indices` (numbered across `cache_paths` in order).

    Rows are read from the memory-mapped caches a batch at a time (one fancy-index per
    batch), so memory holds a few batches, never a cache. With `shuffle` the order changes
    every epoch; shuffle and augmentation are reproducible from `seed`.
    """
    batches = row_batches(CacheRows(cache_paths), indices, batch_size, shuffle=shuffle, seed=seed)
    return augment_batches(batches.map(lambda rows, images: images), augment=augment, flip=flip, seed=seed)


# ---------------------------------------------------------------------------------- training


def train_autoencoder(cache_paths: Sequence[str | Path], model_path: str | Path, history_csv: str | Path,
                      backup_dir: str | Path, settings: AutoencoderSettings, *,
                      callbacks: Sequence[keras.callbacks.Callback] = ()) -> keras.Model:
    """Train the autoencoder on every row of `cache_paths` (less a validation part); save it.

    Writes `model_path` (.keras) and `history_csv` (one row an epoch: epoch, loss, val_loss)
    when training finishes. The state of an unfinished run lives in `backup_dir`, which must
    not be one of the rule's outputs (Snakemake deletes those when a job fails): a rerun
    resumes from the last finished epoch. A finished run removes it.

    `mixed_precision` takes effect only on a GPU; several visible GPUs train in data-parallel
    (MirroredStrategy, `batch_size` split across them). `callbacks` run after the built-in
    ones. The same `seed` gives the same model on the CPU.
    """
    s = settings
    model_path = check_model_path(model_path)
    keras.utils.set_random_seed(s.seed)
    rows = CacheRows(cache_paths)
    # Not scored by validation MAP@5: an autoencoder learns no individuals, and every epoch is kept.
    run = TrainingRun(backup_dir, {**vars(s), "caches": [file_identity(p) for p in rows.paths]}, scored=False,
                      logger=log)

    train_rows, validation_rows = split_rows(len(rows), s.validation_fraction, s.seed)
    train_data = make_dataset(rows.paths, train_rows, s.batch_size, shuffle=True, augment=s.augment, flip=s.flip,
                              seed=s.seed)
    validation_data = (make_dataset(rows.paths, validation_rows, s.batch_size, shuffle=False, augment=False)
                       if len(validation_rows) else None)
    log.info("training on %d images, validating on %d, %dx%d", len(train_rows), len(validation_rows),
             rows.size, rows.size)

    with build_scope(s.mixed_precision):
        model = build_autoencoder(rows.size)
        model.compile(optimizer=make_optimizer(s.optimizer, s.learning_rate), loss="mse")
    run.fit(model, train_data, epochs=s.epochs, validation_data=validation_data, scorer=None, callbacks=callbacks)
    run.finish(model, model_path, history_csv)
    return model


# ---------------------------------------------------------------------------------- outputs


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, S, S) -> float32 (N, S, S, 1) in 0..1."""
    return (np.asarray(images, dtype=np.float32) / 255.0)[..., np.newaxis]


def _min_max(values: np.ndarray) -> np.ndarray:
    low, high = values.min(), values.max()
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def save_reconstruction_png(autoencoder: keras.Model, images: np.ndarray, out_png: str | Path,
                            per_row: int = 2) -> None:
    """A picture of what the autoencoder does: for each of `images` (uint8 (N, S, S)), the input,
    its reconstruction and its code (channels 0, 1, 2 as red, green, blue, each min-max scaled,
    enlarged to S), side by side, `per_row` images a row."""
    images = np.asarray(images)
    both = keras.Model(autoencoder.inputs, [autoencoder.output, autoencoder.get_layer(CODE_LAYER).output])
    reconstructions, codes = both.predict(to_model_input(images), verbose=0)
    size, gap = images.shape[1], max(2, images.shape[1] // 32)
    tiles = []
    for image, reconstruction, code in zip(images, reconstructions, codes):
        code_rgb = np.stack([_min_max(code[..., c].astype(np.float32)) for c in range(CODE_CHANNELS)], axis=-1)
        code_bgr = cv2.resize((code_rgb[..., ::-1] * 255).round().astype(np.uint8), (size, size),
                              interpolation=cv2.INTER_NEAREST)
        grey = [np.repeat(g[..., None], 3, axis=-1) for g in
                (image, (np.clip(reconstruction[..., 0], 0, 1) * 255).round().astype(np.uint8))]
        tiles.append(np.concatenate([grey[0], grey[1], code_bgr], axis=1))
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (-len(tiles) % per_row)
    rows = [np.concatenate(_with_gaps(tiles[i:i + per_row], gap, axis=1), axis=1)
            for i in range(0, len(tiles), per_row)]
    grid = np.concatenate(_with_gaps(rows, gap, axis=0), axis=0)
    with atomic_output(out_png) as tmp:
        if not cv2.imwrite(str(tmp), grid):
            raise OSError(f"could not write {out_png}")


def _with_gaps(parts: list[np.ndarray], gap: int, axis: int) -> list[np.ndarray]:
    shape = list(parts[0].shape)
    shape[axis] = gap
    spacer = np.full(shape, 255, np.uint8)
    out = []
    for part in parts:
        out += [part, spacer]
    return out[:-1]


def encode_images(encoder: keras.Model, images: np.ndarray, batch_size: int) -> np.ndarray:
    """The codes of uint8 images (N, S, S), as float16 (N, S/4, S/4, 3)."""
    return encoder.predict(to_model_input(images), batch_size=batch_size, verbose=0).astype(np.float16)



def encode_cache(encoder: keras.Model, cache_path: str | Path, out_path: str | Path, *, batch_size: int,
                 chunk_size: int, progress: Callable[[int, int], None] | None = None) -> None:
    """Encode every row of a preprocess cache into `out_path` (.npy, float16 (N, S/4, S/4, 3)).

    Row i is the code of the cache's row i, so the preprocess index CSV names its image.
    float16 because the code is a ReLU output with no fixed range: uint8 would need a scale
    per image or channel, and whichever is chosen loses precision somewhere, while float16
    keeps about 3 significant digits at any magnitude (more than the classifier can use) at
    half float32's size: 224x224x3x2 bytes = 294 KiB an image. Memory-mappable like the cache.

    Built chunk by chunk (`arrays.fill_in_chunks`): a rerun after a kill computes only the
    chunks not yet done. `progress(done, total)` is called as chunks finish.
    """
    cache = np.load(cache_path, mmap_mode="r")
    n, size = cache.shape[0], cache.shape[1]
    shape = (n, size // REDUCTION, size // REDUCTION, CODE_CHANNELS)
    if tuple(encoder.output.shape[1:]) != shape[1:]:
        raise ValueError(f"encoder gives codes of shape {tuple(encoder.output.shape[1:])}, "
                         f"but the cache's {size}x{size} images need an encoder for that size")

    def fill_chunk(partial_path: str, start: int, stop: int) -> None:
        write_rows(partial_path, start, encode_images(encoder, cache[start:stop], batch_size))

    fill_in_chunks(out_path, shape, np.float16, chunk_size, inputs=[cache_path],
                   settings={"weights": weights_digest(encoder)}, fill_chunk=fill_chunk, progress=progress)
