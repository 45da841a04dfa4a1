"""The metric-learning method's model: an embedding in which photos of one individual lie close together.

What the winners of the whale competitions did instead of a softmax over the individuals: a
backbone, generalised-mean (GeM) pooling and a small projection give each photo a unit-length
embedding; during training a sub-center ArcFace head (Deng et al. 2019, 2020) pulls each
embedding towards one of a few learned centres of its individual by an angular margin. The
head is thrown away after training: identification compares embeddings with those of the
catalogue (`retrieval`), so individuals never seen in training can be added without
retraining (`additions`).

Choices, and why:
- `new_whale` photos are not trained on: they are of many animals, not one.
- Each batch is drawn with probability count^-`balance_power` per photo (0: as they come;
  1: every individual equally often), so the few animals with dozens of photos do not
  dominate and the many with one or two are seen.
- No horizontal flips of an individual: a mirrored fluke (or head) is another pattern. With
  `flip_as_new_identity`, each individual's mirrored photos form a second class of their own,
  more classes to separate from (the 2019 winner's trick).
- The backbones are the classifier's keras.applications ones (`backbones`, with the same
  `weights:` handling) and "compact", a plain Conv-BN-ReLU network small enough to train from
  scratch on a CPU.
- The best epoch is chosen by validation MAP@5 of retrieval, the score that matters.
- Embedding averages a few views (a zoom, small shifts; never a flip) when asked (test-time
  augmentation), and resumes after a kill like the other caches.

Import this module only after `gpus.select_devices` has chosen the job's GPUs: it imports
TensorFlow, which fixes the visible devices when it first initialises CUDA.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from whaleid.identification.answers import sweep_new_whale_threshold
from whaleid.io.arrays import fill_in_chunks, write_rows
from whaleid.learning.augmentation import Augmentation, build_augmentation, similarity_rows, warp
from whaleid.learning.backbones import (
    MIN_SIDE,
    BackbonePreprocessing,
    ToPixels,
    build_backbone,
    check_rows_fit,
    model_input,
    resolve_weights,
)
from whaleid.learning.tensorflow_runtime import build_scope, several_replicas
from whaleid.learning.training import (
    MONITOR,
    ArrayRows,
    TrainingRun,
    TrainingSet,
    check_model_path,
    weights_digest,
    weights_identity,
)
from whaleid.methods.metric_learning.retrieval import rank_catalogue
from whaleid.settings import MetricLearningSettings
from whaleid.vocabulary import EMBEDDING_BACKBONES, check_choice

log = logging.getLogger(__name__)

# Stronger than the classifier's: an embedding trained on a few photos an individual must not
# learn the light and sea of the day they were taken. Never a flip of the same individual.
AUGMENTATION = Augmentation(brightness=0.2, contrast=0.2, rotation_degrees=15.0, shift=0.1, zoom=0.1)
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

    def __init__(self, n_classes: int, sub_centers: int, margin: float, scale: float, **kwargs):
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


def build_compact_backbone(input_shape: tuple[int, int, int], width: int) -> keras.Model:
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


def build_embedder(input_shape: tuple[int, ...], *, backbone: str, weights: str | Path | None,
                   scale: Sequence[float], input_size: int | None, width: int, embedding_size: int, dropout: float,
                   augment: bool, seed: int) -> keras.Model:
    """input (grey images (S, S, 1) or codes (s, s, 3)) -> ``to_pixels`` -> [``augmentation``,
    training only] -> [``resize`` to `input_size`] -> ``preprocess`` -> ``base`` -> ``gem`` ->
    ``dropout`` -> ``projection`` -> ``projection_bn`` -> ``embedding`` (unit length, float32).

    `weights` apply to the keras.applications backbones (as for the classifier); "compact"
    always starts from random weights, of `width` filters in its first stage.
    """
    check_choice("backbone", backbone, EMBEDDING_BACKBONES)
    if embedding_size < 2:
        raise ValueError(f"embedding_size must be at least 2, got {embedding_size}")
    side = input_size or input_shape[0]
    if side < MIN_SIDE:
        raise ValueError(f"{backbone} needs inputs of at least {MIN_SIDE}x{MIN_SIDE}, got {side}x{side}: "
                         "set input_size to resize them in the model")
    inputs = keras.Input(tuple(input_shape), name="input")
    x = ToPixels(scale, dtype="float32", name="to_pixels")(inputs)
    if augment:
        x = build_augmentation(AUGMENTATION, seed)(x)
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


def build_training_model(embedder: keras.Model, n_classes: int, *, sub_centers: int, margin: float,
                         scale: float) -> keras.Model:
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
                     batch_size: int, balance_power: float, seed: int, n_batches: int | None = None
                     ) -> tf.data.Dataset:
    """A stream of `n_batches` ((x, label), label) batches (None: endless): examples drawn with
    replacement by `sampling_probabilities`, mirrored where `flipped`, read from the memory map a
    batch at a time. Reproducible for a `seed`."""
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

    # Batch i's draws depend on (seed, i) alone: parallel reads cannot change them. A read is a
    # few milliseconds (the augmentation is the model's): two at a time keep a training step
    # fed. Not AUTOTUNE: its tuning thread, which wakes at most once a minute, is what TensorFlow
    # waits for when training ends (31 s to 56 s after the demo's 25 to 30 epochs).
    options = tf.data.Options()
    options.autotune.enabled = False
    batches = tf.data.Dataset.counter() if n_batches is None else tf.data.Dataset.range(n_batches)
    return batches.map(read, num_parallel_calls=2).prefetch(2).with_options(options)


def view_transforms(side: int, views: int) -> list[list[float] | None]:
    """The transform of each of the first `views` of `VIEWS` for photos `side` pixels square
    (`augmentation.similarity_rows`, zoomed about the centre, shifted by shares of the side);
    None for the photo itself."""
    transforms = []
    for zoom, shift_x, shift_y in VIEWS[:views]:
        if (zoom, shift_x, shift_y) == (1.0, 0.0, 0.0):
            transforms.append(None)
            continue
        # Shifted by a share of the side in the zoomed view: that is shift * side / zoom pixels before it.
        rows = similarity_rows(1.0, 0.0, zoom, shift_x * side / zoom, shift_y * side / zoom, float(side))
        transforms.append([*rows, 0.0, 0.0])
    return transforms


def embed_rows(embedder: keras.Model, values: np.ndarray, *, batch_size: int, views: int) -> np.ndarray:
    """Unit embeddings (N, D) float32 of array rows `values` ((N, S, S) grey or (N, s, s, 3)
    codes), each the normalised mean over the first `views` of `VIEWS`."""
    if not 1 <= views <= len(VIEWS):
        raise ValueError(f"views must be 1..{len(VIEWS)}, got {views}")
    if not len(values):
        return np.zeros((0, embedder.output.shape[-1]), np.float32)
    x = model_input(tf.convert_to_tensor(np.asarray(values)))
    total = None
    for transform in view_transforms(x.shape[1], views):
        view = x if transform is None else warp(
            x, tf.repeat(tf.constant([transform], tf.float32), tf.shape(x)[0], axis=0))
        embedding = embedder.predict(view, batch_size=batch_size, verbose=0).astype(np.float32)
        total = embedding if total is None else total + embedding
    norms = np.linalg.norm(total, axis=1, keepdims=True)
    return total / np.maximum(norms, 1e-12)


def embed_array(embedder: keras.Model, array_path: str | Path, out_path: str | Path, *, batch_size: int,
                views: int, chunk_size: int, progress: Callable[[int, int], None] | None = None) -> None:
    """Embed every row of `array_path` (a preprocess cache or codes) into `out_path` (.npy,
    float32 (N, D)); row i is the embedding of the array's row i. Built chunk by chunk: a rerun
    after a kill embeds only the chunks not yet done (`arrays.fill_in_chunks`)."""
    array = np.load(array_path, mmap_mode="r")
    check_rows_fit(embedder, array, array_path)

    def fill_chunk(partial_path: str, start: int, stop: int) -> None:
        write_rows(partial_path, start, embed_rows(embedder, array[start:stop], batch_size=batch_size, views=views))

    fill_in_chunks(out_path, (len(array), embedder.output.shape[-1]), np.float32, chunk_size, inputs=[array_path],
                   settings={"weights": weights_digest(embedder), "views": views}, fill_chunk=fill_chunk,
                   progress=progress)


# ---------------------------------------------------------------------------------- training


class ValidationRetrievalMap5(keras.callbacks.Callback):
    """Adds ``val_map5`` to each epoch's logs: the MAP@5 of the validation photos identified
    against the catalogue photos by the embedder's current weights, new_whale inserted at the
    threshold of `thresholds` that scores best (as prediction will choose it), and that
    threshold as ``val_new_whale_threshold``."""

    def __init__(self, embedder: keras.Model, array_path: str | Path, catalogue_rows: np.ndarray,
                 catalogue_ids: Sequence[str], query_rows: np.ndarray, truths: Sequence[str],
                 thresholds: Sequence[float], *, batch_size: int, aggregate: str, top_k: int):
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
        catalogue = embed_rows(self.embedder, array[self.catalogue_rows], batch_size=self.batch_size, views=1)
        queries = embed_rows(self.embedder, array[self.query_rows], batch_size=self.batch_size, views=1)
        candidates = rank_catalogue(queries, catalogue, self.catalogue_ids, aggregate=self.aggregate,
                                    top_k=self.top_k)
        threshold, curve = sweep_new_whale_threshold(candidates, self.truths, self.thresholds)
        if logs is not None:
            logs[MONITOR] = float(curve.loc[curve["chosen"], "map5"].iloc[0])
            logs["val_new_whale_threshold"] = threshold


def train_embedding(train_array: str | Path, train_index: str | Path, split_csv: str | Path,
                    model_path: str | Path, history_csv: str | Path, backup_dir: str | Path,
                    settings: MetricLearningSettings, *,
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
    s = settings
    model_path = check_model_path(model_path)
    weights = resolve_weights(s.weights)  # a missing file fails now, before any work
    keras.utils.set_random_seed(s.seed)

    photos = TrainingSet(train_array, train_index, split_csv, s.input)
    classes, labels_by_row = photos.labels(with_new_whale=False)
    if len(classes) < 2:
        raise ValueError(f"{split_csv}: the fit photos hold {len(classes)} known individuals; metric learning "
                         "needs at least two")
    fit_rows = np.flatnonzero(labels_by_row >= 0)
    rows, labels, flipped = training_examples(labels_by_row, len(classes), s.flip_as_new_identity)
    n_classes = len(classes) * (2 if s.flip_as_new_identity else 1)
    steps_per_epoch = max(1, math.ceil(len(rows) / s.batch_size))
    scale = photos.input_scale(fit_rows, s.seed)

    validation_rows = photos.validation_rows
    run = TrainingRun(backup_dir, {**vars(s), "inputs": photos.identity, "weights": weights_identity(weights)},
                      scored=bool(len(validation_rows)), logger=log)
    log.info("training a %s embedding on %d fit photos of %d individuals (%d classes, %s %s), "
             "scoring on %d validation photos", s.backbone, len(fit_rows), len(classes), n_classes,
             s.input, "x".join(map(str, photos.input_shape)), len(validation_rows))

    with build_scope(s.mixed_precision):
        embedder = build_embedder(photos.input_shape, backbone=s.backbone, weights=weights, scale=scale,
                                  input_size=s.input_size, width=s.width, embedding_size=s.embedding_size,
                                  dropout=s.dropout, augment=s.augment, seed=s.seed)
        model = build_training_model(embedder, n_classes, sub_centers=s.sub_centers, margin=s.margin, scale=s.scale)
        compile_training_model(model, s.learning_rate, s.epochs * steps_per_epoch, s.warmup_epochs * steps_per_epoch)

    scorer = None
    if len(validation_rows):
        scorer = ValidationRetrievalMap5(embedder, train_array, fit_rows, photos.table["id"].to_numpy()[fit_rows],
                                         validation_rows, photos.table["truth"].to_numpy()[validation_rows],
                                         s.thresholds, batch_size=s.batch_size, aggregate=s.aggregate, top_k=s.top_k)
    # As many batches as the epochs take: none is read for nothing when training ends.
    data = balanced_batches(train_array, rows, labels, flipped, s.batch_size, s.balance_power, s.seed,
                            n_batches=s.epochs * steps_per_epoch)
    run.fit(model, data, epochs=s.epochs, steps_per_epoch=steps_per_epoch, scorer=scorer, callbacks=callbacks)
    run.restore_best(model)
    run.finish(embedder, model_path, history_csv)
    return embedder
