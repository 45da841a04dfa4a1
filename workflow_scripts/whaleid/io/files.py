"""Writing outputs so that a killed job never leaves a half-written file under its final name."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

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


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_output(path) as tmp:
        df.to_csv(tmp, index=False)


def write_bytes(data: bytes, path: str | Path) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def write_text(text: str, path: str | Path) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
