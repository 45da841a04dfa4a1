"""Building the preprocessed image cache: one uint8 array of shape (N, size, size) per split.

Why a single uncompressed .npy: training reads random images many times over, and a memory-
mapped array serves any image with no decoding at all, never loads the whole set into memory,
and is one file to move or delete. It costs size*size bytes an image (784 KiB at 896), about
what the JPEGs it replaces take, and lossless, unlike re-saving as JPEG.

A killed job resumes: the array is filled under a temporary name beside the output, with a
progress file listing the finished chunks, and renamed only when every chunk is done.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from .images import jpeg_reduction, read_gray, square_image

log = logging.getLogger(__name__)


def preprocess_file(path: str | Path, size: int, width: int = 0, height: int = 0) -> np.ndarray:
    """Read one photo and return its `size`x`size` uint8 square (see `square_image`)."""
    data = Path(path).read_bytes()
    reduction = jpeg_reduction(width, height, size) if width and height else 1
    return square_image(read_gray(data, reduction), size)


def _fill_chunk(cache_path: str, start: int, paths: list[str], sizes: list[tuple[int, int]], size: int) -> int:
    # One OpenCV thread per worker: joblib already keeps every core busy, and nested
    # threading only adds contention.
    cv2.setNumThreads(1)
    cache = np.load(cache_path, mmap_mode="r+")
    for offset, (path, (width, height)) in enumerate(zip(paths, sizes)):
        cache[start + offset] = preprocess_file(path, size, width, height)
    cache.flush()
    del cache
    return start


def _job_key(paths: list[str], size: int) -> str:
    digest = hashlib.sha256(f"{size}\n".encode())
    for path in paths:
        digest.update(f"{path}\n".encode())
    return digest.hexdigest()


def build_cache(paths: list[str | Path], out_path: str | Path, *, size: int, n_jobs: int = 1,
                chunk_size: int = 64, sizes: list[tuple[int, int]] | None = None,
                progress=None) -> None:
    """Preprocess `paths` in order into `out_path` (.npy, shape (len(paths), size, size), uint8).

    `sizes` (width, height per photo, from the manifest) lets large JPEGs be decoded at reduced
    scale. `progress(done, total)` is called as chunks finish.
    """
    out_path = Path(out_path)
    paths = [str(p) for p in paths]
    sizes = sizes or [(0, 0)] * len(paths)
    partial = out_path.with_name(out_path.stem + ".partial.npy")
    state_path = out_path.with_name(out_path.stem + ".partial.json")
    key = _job_key(paths, size)

    done: set[int] = set()
    if partial.exists() and state_path.exists():
        state = json.loads(state_path.read_text())
        if state.get("key") == key:
            done = set(state["done"])
            log.info("resuming: %d of %d chunks already done", len(done), -(-len(paths) // chunk_size))
    if not done:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8,
                                  shape=(len(paths), size, size)).flush()

    starts = [s for s in range(0, len(paths), chunk_size) if s not in done]
    tasks = (delayed(_fill_chunk)(str(partial), s, paths[s:s + chunk_size], sizes[s:s + chunk_size], size)
             for s in starts)
    for finished in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(tasks):
        done.add(finished)
        _write_state(state_path, key, done)
        if progress:
            progress(min(len(paths), len(done) * chunk_size), len(paths))
    os.replace(partial, out_path)
    state_path.unlink(missing_ok=True)


def _write_state(state_path: Path, key: str, done: set[int]) -> None:
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "done": sorted(done)}))
    os.replace(tmp, state_path)


def cache_index(manifest: pd.DataFrame, split: str) -> pd.DataFrame:
    """The rows of the cache for `split`, in cache order (row i of the array is image i here)."""
    rows = manifest[manifest["split"] == split].sort_values("image").reset_index(drop=True)
    return rows[["image", "id", "width", "height"]]
