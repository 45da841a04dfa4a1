"""Shared helpers: small images written the way real datasets hold them."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest

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
