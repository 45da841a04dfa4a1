"""Metric learning: an embedding in which photos of one individual lie close together.

What the winners of the whale competitions did instead of a softmax over the individuals: a
backbone, generalised-mean (GeM) pooling and a small projection give each photo a unit-length
embedding; during training a sub-center ArcFace head (Deng et al. 2019, 2020) pulls each
embedding towards one of a few learned centres of its individual by an angular margin. The
head is thrown away after training: identification compares embeddings with those of the
catalogue (`retrieval`), so individuals never seen in training can be added without
retraining.

Choices, and why:
- `new_whale` photos are not trained on: they are of many animals, not one.
- Each batch is drawn with probability count^-`balance_power` per photo (0: as they come;
  1: every individual equally often), so the few animals with dozens of photos do not
  dominate and the many with one or two are seen.
- No horizontal flips of an individual: a mirrored fluke (or head) is another pattern. With
  `flip_as_new_identity`, each individual's mirrored photos form a second class of their own,
  more classes to separate from (the 2019 winner's trick).
- The backbones are the classifier's keras.applications ones (with the same `weights:`
  handling) and "compact", a plain Conv-BN-ReLU network small enough to train from scratch
  on a CPU.
- The best epoch is chosen by validation MAP@5 of retrieval, the score that matters.
- Embedding averages a few views (a zoom, small shifts; never a flip) when asked (test-time
  augmentation), and resumes after a kill like the other caches.

Import this module only after `devices.select_devices` has chosen the job's GPUs: it imports
TensorFlow, which fixes the visible devices when it first initialises CUDA.
"""

from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from joblib import Parallel, delayed

from .arrays import ResumableArray
from .classifier import (BACKBONES as APPLICATION_BACKBONES, INPUT_KINDS, MIN_SIDE, MONITOR, BackbonePreprocessing,
                         ToPixels, build_backbone, check_array, check_choice, check_rows_fit, code_scale,
                         model_input, resolve_weights)
from .files import write_csv
from .ingest import NEW_WHALE, REJECTED_COLUMNS, inspect_file, read_train_table
from .preprocess import build_cache
from .ranking import sweep_new_whale_threshold
from .retrieval import AGGREGATES, rank_catalogue
from .tables import train_table
from .training import (ArrayRows, BestWeights, build_scope, check_model_path, file_identity, finish_training,
                       fit_resumably, prepare_backup, settings_key, several_replicas, weights_digest)

log = logging.getLogger(__name__)

BACKBONES = ("compact", *APPLICATION_BACKBONES)
AUGMENT = {"brightness": 0.2, "contrast": 0.2, "rotation_degrees": 15.0, "shift": 0.1, "zoom": 0.1}
# Keras's default 0.99 leaves the running statistics, which embedding uses, far from the
# batches' after the few hundred steps a small catalogue trains for: every embedding then
# shares one large offset and they all look alike.
BN_MOMENTUM = 0.9
# Test-time views (zoom, shift x, shift y as fractions of the side), in the order `views`
# takes them: the photo itself first. No flip: a mirrored pattern is another animal's.
VIEWS = ((1.0, 0.0, 0.0), (0.9, 0.0, 0.0), (1.0, 0.04, 0.0), (1.0, -0.04, 0.0), (1.0, 0.0, 0.04),
         (1.0, 0.0, -0.04))



# ---------------------------------------------------------------------------------- layers


@keras.saving.register_keras_serializable(package="whaleid")
class GeneralizedMeanPooling(keras.layers.Layer):
    """GeM pooling (Radenovic et al. 2018): (mean x^p)^(1/p) over the spatial axes, with a
    learned p (1: average pooling; large: max pooling). Small bright marks, a notch or a
    callosity, count for more than under average pooling."""

    def __init__(self, p: float = 3.0, epsilon: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        self.initial_p, self.epsilon = float(p), float(epsilon)

    def build(self, input_shape) -> None:
        self.p = self.add_weight(name="p", shape=(), initializer=keras.initializers.Constant(self.initial_p))

    def call(self, x):
        x = keras.ops.maximum(keras.ops.cast(x, "float32"), self.epsilon)
        p = keras.ops.maximum(keras.ops.cast(self.p, "float32"), 1.0)
        return keras.ops.power(keras.ops.mean(keras.ops.power(x, p), axis=(1, 2)), 1.0 / p)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self) -> dict:
        return {**super().get_config(), "p": self.initial_p, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="whaleid")
