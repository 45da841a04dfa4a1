import numpy as np

from whaleid.arrays import ResumableArray


def test_rows_done_counts_the_rows_of_finished_chunks_the_last_one_short(tmp_path):
    array = ResumableArray(tmp_path / "a.npy", (10, 2), np.uint8, chunk_size=4, key="k")
    assert array.rows_done == 0
    array.mark_done(8)  # the short last chunk: rows 8 and 9
    array.mark_done(0)
    assert array.rows_done == 6
    array.mark_done(4)
    assert array.rows_done == 10
