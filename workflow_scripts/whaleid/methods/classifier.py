"""The published transfer-learning classifier: an ImageNet CNN fine-tuned to name individuals.

The write-up feeds the autoencoder's 3-channel codes to VGG19 (or ResNet50) without its top,
adds global average pooling, dropout and a softmax over the individuals, trains the new head
with the base frozen, then fine-tunes the top of the base at a lower learning rate. This
module does that for "vgg19" and "resnet50", and for "mobilenetv2", light enough for a CPU.

Where it differs from the write-up, and why:
- The codes have no fixed range (ReLU outputs), but every backbone's `preprocess_input`
  expects 0..255 pixels: each channel is scaled to them (`backbones.ToPixels`), and the scale
  is part of the saved model, so prediction cannot use another. With the setting ``input:
  images`` the model reads the preprocessed grey images instead (one channel repeated to three).
- Augmentation on the fly (rotation, shift, zoom, brightness), without horizontal flips unless
  asked: a mirrored fluke is another animal's pattern.
- `new_whale` is not a softmax class by default (its photos are of many animals): it is
  inserted among the five answers where the model's confidence falls below a threshold,
  chosen on validation by MAP@5, as every method chooses its own (`answers.answer`).
  Photos that are duplicates of catalogue photos keep their id first.
- The best epoch is chosen by validation MAP@5, the competition's score, not by loss.
- Training streams from the memory-mapped arrays and resumes after a kill (`training`).

Import this module only after `gpus.select_devices` has chosen the job's GPUs: it imports
TensorFlow, which fixes the visible devices when it first initialises CUDA.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from whaleid.identification.answers import Identification, identify_with, sweep_new_whale_threshold
from whaleid.identification.candidates import N_CANDIDATES, Candidates, check_known_individuals
from whaleid.identification.search import Queries, Search
from whaleid.io.files import write_text
from whaleid.learning.augmentation import Augmentation, build_augmentation
from whaleid.learning.backbones import (
    MIN_SIDE,
    BackbonePreprocessing,
    ToPixels,
    build_backbone,
    check_rows_fit,
    model_input,
    resolve_weights,
)
from whaleid.learning.pretrained import backbone_side
from whaleid.learning.tensorflow_runtime import build_scope
from whaleid.learning.training import (
    MONITOR,
    ArrayRows,
    TrainingRun,
    TrainingSet,
    check_model_path,
    row_batches,
    weights_identity,
)
from whaleid.settings import ClassifierSettings
from whaleid.vocabulary import CLASS_WEIGHTS, NEW_WHALE, check_choice

log = logging.getLogger(__name__)

AUGMENTATION = Augmentation(brightness=0.1, contrast=0.0, rotation_degrees=15.0, shift=0.1, zoom=0.1)


# ---------------------------------------------------------------------------------- model


def build_classifier(input_shape: tuple[int, ...], n_classes: int, *, backbone: str,
                     weights: str | Path | None, scale: Sequence[float], input_size: int | None, dropout: float,
                     augment: bool, flip: bool, seed: int) -> keras.Model:
    """input (codes (s, s, 3) or grey images (S, S, 1)) -> ``to_pixels`` -> [``augmentation``]
    -> [``resize`` to `input_size`] -> ``preprocess`` -> ``base`` (the backbone, without top)
    -> ``pool`` (global average) -> ``dropout`` -> ``probabilities`` (softmax over `n_classes`,
    float32 even under mixed precision). The layers before the base compute in float32."""
    if n_classes < 1:
        raise ValueError(f"n_classes must be at least 1, got {n_classes}")
    inputs = keras.Input(tuple(input_shape), name="input")
    x = ToPixels(scale, dtype="float32", name="to_pixels")(inputs)
    if augment:
        x = build_augmentation(replace(AUGMENTATION, flip=flip), seed)(x)
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


def save_labels(path: str | Path, class_ids: Sequence[str], **details) -> None:
    """The label encoding (class index -> id, in ``classes``) as JSON, with `details` (settings
    a reader may want: backbone, input, scale) beside it."""
    write_text(json.dumps({"classes": list(class_ids), **details}, indent=1) + "\n", path)


def load_labels(path: str | Path) -> list[str]:
    """The ids of the model's classes, in class-index order."""
    return list(json.loads(Path(path).read_text())["classes"])