class SubCenterArcFace(keras.layers.Layer):
    """Sub-center ArcFace logits: inputs [embeddings (B, D), labels (B,)] -> (B, classes).

    Each class has `sub_centers` unit vectors; an embedding's cosine to a class is its largest
    cosine to them (a class's odd photos, a bad angle or a mislabel, can sit by another centre
    rather than drag the main one). The true class's angle is widened by `margin` radians
    before everything is multiplied by `scale`, so training must pull an embedding closer to
    its own class than to any other by that margin. Past an angle of pi - margin the margin
    would make the logit grow again; there the usual linear penalty cos - margin*sin(margin)
    replaces it (as in the ArcFace paper's code).
    """

    def __init__(self, n_classes: int, sub_centers: int = 3, margin: float = 0.3, scale: float = 30.0, **kwargs):
        super().__init__(**kwargs)
        if n_classes < 1 or sub_centers < 1:
            raise ValueError(f"n_classes and sub_centers must be at least 1, got {n_classes}, {sub_centers}")
        if not 0 <= margin < math.pi / 2:
            raise ValueError(f"margin must be in [0, pi/2) radians, got {margin}")
        self.n_classes, self.sub_centers, self.margin, self.scale = n_classes, sub_centers, float(margin), float(scale)

    def build(self, input_shape) -> None:
        dimension = input_shape[0][-1]
        self.centres = self.add_weight(name="centres", shape=(dimension, self.n_classes * self.sub_centers),
                                       initializer="glorot_uniform")

    def cosines(self, embeddings):
        """Cosine of each embedding to each class (its nearest sub-centre), (B, classes)."""
        embeddings = keras.ops.normalize(keras.ops.cast(embeddings, "float32"), axis=-1)
        centres = keras.ops.normalize(keras.ops.cast(self.centres, "float32"), axis=0)
        all_cosines = keras.ops.reshape(keras.ops.matmul(embeddings, centres), (-1, self.n_classes, self.sub_centers))
        return keras.ops.clip(keras.ops.max(all_cosines, axis=-1), -1.0, 1.0)

    def call(self, inputs):
        embeddings, labels = inputs
        cosine = self.cosines(embeddings)
        sine = keras.ops.sqrt(keras.ops.maximum(1.0 - cosine * cosine, 0.0))
        with_margin = cosine * math.cos(self.margin) - sine * math.sin(self.margin)
        with_margin = keras.ops.where(cosine > math.cos(math.pi - self.margin), with_margin,
                                      cosine - self.margin * math.sin(self.margin))
        truth = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(labels, (-1,)), "int32"), self.n_classes)
        return self.scale * (truth * with_margin + (1.0 - truth) * cosine)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.n_classes)

    def get_config(self) -> dict:
        return {**super().get_config(), "n_classes": self.n_classes, "sub_centers": self.sub_centers,
                "margin": self.margin, "scale": self.scale}


# ---------------------------------------------------------------------------------- model


