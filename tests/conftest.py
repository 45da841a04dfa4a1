"""Shared helpers: small images written the way real datasets hold them."""

from __future__ import annotations

import errno
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from _pytest.nodeid import NodeId

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
RIGHT_WHALE = SHARED / "data" / "right_whale"


def encode(image: np.ndarray, suffix: str = ".jpg", **params) -> bytes:
    flags = []
    if "quality" in params:
        flags = [cv2.IMWRITE_JPEG_QUALITY, params["quality"]]
    ok, buffer = cv2.imencode(suffix, image, flags)
    assert ok
    return buffer.tobytes()


def textured(height: int, width: int, channels: int = 3, seed: int = 0, cell: int = 8) -> np.ndarray:
    """A smooth random picture (JPEG keeps it nearly intact, unlike white noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(2, height // cell), max(2, width // cell), channels), dtype=np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    return image if channels > 1 else image.reshape(height, width)


@pytest.fixture
def write_image(tmp_path):
    def _write(name: str, image: np.ndarray, folder: Path | None = None, **params) -> Path:
        path = (folder or tmp_path) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(image, Path(name).suffix, **params))
        return path
    return _write


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No network (name lookups and connections fail) and an empty Keras cache folder."""
    def unreachable(*args, **kwargs):
        raise OSError(errno.ENETUNREACH, "Network is unreachable (blocked by the test)")

    monkeypatch.setattr(socket, "getaddrinfo", unreachable)
    monkeypatch.setattr(socket.socket, "connect", unreachable)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "keras" / "models"


# The start of a training run in a process of its own, to be killed for real. It logs to
# stdout and reads from argv its folder, the epoch after which to pause (-1: none) and any
# further arguments; `Pause` stops it dead after that epoch's backup (the test then kills it),
# so the kill always lands between epochs at a known point. The code appended trains with
# callbacks=[Pause()].
PAUSING_WORKER = """
import logging, sys, time
from pathlib import Path
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(name)s %(message)s", force=True)
import keras
import tensorflow as tf
from whaleid.learning.tensorflow_runtime import limit_cpu_threads
folder, pause_after, arguments = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
limit_cpu_threads(1)
assert tf.config.threading.get_intra_op_parallelism_threads() == 1

class Pause(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == pause_after:
            (folder / "paused").write_text(str(epoch))
            time.sleep(600)
"""


def _start_worker(training: str, folder: Path, pause_after: int, arguments, **popen) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow_scripts"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([sys.executable, "-c", PAUSING_WORKER + training, str(folder), str(pause_after),
                             *map(str, arguments)], env=env, text=True, **popen)


def kill_after_epoch(training: str, folder: Path, epoch: int, *arguments, timeout: float = 180) -> str:
    """Run `training` (see PAUSING_WORKER) until it has finished `epoch`, SIGKILL it, and
    return what it logged."""
    log_path, paused = folder / "killed.log", folder / "paused"
    paused.unlink(missing_ok=True)  # an earlier kill's
    with open(log_path, "w") as stdout:
        worker = _start_worker(training, folder, epoch, arguments, stdout=stdout, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not paused.exists():
            assert worker.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, f"the worker never finished epoch {epoch}"
            time.sleep(0.1)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    return log_path.read_text()


def run_to_the_end(training: str, folder: Path, *arguments, timeout: float = 180) -> str:
    """Run `training` (see PAUSING_WORKER) without a pause; return what it logged."""
    worker = _start_worker(training, folder, -1, arguments, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log_text, _ = worker.communicate(timeout=timeout)
    assert worker.returncode == 0, log_text
    return log_text


def started_epochs(log_text: str, logger: str, epochs: int) -> list[int]:
    """The epochs whose start `logger` logged, in order."""
    # the log counts from 1, Keras (and these tests) from 0
    return [int(m) - 1 for m in re.findall(rf"{re.escape(logger)} epoch (\d+)/{epochs} started", log_text)]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One finished run of the whole workflow (every method, the report's figures and pages) on
    a tiny dataset outside the checkout, as a user's data would be; shared by the test modules
    that check what a run writes. A test that changes it puts it back."""
    from test_workflow import TINY, folder_digest, merged, snakemake

    from whaleid.demo.dataset import generate_demo_dataset

    root = tmp_path_factory.mktemp("tiny")
    data = root / "data"
    generate_demo_dataset(data, n_individuals=24, n_train_images=90, n_test_images=40, max_side=160, seed=7)
    before = folder_digest(data)
    work = root / "work"
    work.mkdir()
    # the local method's matching in 3 chunks, of blocks of 8 queries: chunks that split folds
    # and searches, and that test_workflow.py compares with one chunk
    config = merged(TINY, {"data_dir": str(data), "results_dir": "results",
                           "local": {"query_block": 8, "chunks": 3}})
    console = snakemake(work, config=config)
    return {"data": data, "work": work, "results": work / "results", "config": config, "before": before,
            "console": console.stdout + console.stderr}


def _schedule_with(item, group: str) -> None:
    """Send `item` to the worker of `group`. pytest-xdist 3.8 schedules a group by the `@group`
    suffix its own hook gives the node id, on the attribute pytest 9 no longer reads (`_nodeid`):
    the suffix is given here where pytest 9 keeps the id."""
    item.add_marker(pytest.mark.xdist_group(group))
    if getattr(item.config.option, "loadgroup", False):
        item._id = NodeId.parse(f"{item.nodeid}@{group}")


def pytest_collection_modifyitems(items):
    """`make test` runs the tests on two pytest-xdist workers (`--dist loadgroup`). A module or
    session fixture is built once per worker, so the tests sharing one go to the same worker:
    every test that reads tiny_run (a whole workflow run, minutes) to one, and those of each
    module-scoped fixture together. The other tests go wherever a worker is free."""
    for item in items:
        shared = [name for name, definitions in item._fixtureinfo.name2fixturedefs.items()
                  if definitions[-1].scope in ("module", "session") and definitions[-1].baseid]
        if "tiny_run" in item.fixturenames:
            _schedule_with(item, "tiny_run")
        elif shared:
            _schedule_with(item, f"{item.module.__name__}.{sorted(shared)[0]}")
    # Longest first (make test turns xdist's reordering off), so that neither worker is left
    # waiting for the other at the end: the run on ../shared's real photos, one test of minutes,
    # then the tiny run's tests, then the rest in their files' order.
    items.sort(key=lambda item: 0 if item.get_closest_marker("shared") else 1 if "tiny_run" in item.fixturenames else 2)
