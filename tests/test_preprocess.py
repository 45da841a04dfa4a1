import json

import numpy as np
import pytest
from conftest import textured

import whaleid.data.preprocess as preprocess
from whaleid.data.images import read_gray, square_image


@pytest.fixture
def photos(tmp_path, write_image):
    shapes = [(60, 90), (90, 60), (41, 77), (64, 64), (30, 200), (120, 80), (50, 51)]
    return [write_image(f"p{i}.jpg", textured(h, w, seed=i)) for i, (h, w) in enumerate(shapes)]


def test_cache_holds_each_photo_square_in_order(tmp_path, photos):
    out = tmp_path / "cache.npy"
    preprocess.build_cache(photos, out, size=48, n_jobs=2, chunk_size=3)
    cache = np.load(out, mmap_mode="r")
    assert cache.shape == (7, 48, 48) and cache.dtype == np.uint8
    for row, path in zip(cache, photos):
        assert np.array_equal(row, square_image(read_gray(path.read_bytes()), 48))
    assert not list(tmp_path.glob("*.partial.*"))


def test_interrupted_build_resumes_from_the_finished_chunks(tmp_path, photos, monkeypatch):
    out = tmp_path / "cache.npy"

    def stop_after_first_chunk(done, total):
        if done:  # the first call, with nothing done, only says where the job starts
            raise KeyboardInterrupt  # as if the job were killed once a chunk is recorded

    with pytest.raises(KeyboardInterrupt):
        preprocess.build_cache(photos, out, size=32, n_jobs=1, chunk_size=3, progress=stop_after_first_chunk)
    assert not out.exists()
    assert json.loads((tmp_path / "cache.partial.json").read_text())["done"] == [0]

    processed = []
    real = preprocess.preprocess_file
    monkeypatch.setattr(preprocess, "preprocess_file", lambda path, *a: processed.append(path) or real(path, *a))
    preprocess.build_cache(photos, out, size=32, n_jobs=1, chunk_size=3)
    assert processed == [str(p) for p in photos[3:]]  # chunk 0 (three photos) was not redone
    reference = tmp_path / "reference.npy"
    preprocess.build_cache(photos, reference, size=32, n_jobs=1, chunk_size=3)
    assert np.array_equal(np.load(out), np.load(reference))


def test_leftover_partial_from_other_settings_is_not_reused(tmp_path, photos):
    out = tmp_path / "cache.npy"

    def stop_after_first_chunk(done, total):
        if done:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        preprocess.build_cache(photos, out, size=32, n_jobs=1, chunk_size=3, progress=stop_after_first_chunk)
    preprocess.build_cache(photos, out, size=40, n_jobs=1, chunk_size=3)
    cache = np.load(out)
    assert cache.shape == (7, 40, 40)
    assert np.array_equal(cache[0], square_image(read_gray(photos[0].read_bytes()), 40))
