"""What every training stage shares: streaming input, crash-resume, the best epoch, and the
skeleton of a model trained on the fit photos and scored on the validation ones.

A training job (the autoencoder, the classifier, the embedding) runs the same way wherever it
runs (on the CPU, one GPU or several: `tensorflow_runtime.build_scope`):
- reading its examples a batch at a time from memory-mapped .npy arrays (`ArrayRows`,
  `row_batches`), so that no array is ever loaded whole;
- killable at any moment (even by SIGKILL): `fit_resumably` keeps the training state, the
  per-epoch history and the best weights in a backup folder, and a rerun with the same
  inputs and settings (`prepare_backup`'s key) resumes from the last finished epoch.
  `finish_training` writes the outputs atomically and only then removes the backup.

The classifier and the embedding also share what they train on (`TrainingSet`: a train array's
rows with their subset, id and truth, labelled, scaled) and how a run goes (`TrainingRun`: the
backup, a validation-MAP@5 callback and `BestWeights`, the best epoch restored at the end); each
keeps only its model, its batches and its way of scoring an epoch.

The backup folder must not be one of the rule's outputs: Snakemake deletes those when a job
fails, which is exactly when the backup is needed.

Import this module only after `gpus.select_devices` has chosen the job's GPUs: it imports
TensorFlow, which fixes the visible devices when it first initialises CUDA.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from whaleid.io.arrays import file_identity
from whaleid.io.files import atomic_output, write_csv, write_text
from whaleid.io.tables import train_table
from whaleid.learning.backbones import check_array, code_scale
from whaleid.vocabulary import NEW_WHALE

log = logging.getLogger(__name__)

HISTORY_FILE = "history.csv"
# What the classifier and the embedding are scored by after each epoch, and keep the best of.
MONITOR = "val_map5"


# ---------------------------------------------------------------------------------- input


class ArrayRows:
    """The rows of one or more .npy arrays of one row shape and dtype (memory-mapped),
    numbered one after another."""

    def __init__(self, paths: Sequence[str | Path]):
        if not paths:
            raise ValueError("no array files given")
        self.paths = [Path(p) for p in paths]
        self.arrays = [np.load(p, mmap_mode="r") for p in self.paths]
        kinds = {(a.shape[1:], a.dtype) for a in self.arrays}
        if len(kinds) != 1 or any(a.ndim < 2 for a in self.arrays):
            raise ValueError("arrays must hold rows of one shape and dtype; got "
                             + ", ".join(f"{p.name}: {a.dtype} {a.shape}" for p, a in zip(self.paths, self.arrays)))
        self.row_shape: tuple[int, ...] = tuple(int(n) for n in self.arrays[0].shape[1:])
        self.dtype = self.arrays[0].dtype
        self.starts = np.cumsum([0] + [len(a) for a in self.arrays])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The rows numbered `rows`, in ascending row order.

        One fancy-index per array: sorted rows read the file front to back, and a batch is
        a set whose order does not matter.
        """
        rows = np.sort(np.asarray(rows, dtype=np.int64))
        if len(rows) and (rows[0] < 0 or rows[-1] >= len(self)):
            raise IndexError(f"rows {rows[0]}..{rows[-1]} outside 0..{len(self) - 1}")
        which = np.searchsorted(self.starts, rows, side="right") - 1
        out = np.empty((len(rows), *self.row_shape), self.dtype)
        for array in np.unique(which):
            mask = which == array
            out[mask] = self.arrays[array][rows[mask] - self.starts[array]]
        return out


