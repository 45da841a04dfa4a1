"""Large on-disk arrays filled chunk by chunk, so a killed job resumes where it stopped.

The array is filled under a temporary name beside the output (``x.partial.npy``) with a
progress file listing the finished chunks (``x.partial.json``); it takes its final name only
when every chunk is done. Snakemake deletes a failed job's outputs, but these temporary files
are not outputs, so they survive for the rerun.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class ResumableArray:
    """A .npy array of `shape` and `dtype` at `out_path`, built in chunks of `chunk_size` rows.

    `key` says what the contents depend on (inputs and settings): a leftover partial array
    made with another key is discarded rather than resumed.
    """

    def __init__(self, out_path: str | Path, shape: tuple[int, ...], dtype, chunk_size: int, key: str):
        self.out_path = Path(out_path)
        self.partial_path = self.out_path.with_name(self.out_path.stem + ".partial.npy")
        self.state_path = self.out_path.with_name(self.out_path.stem + ".partial.json")
        self.shape, self.dtype, self.chunk_size, self.key = tuple(shape), np.dtype(dtype), chunk_size, key
        self.done: set[int] = set()
        if self.partial_path.exists() and self.state_path.exists():
            state = json.loads(self.state_path.read_text())
            if state.get("key") == key:
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
