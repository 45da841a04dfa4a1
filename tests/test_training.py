import json
import logging
import re

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import whaleid.learning.tensorflow_runtime as tensorflow_runtime
import whaleid.learning.training as training

# Keras converts its variables with np.array(copy=False) when saving weights: its warning, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def numbered_array(path, start, n):
    """float16 rows (n, 2, 2, 3) whose every value is the row's number across arrays."""
    np.save(path, np.broadcast_to(np.arange(start, start + n, dtype=np.float16)[:, None, None, None],
                                  (n, 2, 2, 3)).copy())
    return path


@pytest.fixture
def arrays(tmp_path):
    return [numbered_array(tmp_path / "a.npy", 0, 7), numbered_array(tmp_path / "b.npy", 7, 5)]


def test_rows_are_numbered_across_arrays_and_read_in_order(arrays, tmp_path):
    rows = training.ArrayRows(arrays)
    assert len(rows) == 12 and rows.row_shape == (2, 2, 3) and rows.dtype == np.float16
    assert rows.read(np.array([9, 2, 7]))[:, 0, 0, 0].tolist() == [2, 7, 9]
    with pytest.raises(IndexError):
        rows.read(np.array([12]))
    np.save(tmp_path / "other.npy", np.zeros((3, 2, 2, 1), np.float16))
    with pytest.raises(ValueError, match="one shape and dtype"):
        training.ArrayRows([arrays[0], tmp_path / "other.npy"])


def test_batches_carry_the_row_numbers_of_their_rows(arrays):
    rows = training.ArrayRows(arrays)
    indices = np.array([11, 0, 3, 8, 5, 6, 9])
    dataset = training.row_batches(rows, indices, 3, shuffle=True, seed=1)
    epochs = []
    for _ in range(2):
        batches = [(r.numpy(), v.numpy()) for r, v in dataset]
        assert [len(r) for r, _ in batches] == [3, 3, 1]
        for numbers, values in batches:
            assert np.array_equal(values[:, 0, 0, 0], numbers) and list(numbers) == sorted(numbers)
        epochs.append(np.concatenate([r for r, _ in batches]))
        assert sorted(epochs[-1]) == sorted(indices)
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled
    in_order = np.concatenate([r.numpy() for r, _ in training.row_batches(rows, indices, 3, shuffle=False)])
    assert in_order.tolist() == sorted(indices)


def test_a_backup_is_kept_only_for_the_same_settings(tmp_path):
    backup = tmp_path / "backup"
    key = training.settings_key({"epochs": 3, "seed": 0})
    assert key == training.settings_key({"seed": 0, "epochs": 3})
    training.prepare_backup(backup, key)
    (backup / "state").write_text("kept")
    training.prepare_backup(backup, key)
    assert (backup / "state").exists()
    training.prepare_backup(backup, training.settings_key({"epochs": 4, "seed": 0}))
    assert not (backup / "state").exists() and json.loads((backup / "key.json").read_text())["key"] != key


def test_history_keeps_the_last_row_of_a_repeated_epoch(tmp_path):
    pd.DataFrame({"epoch": [0, 1, 1, 2], "loss": [3.0, 2.0, 1.5, 1.0]}).to_csv(tmp_path / "history.csv", index=False)
    history = training.final_history(tmp_path)
    assert history["epoch"].tolist() == [0, 1, 2] and history["loss"].tolist() == [3.0, 1.5, 1.0]


def tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense")])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return model


def test_best_weights_survive_a_resume_and_a_new_optimizer(tmp_path):
    model = tiny_model()
    best = training.BestWeights(tmp_path / "best", "score")
    best.set_model(model)
    snapshots = {}
    for epoch, score in enumerate([0.2, 0.5, 0.5]):
        model.get_layer("dense").kernel.assign(np.full((4, 2), epoch, np.float32))
        snapshots[epoch] = model.get_weights()
        best.on_epoch_end(epoch, {"score": score})
    assert best.best()["epoch"] == 1  # ties keep the earlier epoch

    resumed = training.BestWeights(tmp_path / "best", "score")  # as a rerun makes it
    resumed.set_model(model)
    resumed.on_epoch_end(3, {"score": 0.4})
    assert resumed.best()["epoch"] == 1 and len(list((tmp_path / "best").glob("*.npz"))) == 1
    model.compile(optimizer=keras.optimizers.SGD(), loss="mse")  # as for fine-tuning
    assert resumed.restore(model)["value"] == 0.5
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), snapshots[1]))
    with pytest.raises(KeyError, match="must come before"):
        resumed.on_epoch_end(4, {"loss": 1.0})