def row_batches(rows: ArrayRows, indices: Sequence[int] | np.ndarray, batch_size: int, *, shuffle: bool,
                seed: int = 0) -> tf.data.Dataset:
    """Batches (row numbers int64 (B,), rows (B, *row_shape)) of the rows `indices`.

    Each batch is read from the memory maps in one fancy-index, in ascending row order: the
    row numbers that come with it say which row is which (to look up a label, say). Memory
    holds a few batches, never an array. With `shuffle` the batches differ every epoch,
    reproducibly for a `seed`; without, they follow `indices` sorted.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    indices = np.asarray(indices, dtype=np.int64)
    if shuffle:
        dataset = (tf.data.Dataset.from_tensor_slices(indices)
                   .shuffle(max(1, len(indices)), seed=seed, reshuffle_each_iteration=True))
    else:
        dataset = tf.data.Dataset.from_tensor_slices(np.sort(indices))
    dtype, row_shape = tf.as_dtype(rows.dtype), list(rows.row_shape)

    def read(batch_rows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        batch_rows = tf.sort(batch_rows)
        values = tf.numpy_function(rows.read, [batch_rows], dtype, stateful=False)
        return batch_rows, tf.ensure_shape(values, [None, *row_shape])

    return dataset.batch(batch_size).map(read, num_parallel_calls=tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------------- resume


def weights_identity(weights: str | Path | None) -> str | None:
    """What stands for a model's starting weights in a resume key: a weights file's identity,
    else what they are called (imagenet), or None."""
    return file_identity(weights) if isinstance(weights, Path) else weights


def weights_digest(model: keras.Model) -> str:
    """A digest of a model's weights, for the resume key of a cache it computes."""
    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()