def class_weights(counts: Sequence[int] | np.ndarray, method: str, beta: float) -> np.ndarray:
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
# The probability-specific part; inserting new_whale and choosing its threshold is `identification`'s.


def rank_candidates(probabilities: np.ndarray, class_ids: Sequence[str]) -> Candidates:
    """The `Candidates` of each row of `probabilities` (N, classes): the four likeliest known
    ids, and the probability of the new_whale class as ``own`` (zeros when it is not a class).
    Ties go to the earlier class."""
    ids = np.asarray(class_ids, dtype=object)
    probabilities = np.asarray(probabilities)  # float32 kept: a test set's array is large
    if probabilities.ndim != 2 or probabilities.shape[1] != len(ids):
        raise ValueError(f"probabilities of shape {probabilities.shape} for {len(ids)} classes")
    known = ids != NEW_WHALE
    check_known_individuals(int(known.sum()), "the classifier's classes")
    own = probabilities[:, ~known][:, 0] if not known.all() else np.zeros(len(probabilities))
    known_probabilities = probabilities[:, known]
    order = np.argsort(-known_probabilities, axis=1, kind="stable")[:, :N_CANDIDATES]
    return Candidates(ids[known][order].tolist(), np.take_along_axis(known_probabilities, order, axis=1), own)


# ---------------------------------------------------------------------------------- input


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


def predict_probabilities(model: keras.Model, array_path: str | Path, rows: Sequence[int] | np.ndarray | None, *,
                          batch_size: int) -> np.ndarray:
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
                 thresholds: Sequence[float]):
        super().__init__()
        self.data, self.truths, self.class_ids, self.thresholds = data, list(truths), list(class_ids), thresholds

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        probabilities = self.model.predict(self.data, verbose=0)
        threshold, curve = sweep_new_whale_threshold(rank_candidates(probabilities, self.class_ids), self.truths,
                                                     self.thresholds)
        if logs is not None:
            logs[MONITOR] = float(curve.loc[curve["chosen"], "map5"].iloc[0])
            logs["val_new_whale_threshold"] = threshold


# ---------------------------------------------------------------------------------- stage


