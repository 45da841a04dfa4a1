"""Writing outputs so that a killed job never leaves a half-written file under its final name."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    The temporary name keeps the final suffix (``x.tmp-123.csv``) because some writers
    (numpy, OpenCV) choose the format from it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a new empty folder beside `path` to fill; it replaces the folder `path` (whatever was
    there) only if the block succeeds, and is removed if it fails: a killed job leaves no
    half-filled folder under the final name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        yield partial
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(partial, path)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_output(path) as tmp:
        df.to_csv(tmp, index=False)


def write_columns(df: pd.DataFrame, path: str | Path) -> None:
    """`df` as a .npz of its columns, one array each, read back exactly by `read_columns`: for a
    table one job writes and another reads, where a CSV would round its floats' last bits."""
    columns = {}
    for n, name in enumerate(df.columns):
        values = df[name].to_numpy()
        if values.dtype == object:  # text, which np.load reads back without pickle only as str
            if not all(isinstance(value, str) for value in values):
                raise ValueError(f"{path}: column {name!r} holds values that are neither numbers nor text")
            values = values.astype(str)
        columns[f"{n}"] = values
    with atomic_output(path) as tmp, open(tmp, "wb") as out:
        np.savez(out, names=np.asarray(df.columns, dtype=str), **columns)


def read_columns(path: str | Path) -> pd.DataFrame:
    """The table `write_columns` wrote to `path`, its columns as they were (text as str)."""
    with np.load(path, allow_pickle=False) as saved:
        names = saved["names"].tolist()
        return pd.DataFrame({name: saved[f"{n}"] for n, name in enumerate(names)}, columns=names)


def write_bytes(data: bytes, path: str | Path) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def write_text(text: str, path: str | Path) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
