import json
import os
from functools import partial

import numpy as np
import pytest

from whaleid.io.arrays import ResumableArray, fill_in_chunks, write_rows


def test_rows_done_counts_the_rows_of_finished_chunks_the_last_one_short(tmp_path):
    array = ResumableArray(tmp_path / "a.npy", (10, 2), np.uint8, chunk_size=4, key="k")
    assert array.rows_done == 0
    array.mark_done(8)  # the short last chunk: rows 8 and 9
    array.mark_done(0)
    assert array.rows_done == 6
    array.mark_done(4)
    assert array.rows_done == 10


def double_rows(source: str, partial_path: str, start: int, stop: int) -> None:
    """A chunk of the array: twice the source's rows (module level, so worker processes can run it)."""
    write_rows(partial_path, start, 2 * np.load(source)[start:stop])


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "source.npy"
    np.save(path, np.arange(20, dtype=np.int64).reshape(10, 2))
    return path


def interrupted_after_first_chunk(out, source, **settings):
    """The state a job killed after its first chunk leaves: the partial array and its progress."""
    def stop(done, total):
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fill_in_chunks(out, (10, 2), np.int64, 4, inputs=[source], settings=settings,
                       fill_chunk=partial(double_rows, str(source)), progress=stop)
    assert json.loads(out.with_name("out.partial.json").read_text())["done"] == [0]


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_chunks_are_filled_in_order_or_by_worker_processes_and_the_array_takes_its_name_when_done(tmp_path, source,
                                                                                                   n_jobs):
    out, reports = tmp_path / "out.npy", []
    fill_in_chunks(out, (10, 2), np.int64, 4, inputs=[source], settings={},
                   fill_chunk=partial(double_rows, str(source)), n_jobs=n_jobs,
                   progress=lambda done, total: reports.append((done, total)))
    assert np.array_equal(np.load(out), 2 * np.load(source))
    assert reports[0] == (0, 10) and reports[-1] == (10, 10) and len(reports) == 4
    assert not list(tmp_path.glob("*.partial.*"))


def test_a_killed_job_resumes_with_only_the_chunks_left(tmp_path, source):
    out = tmp_path / "out.npy"
    interrupted_after_first_chunk(out, source)
    filled = []

    def counting(partial_path, start, stop):
        filled.append(start)
        double_rows(str(source), partial_path, start, stop)

    fill_in_chunks(out, (10, 2), np.int64, 4, inputs=[source], settings={}, fill_chunk=counting)
    assert filled == [4, 8] and np.array_equal(np.load(out), 2 * np.load(source))


@pytest.mark.parametrize("change", ["input rebuilt", "setting", "chunk size"])
def test_a_partial_array_of_other_inputs_settings_or_chunks_is_started_afresh(tmp_path, source, change):
    out = tmp_path / "out.npy"
    interrupted_after_first_chunk(out, source, scale=2)
    settings, chunk_size = {"scale": 2}, 4
    if change == "input rebuilt":
        # the same path and shape, other rows: only its identity (size, modification time) tells
        np.save(source, np.arange(100, 120, dtype=np.int64).reshape(10, 2))
        stat = source.stat()
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    elif change == "setting":
        settings = {"scale": 3}
    else:
        chunk_size = 3
    filled = []

    def counting(partial_path, start, stop):
        filled.append(start)
        double_rows(str(source), partial_path, start, stop)

    fill_in_chunks(out, (10, 2), np.int64, chunk_size, inputs=[source], settings=settings, fill_chunk=counting)
    assert filled[0] == 0 and len(filled) == len(range(0, 10, chunk_size))
    assert np.array_equal(np.load(out), 2 * np.load(source))