def train_classifier(train_array: str | Path, train_index: str | Path, split_csv: str | Path,
                     model_path: str | Path, labels_path: str | Path, history_csv: str | Path,
                     backup_dir: str | Path, settings: ClassifierSettings, *,
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
    epoch. `settings.class_weights`: see `class_weights`. `settings.new_whale`: "exclude" leaves
    its photos out, "class" makes them a class of their own. `callbacks` run after the built-in
    ones.
    """
    s = settings
    model_path = check_model_path(model_path)
    weights = resolve_weights(s.weights)  # a missing file fails now, before any work
    keras.utils.set_random_seed(s.seed)

    photos = TrainingSet(train_array, train_index, split_csv, s.input)
    if backbone_side(photos.array.shape[1], s.input_size) < MIN_SIDE:
        raise ValueError(f"{s.backbone} needs inputs of at least {MIN_SIDE}x{MIN_SIDE}, but {train_array} holds "
                         f"{photos.array.shape[1]}x{photos.array.shape[2]} and input_size is {s.input_size}: set "
                         f"input_size to {MIN_SIDE} or more to resize them in the model")
    classes, labels_by_row = photos.labels(with_new_whale=s.new_whale == "class")
    check_known_individuals(sum(c != NEW_WHALE for c in classes), "the fit images")
    fit_rows = np.flatnonzero(labels_by_row >= 0)
    counts = np.bincount(labels_by_row[fit_rows], minlength=len(classes))
    weights_by_class = class_weights(counts, s.class_weights, s.effective_beta)
    validation_rows = photos.validation_rows
    scale = photos.input_scale(fit_rows, s.seed)

    run = TrainingRun(backup_dir, {**vars(s), "inputs": photos.identity, "weights": weights_identity(weights)},
                      scored=bool(len(validation_rows)), logger=log)
    log.info("training %s on %d fit images of %d ids (%s %s), scoring on %d validation images",
             s.backbone, len(fit_rows), len(classes), s.input, "x".join(map(str, photos.input_shape)),
             len(validation_rows))

    train_data = training_data(train_array, fit_rows, labels_by_row, s.batch_size, s.seed)
    scorer = None
    if len(validation_rows):
        truths = photos.table["truth"].to_numpy()[validation_rows]  # rows ascending, as input_data yields them
        scorer = ValidationMap5(input_data(train_array, validation_rows, s.batch_size), truths, classes, s.thresholds)
    fit = dict(class_weight=None if s.class_weights == "none" else dict(enumerate(weights_by_class.tolist())),
               scorer=scorer, callbacks=callbacks)

    with build_scope(s.mixed_precision):
        model = build_classifier(photos.input_shape, len(classes), backbone=s.backbone, weights=weights, scale=scale,
                                 input_size=s.input_size, dropout=s.dropout, augment=s.augment, flip=s.flip,
                                 seed=s.seed)
        freeze_base(model)
        compile_classifier(model, s.head_learning_rate)
    if s.head_epochs:
        run.fit(model, train_data, epochs=s.head_epochs, state="head", **fit)
    if s.fine_tune_epochs:
        if s.head_epochs:
            run.restore_best(model, say=False)
        with build_scope(s.mixed_precision):
            unfreeze_top(model, s.fine_tune_layers)
            compile_classifier(model, s.fine_tune_learning_rate)
        run.fit(model, train_data, epochs=s.head_epochs + s.fine_tune_epochs, initial_epoch=s.head_epochs,
                state="fine_tune", **fit)
    run.restore_best(model)

    history = run.history()
    history.insert(1, "phase", np.where(history["epoch"] < s.head_epochs, "head", "fine_tune"))
    save_labels(labels_path, classes, backbone=s.backbone, input=s.input, input_size=s.input_size,
                new_whale=s.new_whale, scale=scale)
    run.finish(model, model_path, history_csv, history)
    return model


def identify(model_path: str | Path, labels_path: str | Path, train_array: str | Path, train_index: str | Path,
             test_array: str | Path, test_index: str | Path, split_csv: str | Path, manifest_csv: str | Path, *,
             phash_distances: Sequence[int], thresholds: Sequence[float], batch_size: int,
             reviewed: str | Path | None = None, encounters: str | Path | None = None) -> Identification:
    """The method's answers: the validation photos (of `train_array`) and the test photos (of
    `test_array`) ranked by the model's class probabilities, then answered as every method is
    (`answers.answer`): duplicates first, new_whale at a probability threshold chosen on
    validation. The model was trained on the fit photos only: they are its catalogue. Photos a
    person identified (`reviewed`: `Queries.read`) add no class without retraining: they are
    found as duplicates, and answer first for themselves. `encounters`: `Queries.read`."""
    class_ids = load_labels(labels_path)
    model = load_classifier(model_path)
    if model.output.shape[-1] != len(class_ids):
        raise ValueError(f"{model_path} has {model.output.shape[-1]} classes but {labels_path} lists {len(class_ids)}")
    queries = Queries.read(train_index, test_index, split_csv, manifest_csv, reviewed, encounters)
    queries.check_rows(len(np.load(train_array, mmap_mode="r")), len(np.load(test_array, mmap_mode="r")),
                       train_array, test_array)

    def rank(search: Search) -> Candidates:
        array = train_array if search.split == "validation" else test_array
        return rank_candidates(predict_probabilities(model, array, search.query_rows, batch_size=batch_size),
                               class_ids)

    return identify_with(rank, queries, phash_distances, thresholds, log)
