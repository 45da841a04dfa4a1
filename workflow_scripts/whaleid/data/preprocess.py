"""Building the preprocessed image cache: one uint8 array of shape (N, size, size) per split.

Why a single uncompressed .npy: training reads random images many times over, and a memory-
mapped array serves any image with no decoding at all, never loads the whole set into memory,
and is one file to move or delete. It costs size*size bytes an image (784 KiB at 896), about
what the JPEGs it replaces take, and lossless, unlike re-saving as JPEG.

A killed job resumes (see `arrays.fill_in_chunks`).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from whaleid.data.images import jpeg_reduction, read_gray, square_image
from whaleid.io.arrays import fill_in_chunks, write_rows


def preprocess_file(path: str | Path, size: int, width: int = 0, height: int = 0) -> np.ndarray:
    """Read one photo and return its `size`x`size` uint8 square (see `square_image`)."""
    data = Path(path).read_bytes()
    reduction = jpeg_reduction(width, height, size) if width and height else 1
    return square_image(read_gray(data, reduction), size)


def _fill_chunk(paths: list[str], sizes: list[tuple[int, int]], size: int, partial_path: str, start: int,
                stop: int) -> None:
    # One OpenCV thread per worker: joblib already keeps every core busy, and nested
    # threading only adds contention.
    cv2.setNumThreads(1)
    squares = np.stack([preprocess_file(path, size, width, height)
                        for path, (width, height) in zip(paths[start:stop], sizes[start:stop])])
    write_rows(partial_path, start, squares)


def build_cache(paths: list[str | Path], out_path: str | Path, *, size: int, n_jobs: int, chunk_size: int,
                sizes: list[tuple[int, int]] | None = None, progress=None) -> None:
    """Preprocess `paths` in order into `out_path` (.npy, shape (len(paths), size, size), uint8).

    `sizes` (width, height per photo, from the manifest) lets large JPEGs be decoded at reduced
    scale. `n_jobs` processes fill `chunk_size` photos at a time; `progress(done, total)` is
    called as chunks finish. Resumes after a kill (`arrays.fill_in_chunks`), unless a photo
    changed since.
    """
    paths = [str(p) for p in paths]
    sizes = [(int(w), int(h)) for w, h in sizes] if sizes else [(0, 0)] * len(paths)
    fill_in_chunks(out_path, (len(paths), size, size), np.uint8, chunk_size, inputs=paths,
                   settings={"size": size, "sizes": sizes}, fill_chunk=partial(_fill_chunk, paths, sizes, size),
                   n_jobs=n_jobs, progress=progress)


def cache_index(manifest: pd.DataFrame, split: str) -> pd.DataFrame:
    """The rows of the cache for `split`, in cache order (row i of the array is image i here)."""
    rows = manifest[manifest["split"] == split].sort_values("image").reset_index(drop=True)
    return rows[["image", "id", "width", "height"]]
