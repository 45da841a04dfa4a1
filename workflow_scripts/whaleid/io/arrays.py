"""Large on-disk arrays filled chunk by chunk, so a killed job resumes where it stopped.

Every per-photo cache is built this way (`fill_in_chunks`): the preprocessed squares, the
keypoints, the autoencoder's codes, the embeddings. The array is filled under a temporary name
beside the output (``x.partial.npy``) with a progress file listing the finished chunks
(``x.partial.json``); it takes its final name only when every chunk is done. Snakemake deletes a
failed job's outputs, but these temporary files are not outputs, so they survive for the rerun.

A rerun resumes only what was computed from the same things: the progress file holds a key made
from the identity of every file the rows are computed from (path, size, modification time),
every setting, and the array's shape, dtype and chunk size. A partial array left by a killed job
whose input has since been rebuilt (from other photos, or at another size) is started afresh,
never completed with rows of another input.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed

log = logging.getLogger(__name__)


class ResumableArray:
    """A .npy array of `shape` and `dtype` at `out_path`, built in chunks of `chunk_size` rows.

    `key` says what the contents depend on (inputs and settings): a leftover partial array
    made with another key is discarded rather than resumed.
    """

    def __init__(self, out_path: str | Path, shape: tuple[int, ...], dtype, chunk_size: int, key: str):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        self.out_path = Path(out_path)
        self.partial_path = self.out_path.with_name(self.out_path.stem + ".partial.npy")
        self.state_path = self.out_path.with_name(self.out_path.stem + ".partial.json")
        self.shape, self.dtype, self.chunk_size = tuple(shape), np.dtype(dtype), chunk_size
        # The chunks done are named by their first row: with another chunk size or layout, the
        # same names would mean other rows.
        self.key = _digest({"key": key, "shape": self.shape, "dtype": str(self.dtype), "chunk_size": chunk_size})
        self.done: set[int] = set()
        if self.partial_path.exists() and self.state_path.exists():
            state = json.loads(self.state_path.read_text())
            if state.get("key") == self.key:
                self.done = set(state["done"])
                log.info("resuming %s: %d of %d chunks already done", self.out_path,
                         len(self.done), len(self.chunk_starts()))
        if not self.done:
            self.out_path.parent.mkdir(parents=True, exist_ok=True)
            np.lib.format.open_memmap(self.partial_path, mode="w+", dtype=self.dtype, shape=self.shape).flush()
            self._save_state()

    def chunk_starts(self) -> list[int]:
        return list(range(0, self.shape[0], self.chunk_size))

    @property
    def rows_done(self) -> int:
        """How many rows the finished chunks hold (the last chunk may be short, and may finish
        before others)."""
        return sum(min(self.chunk_size, self.shape[0] - start) for start in self.done)

    def pending(self) -> list[int]:
        """First rows of the chunks still to compute."""
        return [start for start in self.chunk_starts() if start not in self.done]

    def write_rows(self, start: int, rows: np.ndarray) -> None:
        """Write a chunk's rows (other processes may write theirs to `partial_path` meanwhile)."""
        write_rows(self.partial_path, start, rows)

    def mark_done(self, start: int) -> None:
        """Record a chunk as finished; call only after its rows are written and flushed."""
        self.done.add(start)
        self._save_state()

    def finish(self) -> None:
        missing = self.pending()
        if missing:
            raise RuntimeError(f"{self.out_path}: chunks starting at rows {missing[:5]} were never written")
        os.replace(self.partial_path, self.out_path)
        self.state_path.unlink(missing_ok=True)

    def _save_state(self) -> None:
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps({"key": self.key, "done": sorted(self.done)}))
        os.replace(tmp, self.state_path)


def write_rows(npy_path: str | Path, start: int, rows: np.ndarray) -> None:
    """Write `rows` into the .npy file at `npy_path` from row `start` on, in one write call.

    Safe from several processes at once when their rows differ. One write of a whole chunk is
    several times faster than assigning into a memory map, which faults in every 4 KiB page:
    with two workers filling a cache, the page faults, not the image work, set the pace.
    """
    with open(npy_path, "r+b") as handle:
        version = np.lib.format.read_magic(handle)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}[version]
        shape, fortran_order, dtype = read_header(handle)
        if fortran_order or rows.shape[1:] != tuple(shape[1:]) or rows.dtype != dtype:
            raise ValueError(f"{npy_path}: rows of shape {rows.shape[1:]} {rows.dtype} do not fit an array "
                             f"of shape {shape} {dtype}")
        if start < 0 or start + len(rows) > shape[0]:
            raise ValueError(f"{npy_path}: rows {start}..{start + len(rows)} outside 0..{shape[0]}")
        handle.seek(handle.tell() + start * rows[0].nbytes)
        handle.write(np.ascontiguousarray(rows).tobytes())


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def file_identity(path: str | Path) -> str:
    """What stands for a file's contents in a resume key: its path, size and modification time.

    Hashing a 20 GB cache would cost more than an epoch, and a rebuilt file is a new file.
    """
    path = Path(path)
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def inputs_key(inputs: Sequence[str | Path], settings: Mapping[str, Any]) -> str:
    """A key for what an array is computed from: the identity of every input file (see
    `file_identity`) and every setting (JSON-able values)."""
    return _digest({"inputs": [file_identity(path) for path in inputs], "settings": dict(settings)})


def fill_in_chunks(out_path: str | Path, shape: tuple[int, ...], dtype, chunk_size: int, *,
                   inputs: Sequence[str | Path], settings: Mapping[str, Any],
                   fill_chunk: Callable[[str, int, int], Any], n_jobs: int = 1,
                   progress: Callable[[int, int], None] | None = None) -> None:
    """Build the .npy array `out_path` of `shape` and `dtype`, `chunk_size` rows at a time.

    `fill_chunk(partial_path, start, stop)` computes rows start..stop-1 and writes them into the
    partial .npy at `partial_path` (with `write_rows`). With `n_jobs` above 1 the chunks are
    filled by that many joblib worker processes (so `fill_chunk` must be picklable: a module-level
    function, or a `functools.partial` of one), else one after another in this process (a model
    held in memory, say). The rows are computed from `inputs` (files) and `settings`: a rerun
    after a kill redoes only the chunks not finished, and only where both are what they were.
    `progress(done, total)` is told where the work starts and as chunks finish.
    """
    array = ResumableArray(out_path, shape, dtype, chunk_size, inputs_key(inputs, settings))
    n = array.shape[0]
    if progress:
        progress(array.rows_done, n)  # where a resumed job starts
    spans = [(start, min(n, start + chunk_size)) for start in array.pending()]
    partial = str(array.partial_path)
    if n_jobs == 1:
        finished = (_filled(fill_chunk, partial, start, stop) for start, stop in spans)
    else:
        finished = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(_filled)(fill_chunk, partial, start, stop) for start, stop in spans)
    for start in finished:
        array.mark_done(start)
        if progress:
            progress(array.rows_done, n)
    array.finish()


def _filled(fill_chunk: Callable[[str, int, int], Any], partial_path: str, start: int, stop: int) -> int:
    fill_chunk(partial_path, start, stop)
    return start