class Interrupt(keras.callbacks.Callback):
    """Stops the process's training after epoch `at`'s backup, as a kill would."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt


class Started(keras.callbacks.Callback):
    def __init__(self, started):
        super().__init__()
        self.started = started

    def on_epoch_begin(self, epoch, logs=None):
        self.started.append(epoch)


def two_phases(backup, started, interrupt_at=None):
    """Two fits of one model, as the classifier's head and fine-tuning phases: epochs 0-1, 2-3."""
    x, y = np.random.default_rng(0).random((16, 4)), np.random.default_rng(1).random((16, 2))
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    model = tiny_model()
    extra = [Interrupt(interrupt_at)] if interrupt_at is not None else []
    training.fit_resumably(model, data, backup, epochs=2, state="first", metric_callbacks=[Started(started)],
                           callbacks=extra)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    training.fit_resumably(model, data, backup, epochs=4, initial_epoch=2, state="second",
                           metric_callbacks=[Started(started)], callbacks=extra)
    return model


@pytest.mark.parametrize("interrupt_at, resumed", [(0, [1, 2, 3]), (2, [3])])
def test_a_run_in_two_phases_resumes_after_its_last_finished_epoch(tmp_path, interrupt_at, resumed, caplog):
    backup = tmp_path / "backup"
    training.prepare_backup(backup, "key")
    started = []
    with pytest.raises(KeyboardInterrupt):
        two_phases(backup, started, interrupt_at)
    assert started == list(range(interrupt_at + 1))
    started.clear()
    with caplog.at_level(logging.INFO, logger="whaleid.learning.training"):
        model = two_phases(backup, started)
    assert started == resumed  # the finished epochs were not redone, in either phase
    assert f"epoch {resumed[0] + 1}/" in caplog.text  # the log counts epochs from 1
    training.finish_training(model, tmp_path / "model.keras", tmp_path / "history.csv", backup)
    assert pd.read_csv(tmp_path / "history.csv")["epoch"].tolist() == [0, 1, 2, 3]
    assert not backup.exists()
    assert keras.models.load_model(tmp_path / "model.keras").get_layer("dense").kernel.shape == (4, 2)


def test_models_are_saved_only_as_keras_files(tmp_path):
    with pytest.raises(ValueError, match=r"\.keras"):
        training.save_model(tiny_model(), tmp_path / "model.h5")
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="checks the CPU fallback")
def test_on_a_cpu_training_is_float32_on_the_default_strategy():
    assert tensorflow_runtime.precision_policy(True) == "float32"
    with tensorflow_runtime.build_scope(mixed_precision=True) as strategy:
        assert keras.mixed_precision.global_policy().name == "float32"
        assert strategy is tf.distribute.get_strategy()
    assert tensorflow_runtime.distribution_strategy() is tensorflow_runtime.distribution_strategy()


def test_build_scope_puts_the_global_policy_back():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        with tensorflow_runtime.build_scope(mixed_precision=False):
            assert keras.mixed_precision.global_policy().name == "float32"
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_thread_count_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        tensorflow_runtime.limit_cpu_threads(0)


def test_each_epoch_leaves_one_line_with_its_metrics_in_the_log(caplog):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((4, 2), np.float32)
    with caplog.at_level(logging.INFO, logger="test.stage"):
        model.fit(x, x[:, :1], epochs=2, verbose=0, callbacks=[training.EpochLog(2, logging.getLogger("test.stage"))])
    lines = [r.getMessage() for r in caplog.records if r.name == "test.stage"]
    assert lines[0] == "epoch 1/2 started" and lines[2] == "epoch 2/2 started"
    assert re.fullmatch(r"epoch 2/2 finished in \d+ s: loss=0", lines[3]), lines
