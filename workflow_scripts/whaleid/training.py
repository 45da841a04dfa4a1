"""What every training stage shares: devices, precision, streaming input, and crash-resume.

A training job (the autoencoder, the classifier) runs the same way wherever it runs:
- on the CPU, or on one GPU, or data-parallel on several (`distribution_strategy`), with
  mixed precision only where it pays, on a GPU (`build_scope`);
- reading its examples a batch at a time from memory-mapped .npy arrays (`ArrayRows`,
  `row_batches`), so that no array is ever loaded whole;
- killable at any moment (even by SIGKILL): `fit_resumably` keeps the training state, the
  per-epoch history and the best weights in a backup folder, and a rerun with the same
  inputs and settings (`prepare_backup`'s key) resumes from the last finished epoch.
  `finish_training` writes the outputs atomically and only then removes the backup.

The backup folder must not be one of the rule's outputs: Snakemake deletes those when a job
fails, which is exactly when the backup is needed.

Import this module only after `devices.select_devices` has chosen the job's GPUs: it imports
TensorFlow, which fixes the visible devices when it first initialises CUDA.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from .files import atomic_output, write_csv, write_text

log = logging.getLogger(__name__)

HISTORY_FILE = "history.csv"


# ---------------------------------------------------------------------------------- devices


def limit_cpu_threads(threads: int) -> None:
    """Keep TensorFlow's CPU work to about `threads` cores (the rule's ``threads:``), so that
    jobs Snakemake runs side by side do not fight over the cores. Call before TensorFlow runs
    its first operation (it raises RuntimeError after)."""
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    # Independent ops at once: these networks are chains, so two are plenty.
    tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))


def visible_gpus() -> list:
    return tf.config.list_physical_devices("GPU")


def distribution_strategy() -> tf.distribute.Strategy:
    """The strategy of the scope the caller is in, if any (a notebook that chose its own devices
    or kind of strategy: ``with strategy.scope(): train_autoencoder(...)``); else MirroredStrategy
    (data-parallel, each batch split across the devices) when more than one GPU is visible, else
    the default strategy.

    One per process: a model's variables belong to the strategy they were made under, and
    recompiling it (a new optimizer, as for fine-tuning) must happen under the same one.
    """
    if tf.distribute.has_strategy():
        # Entering a second strategy's scope inside the caller's would raise.
        return tf.distribute.get_strategy()
    return _strategy_for_visible_gpus()


@functools.cache
def _strategy_for_visible_gpus() -> tf.distribute.Strategy:
    if len(visible_gpus()) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def several_replicas() -> bool:
    """Whether models built now train on several devices at once (a MirroredStrategy over more
    than one): there batch norm must compute its statistics over the whole batch
    (``BatchNormalization(synchronized=...)``). On one device it must not: Keras's synchronized
    path computes the variance in one pass, as E[x²] - E[x]², which is less exact and changed
    the demo's results."""
    return tf.distribute.get_strategy().num_replicas_in_sync > 1


def precision_policy(mixed_precision: bool) -> str:
    """``mixed_float16`` when asked for and a GPU is visible; else ``float32`` (on a CPU,
    float16 arithmetic is emulated and slower)."""
    return "mixed_float16" if mixed_precision and visible_gpus() else "float32"


@contextlib.contextmanager
def build_scope(mixed_precision: bool) -> Iterator[tf.distribute.Strategy]:
    """Build and compile models inside this block: under the precision policy and the
    distribution strategy for the visible devices. The global policy is put back after.

    Under mixed_float16 Keras wraps the optimizer given to ``compile`` in a LossScaleOptimizer
    itself; give the model's output layer ``dtype="float32"`` so the loss is computed at full
    precision.
    """
    policy = precision_policy(mixed_precision)
    log.info("devices: %s; precision policy %s", [g.name for g in visible_gpus()] or "CPU", policy)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        strategy = distribution_strategy()
        with strategy.scope():
            yield strategy
    finally:
        keras.mixed_precision.set_global_policy(previous)


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


def file_identity(path: str | Path) -> str:
    """What stands for a file's contents in a resume key: its path, size and modification time.

    Hashing a 20 GB cache would cost more than an epoch, and a rebuilt file is a new file.
    """
    path = Path(path)
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


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