def build_augmentation(seed: int = 0) -> keras.Sequential:
    """Random brightness, contrast, rotation, shift and zoom of 0..255 pictures (black where no
    pixel comes from, like the padding of the preprocessed squares); never a flip. Stronger than
    the classifier's: an embedding trained on a few photos an individual must not learn the
    light and sea of the day they were taken. Active only in training."""
    return keras.Sequential([
        # Light first: after the geometric moves it would lift the black fill too.
        keras.layers.RandomBrightness(AUGMENT["brightness"], value_range=(0.0, 255.0), seed=seed, dtype="float32",
                                      name="brightness"),
        keras.layers.RandomContrast(AUGMENT["contrast"], value_range=(0.0, 255.0), seed=seed + 1, dtype="float32",
                                    name="contrast"),
        keras.layers.RandomRotation(AUGMENT["rotation_degrees"] / 360.0, fill_mode="constant", fill_value=0.0,
                                    seed=seed + 2, dtype="float32", name="rotate"),
        keras.layers.RandomTranslation(AUGMENT["shift"], AUGMENT["shift"], fill_mode="constant", fill_value=0.0,
                                       seed=seed + 3, dtype="float32", name="shift"),
        keras.layers.RandomZoom(AUGMENT["zoom"], fill_mode="constant", fill_value=0.0, seed=seed + 4, dtype="float32",
                                name="zoom"),
    ], name="augmentation")


def build_compact_backbone(input_shape: tuple[int, int, int], width: int = 32) -> keras.Model:
    """A plain convolutional network, named ``base``: five stages of two 3x3 Conv-BN-ReLU, the
    first four followed by 2x2 max pooling, `width` filters doubling each stage up to 8x.
    Small enough to learn from a few thousand photos without pre-trained weights."""
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    inputs = keras.Input(tuple(input_shape))
    x = inputs
    for stage in range(5):
        filters = width * min(2 ** stage, 8)
        for conv in range(2):
            name = f"stage{stage + 1}_conv{conv + 1}"
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
            # synchronized on several GPUs, as in the autoencoder: the same statistics on each.
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, synchronized=several_replicas(),
                                                name=f"{name}_bn")(x)
            x = keras.layers.ReLU(name=f"{name}_relu")(x)
        if stage < 4:
            x = keras.layers.MaxPooling2D(name=f"stage{stage + 1}_pool")(x)
    return keras.Model(inputs, x, name="base")


def build_embedder(input_shape: tuple[int, ...], *, backbone: str = "compact", weights: str | Path | None = None,
                   scale: Sequence[float] = (1.0,), input_size: int | None = None, width: int = 32,
                   embedding_size: int = 128, dropout: float = 0.2, augment: bool = True,
                   seed: int = 0) -> keras.Model:
    """input (grey images (S, S, 1) or codes (s, s, 3)) -> ``to_pixels`` -> [``augmentation``,
    training only] -> [``resize`` to `input_size`] -> ``preprocess`` -> ``base`` -> ``gem`` ->
    ``dropout`` -> ``projection`` -> ``projection_bn`` -> ``embedding`` (unit length, float32).

    `weights` apply to the keras.applications backbones (as for the classifier); "compact"
    always starts from random weights, of `width` filters in its first stage.
    """
    check_choice("backbone", backbone, BACKBONES)
    if embedding_size < 2:
        raise ValueError(f"embedding_size must be at least 2, got {embedding_size}")
    side = input_size or input_shape[0]
    if side < MIN_SIDE:
        raise ValueError(f"{backbone} needs inputs of at least {MIN_SIDE}x{MIN_SIDE}, got {side}x{side}: "
                         "set input_size to resize them in the model")
    inputs = keras.Input(tuple(input_shape), name="input")
    x = ToPixels(scale, dtype="float32", name="to_pixels")(inputs)
    if augment:
        x = build_augmentation(seed)(x)
    if input_size:
        x = keras.layers.Resizing(input_size, input_size, dtype="float32", name="resize")(x)
    if backbone == "compact":
        if resolve_weights(weights) is not None:
            raise ValueError(f"the compact backbone has no pre-trained weights; got weights={weights!r}, "
                             "use none")
        x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, dtype="float32", name="preprocess")(x)
        base = build_compact_backbone((side, side, 3), width)
    else:
        x = BackbonePreprocessing(backbone, dtype="float32", name="preprocess")(x)
        base = build_backbone(backbone, weights, (side, side, 3))
    x = base(x)
    x = GeneralizedMeanPooling(name="gem")(x)
    x = keras.layers.Dropout(dropout, seed=seed, name="dropout")(x)
    x = keras.layers.Dense(embedding_size, dtype="float32", name="projection")(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, synchronized=several_replicas(), dtype="float32",
                                        name="projection_bn")(x)
    outputs = keras.layers.UnitNormalization(dtype="float32", name="embedding")(x)
    return keras.Model(inputs, outputs, name=f"{backbone}_embedder")