def settings_key(settings: dict[str, Any]) -> str:
    """A digest of a run's inputs and settings (JSON-able values) for `prepare_backup`."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def prepare_backup(backup_dir: str | Path, key: str) -> None:
    """Keep `backup_dir` only if it was made by a run with the same `key` (inputs and settings);
    otherwise start it afresh."""
    backup_dir = Path(backup_dir)
    key_path = backup_dir / "key.json"
    if backup_dir.exists():
        if key_path.exists() and json.loads(key_path.read_text()).get("key") == key:
            log.info("found a backup of an interrupted run in %s: resuming", backup_dir)
            return
        log.info("discarding %s: left by a run with other inputs or settings", backup_dir)
        shutil.rmtree(backup_dir)
    backup_dir.mkdir(parents=True)
    key_path.write_text(json.dumps({"key": key}))


class EpochLog(keras.callbacks.Callback):
    """One log line as each epoch starts and ends (the rule's log shows where a rerun resumed).

    `logger` is the stage's, so the lines say which stage they come from.
    """

    def __init__(self, epochs: int, logger: logging.Logger = log):
        super().__init__()
        self.epochs, self.logger = epochs, logger

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.started = time.monotonic()
        # Counted from 1 for people; Keras's own epoch numbers (history.csv) start at 0.
        self.logger.info("epoch %d/%d started", epoch + 1, self.epochs)

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        values = ", ".join(f"{k}={v:.5g}" for k, v in sorted((logs or {}).items()))
        self.logger.info("epoch %d/%d finished in %.0f s: %s", epoch + 1, self.epochs,
                         time.monotonic() - self.started, values)


class BestWeights(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the best `monitor` value in `folder`, across resumes.

    Unlike ModelCheckpoint, the best value so far is kept on disk (``best.json``) with the
    weights, so a resumed run does not take its first epoch for the best. Weights are the
    model's variables only (``get_weights``), not the optimizer's, so the best of one phase
    can be restored into a model recompiled for the next. Ties keep the earlier epoch.
    """

    def __init__(self, folder: str | Path, monitor: str, mode: str = "max"):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be max or min, got {mode!r}")
        self.folder, self.monitor, self.mode = Path(folder), monitor, mode
        self.state_path = self.folder / "best.json"

    def best(self) -> dict | None:
        """{"epoch", "value", "weights"} of the best epoch so far, or None before the first."""
        return json.loads(self.state_path.read_text()) if self.state_path.exists() else None

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise KeyError(f"{self.monitor} is not among this epoch's logs {sorted(logs or {})}: "
                           "the callback computing it must come before BestWeights")
        best = self.best()
        if best is not None and not (value > best["value"] if self.mode == "max" else value < best["value"]):
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        weights = self.folder / f"best-{epoch}.npz"
        with atomic_output(weights) as tmp:
            np.savez(tmp, *self.model.get_weights())
        # The JSON names the file, so the pair changes in one rename: a kill leaves the old best
        # complete, at worst with an unused file beside it.
        write_text(json.dumps({"epoch": epoch, "value": float(value), "weights": weights.name}), self.state_path)
        for old in self.folder.glob("best-*.npz"):
            if old != weights:
                old.unlink()

    def restore(self, model: keras.Model) -> dict | None:
        """Set `model`'s weights to the best epoch's, if there is one; return its record."""
        best = self.best()
        if best is not None:
            with np.load(self.folder / best["weights"]) as saved:
                model.set_weights([saved[f"arr_{i}"] for i in range(len(saved.files))])
        return best


def fit_resumably(model: keras.Model, data: tf.data.Dataset, backup_dir: str | Path, *, epochs: int,
                  initial_epoch: int = 0, state: str = "keras", steps_per_epoch: int | None = None,
                  validation_data: tf.data.Dataset | None = None,
                  class_weight: dict[int, float] | None = None,
                  metric_callbacks: Sequence[keras.callbacks.Callback] = (),
                  callbacks: Sequence[keras.callbacks.Callback] = (), logger: logging.Logger = log) -> None:
    """``model.fit`` epochs `initial_epoch`..`epochs`-1, resuming from `backup_dir` if a killed run
    left its state there.

    Keras's BackupAndRestore state goes to ``backup_dir/<state>`` (its own folder, since it
    may delete the folder it is given): a training run in two phases (a head, then
    fine-tuning) gives each phase its own, and a phase already finished resumes with no
    epoch left to train. One row an epoch is appended to ``backup_dir/history.csv`` (see
    `final_history`). `metric_callbacks` run first, so what they add to the epoch's logs is
    logged, written to the history and seen by the callbacks after them (a `BestWeights`,
    say); `callbacks` run last, after the backup. An endless `data` stream needs
    `steps_per_epoch`.
    """
    backup_dir = Path(backup_dir)
    # The CSV row goes before the backup, so a kill between them repeats a row (resolved by
    # `final_history`) rather than losing one.
    model.fit(data, validation_data=validation_data, epochs=epochs, initial_epoch=initial_epoch,
              steps_per_epoch=steps_per_epoch, verbose=0, shuffle=False, class_weight=class_weight,
              callbacks=[*metric_callbacks, EpochLog(epochs, logger),
                         keras.callbacks.CSVLogger(str(backup_dir / HISTORY_FILE), append=True),
                         keras.callbacks.BackupAndRestore(str(backup_dir / state), double_checkpoint=True,
                                                          delete_checkpoint=False),
                         *callbacks])
    # BackupAndRestore tells fit where to start through this attribute, and nothing resets it:
    # left set, a later fit of the same model (the next phase) would start from this phase's
    # restored epoch instead of its own initial_epoch.
    model._initial_epoch = None


def final_history(backup_dir: str | Path) -> pd.DataFrame:
    """The history of the run in `backup_dir`, one row an epoch, in epoch order.

    A job killed after an epoch's row was written but before its backup was saved redoes
    that epoch on rerun; its later row is the one that matches the weights kept.
    """
    history = pd.read_csv(Path(backup_dir) / HISTORY_FILE)
    return history.drop_duplicates("epoch", keep="last").sort_values("epoch").reset_index(drop=True)


def check_model_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"model_path must end in .keras, got {path}")
    return path


def save_model(model: keras.Model, path: str | Path) -> None:
    """Save `model` to `path` (.keras) atomically."""
    with atomic_output(check_model_path(path)) as tmp:
        model.save(tmp)


def finish_training(model: keras.Model, model_path: str | Path, history_csv: str | Path,
                    backup_dir: str | Path, history: pd.DataFrame | None = None) -> None:
    """Write the model and the history (default: `final_history(backup_dir)`), then remove the
    backup. Outputs first, backup last: a kill in between reruns with no epoch left to train."""
    write_csv(final_history(backup_dir) if history is None else history, history_csv)
    save_model(model, model_path)
    shutil.rmtree(backup_dir)


# ---------------------------------------------------------------------------------- skeleton


