import json
import os
from functools import partial

import numpy as np
import pandas as pd
import pytest

from whaleid.io.arrays import ResumableArray, fill_in_chunks, write_rows
from whaleid.io.files import read_columns, write_columns


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


def test_a_table_written_by_columns_reads_back_exactly_text_numbers_and_all(tmp_path):
    table = pd.DataFrame({"image": ["a.jpg", "b.jpg", "é.jpg"], "query": np.array([0, 7, 2**40], dtype=np.int64),
                          "score": [0.1 + 0.2, 1 / 3, np.nan], "flag": [True, False, True]})
    write_columns(table, tmp_path / "t.npz")
    read = read_columns(tmp_path / "t.npz")
    pd.testing.assert_frame_equal(read, table, check_dtype=False)
    assert read["score"].to_numpy()[:2].tobytes() == table["score"].to_numpy()[:2].tobytes()  # no rounding
    assert [read[name].dtype.kind for name in ("query", "score", "flag")] == ["i", "f", "b"]
    write_columns(table.iloc[:0], tmp_path / "empty.npz")
    empty = read_columns(tmp_path / "empty.npz")
    assert empty.columns.tolist() == table.columns.tolist() and len(empty) == 0


def test_a_table_with_objects_that_are_not_text_is_refused_with_its_file_and_column(tmp_path):
    with pytest.raises(ValueError, match=r"t\.npz: column 'id' holds values that are neither numbers nor text"):
        write_columns(pd.DataFrame({"id": ["a", None]}, dtype=object), tmp_path / "t.npz")
    assert not (tmp_path / "t.npz").exists()