def build_training_model(embedder: keras.Model, n_classes: int, *, sub_centers: int = 3, margin: float = 0.3,
                         scale: float = 30.0) -> keras.Model:
    """[input, label] -> the embedder -> ``arcface`` logits over `n_classes` (float32)."""
    labels = keras.Input((), dtype="int32", name="label")
    logits = SubCenterArcFace(n_classes, sub_centers, margin, scale, dtype="float32",
                              name="arcface")([embedder.output, labels])
    return keras.Model([embedder.input, labels], logits, name="arcface_training")


def compile_training_model(model: keras.Model, learning_rate: float, total_steps: int, warmup_steps: int) -> None:
    """Adam with a linear warm-up to `learning_rate`, then cosine decay to zero. The schedule
    runs on the optimizer's step count, which a resumed run restores."""
    warmup_steps = min(warmup_steps, max(total_steps - 1, 0))
    schedule = keras.optimizers.schedules.CosineDecay(
        learning_rate * 0.1 if warmup_steps else learning_rate, max(total_steps - warmup_steps, 1),
        warmup_target=learning_rate if warmup_steps else None, warmup_steps=warmup_steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def load_embedder(path: str | Path) -> keras.Model:
    """A saved embedder (not compiled); safe mode: its custom layers are registered ones."""
    return keras.models.load_model(path, safe_mode=True, compile=False)


# ---------------------------------------------------------------------------------- input



def sampling_probabilities(labels: np.ndarray, balance_power: float) -> np.ndarray:
    """The chance of each photo (class index `labels`) to be drawn: count^-`balance_power`
    of its class, normalised. 0 draws photos uniformly, 1 individuals uniformly."""
    labels = np.asarray(labels)
    if not len(labels) or (labels < 0).any():
        raise ValueError("labels must be a non-empty vector of class indices")
    if not 0 <= balance_power <= 1:
        raise ValueError(f"balance_power must be in [0, 1], got {balance_power}")
    counts = np.bincount(labels)
    weights = counts[labels].astype(np.float64) ** -balance_power
    return weights / weights.sum()


def training_examples(labels_by_row: np.ndarray, n_classes: int, flip_as_new_identity: bool
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, label, flipped) of each training example: the rows with a label (>= 0), and with
    `flip_as_new_identity` each of them again, mirrored, as class label + `n_classes`."""
    rows = np.flatnonzero(labels_by_row >= 0)
    labels = labels_by_row[rows].astype(np.int32)
    flipped = np.zeros(len(rows), bool)
    if flip_as_new_identity:
        rows, labels = np.concatenate([rows, rows]), np.concatenate([labels, labels + n_classes])
        flipped = np.concatenate([flipped, ~flipped])
    return rows, labels, flipped


def balanced_batches(array_path: str | Path, rows: np.ndarray, labels: np.ndarray, flipped: np.ndarray,
                     batch_size: int, balance_power: float, seed: int) -> tf.data.Dataset:
    """An endless stream of ((x, label), label) batches: examples drawn with replacement by
    `sampling_probabilities`, mirrored where `flipped`, read from the memory map a batch at a
    time. Reproducible for a `seed`."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    source = ArrayRows([array_path])
    cumulative = tf.constant(np.cumsum(sampling_probabilities(labels, balance_power)), tf.float64)
    rows_t, labels_t, flipped_t = (tf.constant(rows, tf.int64), tf.constant(labels, tf.int32),
                                   tf.constant(flipped, tf.bool))
    dtype, row_shape = tf.as_dtype(source.dtype), list(source.row_shape)

    def read(batch: tf.Tensor):
        uniform = tf.random.stateless_uniform([batch_size], seed=tf.stack([tf.constant(seed, tf.int64), batch]),
                                              dtype=tf.float64)
        examples = tf.minimum(tf.searchsorted(cumulative, uniform, side="right"), len(rows) - 1)
        # ArrayRows.read returns rows in ascending order: put the examples in that order first.
        examples = tf.gather(examples, tf.argsort(tf.gather(rows_t, examples), stable=True))
        values = tf.numpy_function(source.read, [tf.gather(rows_t, examples)], dtype, stateful=False)
        x = model_input(tf.ensure_shape(values, [None, *row_shape]))
        x = tf.where(tf.gather(flipped_t, examples)[:, None, None, None], tf.reverse(x, axis=[2]), x)
        label = tf.gather(labels_t, examples)
        return (x, label), label

    # Batch i's draws depend on (seed, i) alone: parallel reads cannot change them.
    return tf.data.Dataset.counter().map(read, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _view(x: tf.Tensor, zoom: float, shift_x: float, shift_y: float) -> tf.Tensor:
    """`x` (B, S, S, C) zoomed by 1/`zoom` about its centre and shifted by fractions of its side."""
    if (zoom, shift_x, shift_y) == (1.0, 0.0, 0.0):
        return x
    side = float(x.shape[1])
    centre = (side - 1) / 2
    transform = tf.constant([[zoom, 0.0, centre * (1 - zoom) - shift_x * side,
                              0.0, zoom, centre * (1 - zoom) - shift_y * side, 0.0, 0.0]], tf.float32)
    return keras.ops.image.affine_transform(x, tf.repeat(transform, tf.shape(x)[0], axis=0),
                                            interpolation="bilinear", fill_mode="constant", fill_value=0.0)


def embed_rows(embedder: keras.Model, values: np.ndarray, batch_size: int = 32, views: int = 1) -> np.ndarray:
    """Unit embeddings (N, D) float32 of array rows `values` ((N, S, S) grey or (N, s, s, 3)
    codes), each the normalised mean over the first `views` of `VIEWS`."""
    if not 1 <= views <= len(VIEWS):
        raise ValueError(f"views must be 1..{len(VIEWS)}, got {views}")
    if not len(values):
        return np.zeros((0, embedder.output.shape[-1]), np.float32)
    x = model_input(tf.convert_to_tensor(np.asarray(values)))
    total = None
    for zoom, shift_x, shift_y in VIEWS[:views]:
        view = _view(x, zoom, shift_x, shift_y)
        embedding = embedder.predict(view, batch_size=batch_size, verbose=0).astype(np.float32)
        total = embedding if total is None else total + embedding
    norms = np.linalg.norm(total, axis=1, keepdims=True)
    return total / np.maximum(norms, 1e-12)


def embed_array(embedder: keras.Model, array_path: str | Path, out_path: str | Path, *, batch_size: int = 32,
                views: int = 1, chunk_size: int = 256, progress: Callable[[int, int], None] | None = None) -> None:
    """Embed every row of `array_path` (a preprocess cache or codes) into `out_path` (.npy,
    float32 (N, D)); row i is the embedding of the array's row i. Built chunk by chunk: a rerun
    after a kill embeds only the chunks not yet done."""
    array = np.load(array_path, mmap_mode="r")
    check_rows_fit(embedder, array, array_path)
    n = len(array)
    key = hashlib.sha256(f"{file_identity(array_path)}\n{weights_digest(embedder)}\n{views}".encode()).hexdigest()
    out = ResumableArray(out_path, (n, embedder.output.shape[-1]), np.float32, chunk_size, key)
    if progress:
        progress(out.rows_done, n)  # where a resumed job starts
    for start in out.pending():
        stop = min(n, start + chunk_size)
        out.write_rows(start, embed_rows(embedder, array[start:stop], batch_size, views))
        out.mark_done(start)
        if progress:
            progress(out.rows_done, n)
    out.finish()


# ---------------------------------------------------------------------------------- training


class ValidationRetrievalMap5(keras.callbacks.Callback):
    """Adds ``val_map5`` to each epoch's logs: the MAP@5 of the validation photos identified
    against the catalogue photos by the embedder's current weights, new_whale inserted at the
    threshold of `thresholds` that scores best (as prediction will choose it), and that
    threshold as ``val_new_whale_threshold``."""

    def __init__(self, embedder: keras.Model, array_path: str | Path, catalogue_rows: np.ndarray,
                 catalogue_ids: Sequence[str], query_rows: np.ndarray, truths: Sequence[str],
                 thresholds: Sequence[float], *, batch_size: int = 32, aggregate: str = "max", top_k: int = 1):
        super().__init__()
        self.embedder, self.array_path, self.batch_size = embedder, array_path, batch_size
        # Rows ascending, each with its id or truth: a memory map reads them front to back.
        catalogue_order, query_order = np.argsort(catalogue_rows, kind="stable"), np.argsort(query_rows, kind="stable")
        self.catalogue_rows = np.asarray(catalogue_rows)[catalogue_order]
        self.catalogue_ids = np.asarray(catalogue_ids, dtype=object)[catalogue_order].tolist()
        self.query_rows = np.asarray(query_rows)[query_order]
        self.truths = np.asarray(truths, dtype=object)[query_order].tolist()
        self.thresholds, self.aggregate, self.top_k = list(thresholds), aggregate, top_k

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        array = np.load(self.array_path, mmap_mode="r")
        catalogue = embed_rows(self.embedder, array[self.catalogue_rows], self.batch_size)
        queries = embed_rows(self.embedder, array[self.query_rows], self.batch_size)
        candidates = rank_catalogue(queries, catalogue, self.catalogue_ids, aggregate=self.aggregate,
                                    top_k=self.top_k)
        threshold, curve = sweep_new_whale_threshold(candidates, self.truths, self.thresholds)
        if logs is not None:
            logs[MONITOR] = float(curve.loc[curve["chosen"], "map5"].iloc[0])
            logs["val_new_whale_threshold"] = threshold


def train_embedding(train_array: str | Path, train_index: str | Path, split_csv: str | Path,
                    model_path: str | Path, history_csv: str | Path, backup_dir: str | Path, *,
                    backbone: str = "compact", weights: str | Path | None = None, input_kind: str = "images",
                    input_size: int | None = None, width: int = 32, embedding_size: int = 128,
                    dropout: float = 0.2, sub_centers: int = 3, margin: float = 0.3, scale: float = 30.0,
                    epochs: int = 30, learning_rate: float = 1e-3, warmup_epochs: int = 2, batch_size: int = 32,
                    balance_power: float = 0.5, augment: bool = True, flip_as_new_identity: bool = False,
                    aggregate: str = "max", top_k: int = 1, thresholds: Sequence[float] = (0.5,),
                    mixed_precision: bool = True, seed: int = 0,
                    callbacks: Sequence[keras.callbacks.Callback] = ()) -> keras.Model:
    """Train an embedder on the `fit` photos of known individuals in `train_array` (grey images
    or codes, rows named by `train_index`) and save it to `model_path` (.keras; the ArcFace head
    is not kept).

    An epoch is as many examples as there are fit photos (mirrored ones doubling them with
    `flip_as_new_identity`), drawn by `balanced_batches`. After each epoch the validation photos
    are identified against the fit photos (``val_map5``); the saved embedder has the best
    epoch's weights (the last epoch's when the split has no validation photo). `history_csv`
    gets one row an epoch. `backup_dir` (not a rule output) holds an unfinished run's state: a
    rerun with the same inputs and settings resumes from its last finished epoch.
    """
    for name, value, allowed in (("backbone", backbone, BACKBONES), ("input", input_kind, INPUT_KINDS),
                                 ("aggregate", aggregate, AGGREGATES)):
        check_choice(name, value, allowed)
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    model_path = check_model_path(model_path)
    weights = resolve_weights(weights)  # a missing file fails now, before any work
    keras.utils.set_random_seed(seed)

    array = np.load(train_array, mmap_mode="r")
    check_array(array, input_kind, train_array)
    table = train_table(train_index, split_csv, len(array))
    known_fit = ((table["subset"] == "fit") & (table["id"] != NEW_WHALE)).to_numpy()
    classes = sorted(table.loc[known_fit, "id"].unique())
    if len(classes) < 2:
        raise ValueError(f"{split_csv}: the fit photos hold {len(classes)} known individuals; metric learning "
                         "needs at least two")
    labels_by_row = np.full(len(table), -1, np.int32)
    labels_by_row[known_fit] = table.loc[known_fit, "id"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    rows, labels, flipped = training_examples(labels_by_row, len(classes), flip_as_new_identity)
    n_classes = len(classes) * (2 if flip_as_new_identity else 1)
    steps_per_epoch = max(1, math.ceil(len(rows) / batch_size))
    scale_by_channel = code_scale(array, np.flatnonzero(known_fit), seed=seed) if input_kind == "codes" else [1.0]
    input_shape = (*array.shape[1:3], array.shape[3] if array.ndim == 4 else 1)

    settings = dict(inputs=[file_identity(p) for p in (train_array, train_index, split_csv)],
                    weights=file_identity(weights) if isinstance(weights, Path) else weights,
                    backbone=backbone, input=input_kind, input_size=input_size, width=width,
                    embedding_size=embedding_size, dropout=dropout, sub_centers=sub_centers, margin=margin,
                    scale=scale, epochs=epochs, learning_rate=learning_rate, warmup_epochs=warmup_epochs,
                    batch_size=batch_size, balance_power=balance_power, augment=augment,
                    flip_as_new_identity=flip_as_new_identity, aggregate=aggregate, top_k=top_k,
                    thresholds=list(thresholds), mixed_precision=mixed_precision, seed=seed)
    backup_dir = Path(backup_dir)
    prepare_backup(backup_dir, settings_key(settings))
    validation_rows = np.flatnonzero((table["subset"] == "validation").to_numpy())
    log.info("training a %s embedding on %d fit photos of %d individuals (%d classes, %s %s), "
             "scoring on %d validation photos", backbone, int(known_fit.sum()), len(classes), n_classes,
             input_kind, "x".join(map(str, input_shape)), len(validation_rows))

    with build_scope(mixed_precision):
        embedder = build_embedder(input_shape, backbone=backbone, weights=weights, scale=scale_by_channel,
                                  input_size=input_size, width=width, embedding_size=embedding_size,
                                  dropout=dropout, augment=augment, seed=seed)
        model = build_training_model(embedder, n_classes, sub_centers=sub_centers, margin=margin, scale=scale)
        compile_training_model(model, learning_rate, epochs * steps_per_epoch, warmup_epochs * steps_per_epoch)

    metric_callbacks: list[keras.callbacks.Callback] = []
    best = None
    if len(validation_rows):
        fit_rows = np.flatnonzero(known_fit)
        best = BestWeights(backup_dir / "best", MONITOR, mode="max")
        metric_callbacks = [ValidationRetrievalMap5(embedder, train_array, fit_rows, table["id"].to_numpy()[fit_rows],
                                                    validation_rows, table["truth"].to_numpy()[validation_rows],
                                                    thresholds, batch_size=batch_size, aggregate=aggregate,
                                                    top_k=top_k), best]
    data = balanced_batches(train_array, rows, labels, flipped, batch_size, balance_power, seed)
    fit_resumably(model, data, backup_dir, epochs=epochs, steps_per_epoch=steps_per_epoch,
                  metric_callbacks=metric_callbacks, callbacks=callbacks, logger=log)
    if best is not None:
        chosen = best.restore(model)
        log.info("best epoch %d: validation MAP@5 %.4f", chosen["epoch"], chosen["value"])
    finish_training(embedder, model_path, history_csv, backup_dir)
    return embedder


# ---------------------------------------------------------------------------------- catalogue


def read_additions(labels_csv: str | Path, images_dir: str | Path, *, max_pixels: int, n_jobs: int = 1
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The usable photos of a folder of new labelled photos (image, id, width, height, sorted by
    image) and the rejected ones (image, source, row, reason), checked as ingest checks train.
    `new_whale` rows are rejected: they name no individual to add."""
    table, rejected = read_train_table(labels_csv)
    infos = Parallel(n_jobs=n_jobs, batch_size=32)(
        delayed(inspect_file)(Path(images_dir) / image, max_pixels) for image in table["image"])
    usable = []
    for (image, whale_id, row), info in zip(table[["image", "id", "row"]].itertuples(index=False), infos):
        if "error" in info:
            rejected.append({"image": image, "split": "additions", "source": Path(labels_csv).name, "row": row,
                             "reason": f"{Path(images_dir).name}/{image}: {info['error']}"})
        elif whale_id == NEW_WHALE:
            rejected.append({"image": image, "split": "additions", "source": Path(labels_csv).name, "row": row,
                             "reason": f"{NEW_WHALE} names no individual to add to the catalogue"})
        else:
            usable.append({"image": image, "id": whale_id, "width": info["width"], "height": info["height"]})
    photos = pd.DataFrame(usable, columns=["image", "id", "width", "height"]).sort_values("image")
    return photos.reset_index(drop=True), pd.DataFrame(rejected, columns=REJECTED_COLUMNS)


def add_photos_to_catalogue(labels_csv: str | Path, images_dir: str | Path, model_path: str | Path, *,
                            images_out: str | Path, embeddings_out: str | Path, index_out: str | Path,
                            rejected_out: str | Path, input_kind: str = "images", size: int = 896,
                            max_pixels: int = 100_000_000, batch_size: int = 32, views: int = 1,
                            chunk_size: int = 256, n_jobs: int = 1) -> pd.DataFrame:
    """Check, preprocess (into `images_out`, as the preprocess stage does at `size`) and embed
    (into `embeddings_out`, rows named by `index_out`: image, id) the photos listed in
    `labels_csv` (Image,Id) and kept in `images_dir`, for retrieval to search beside train.
    Rejected rows go to `rejected_out`; none usable is an error. Returns the index."""
    if input_kind != "images":
        raise ValueError("photos can be added to the catalogue of an embedding trained on images only "
                         f"(metric_learning.input is {input_kind!r}): codes would need the autoencoder too")
    photos, rejected = read_additions(labels_csv, images_dir, max_pixels=max_pixels, n_jobs=n_jobs)
    for row in rejected.itertuples():
        log.warning("rejected %s (%s row %s): %s", row.image, row.source, row.row, row.reason)
    if photos.empty:
        raise ValueError(f"{labels_csv}: no usable photo of a known individual to add"
                         + (f"; first problem: row {rejected['row'].iloc[0]}: {rejected['reason'].iloc[0]}"
                            if len(rejected) else ""))
    build_cache([Path(images_dir) / image for image in photos["image"]], images_out, size=size, n_jobs=n_jobs,
                sizes=list(zip(photos["width"], photos["height"])))
    embed_array(load_embedder(model_path), images_out, embeddings_out, batch_size=batch_size, views=views,
                chunk_size=chunk_size)
    write_csv(rejected, rejected_out)
    write_csv(photos[["image", "id"]], index_out)
    log.info("added %d photos of %d individuals to the catalogue", len(photos), photos["id"].nunique())
    return photos[["image", "id"]]