class TrainingSet:
    """What a model trains on and is scored on: the rows of a train array (codes (N, s, s, 3) or
    grey squares (N, S, S), memory-mapped) with each row's image, id, subset and truth
    (``table``, from the array's index CSV and the validation split)."""

    def __init__(self, array_path: str | Path, index_csv: str | Path, split_csv: str | Path, input_kind: str):
        self.array_path, self.input_kind = Path(array_path), input_kind
        self.array = np.load(array_path, mmap_mode="r")
        check_array(self.array, input_kind, array_path)
        self.table = train_table(index_csv, split_csv, len(self.array))
        # What a resumed run must have trained on: a rebuilt input is another run.
        self.identity = [file_identity(p) for p in (array_path, index_csv, split_csv)]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """One row as the model takes it: grey squares get a channel axis."""
        return (*self.array.shape[1:3], self.array.shape[3] if self.array.ndim == 4 else 1)

    @property
    def validation_rows(self) -> np.ndarray:
        return np.flatnonzero((self.table["subset"] == "validation").to_numpy())

    def labels(self, with_new_whale: bool) -> tuple[list[str], np.ndarray]:
        """The classes (the sorted ids of the fit photos; new_whale among them only
        `with_new_whale`) and each row's class index (-1 for the rows not trained on)."""
        table = self.table
        learn = (table["subset"] == "fit") & ((table["id"] != NEW_WHALE) | with_new_whale)
        classes = sorted(table.loc[learn, "id"].unique())
        labels_by_row = np.full(len(table), -1, np.int32)
        labels_by_row[learn.to_numpy()] = table.loc[learn, "id"].map({c: i for i, c in enumerate(classes)}).to_numpy()
        return classes, labels_by_row

    def input_scale(self, rows: np.ndarray, seed: int) -> list[float]:
        """The `backbones.ToPixels` scale: each code channel's (`backbones.code_scale`, over
        `rows`), or 1 for grey squares, which are pixels already."""
        return code_scale(self.array, rows, seed=seed) if self.input_kind == "codes" else [1.0]


class TrainingRun:
    """One training job: its backup folder (resumed where a killed run with the same `key`
    settings left it), and, where the split has validation photos, the best epoch by
    validation MAP@5 (`MONITOR`), kept across resumes in ``backup_dir/best``."""

    def __init__(self, backup_dir: str | Path, key: dict[str, Any], *, scored: bool, logger: logging.Logger = log):
        self.backup_dir, self.logger = Path(backup_dir), logger
        prepare_backup(self.backup_dir, settings_key(key))
        self.best = BestWeights(self.backup_dir / "best", MONITOR, mode="max") if scored else None

    def metric_callbacks(self, scorer: keras.callbacks.Callback | None) -> list[keras.callbacks.Callback]:
        """`scorer` (which adds `MONITOR` to each epoch's logs) and the best-epoch keeper, in
        that order; none where the run is not scored."""
        return [scorer, self.best] if self.best is not None else []

    def fit(self, model: keras.Model, data: tf.data.Dataset, *, scorer: keras.callbacks.Callback | None,
            **fit_args) -> None:
        """`fit_resumably` in this run's backup, each epoch scored by `scorer`."""
        fit_resumably(model, data, self.backup_dir, metric_callbacks=self.metric_callbacks(scorer),
                      logger=self.logger, **fit_args)

    def restore_best(self, model: keras.Model, *, say: bool = True) -> None:
        """Give `model` the best epoch's weights, where the run is scored (and `say` which)."""
        if self.best is None:
            return
        chosen = self.best.restore(model)
        if say and chosen is not None:
            self.logger.info("best epoch %d: validation MAP@5 %.4f", chosen["epoch"], chosen["value"])

    def history(self) -> pd.DataFrame:
        return final_history(self.backup_dir)

    def finish(self, model: keras.Model, model_path: str | Path, history_csv: str | Path,
               history: pd.DataFrame | None = None) -> None:
        """Save `model` and the history (see `finish_training`); the backup goes."""
        finish_training(model, model_path, history_csv, self.backup_dir, history)

