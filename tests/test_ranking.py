import numpy as np
import pytest

from whaleid.ranking import (Candidates, final_answers, insert_new_whale, sweep_duplicates_and_threshold,
                             sweep_new_whale_threshold, threshold_grid, within)

# Cosine similarities, as a retrieval gives them: no new_whale score of its own.
CANDIDATES = Candidates([["a", "b", "c", "d"], ["b", "a", "d", "c"]],
                        np.array([[0.9, 0.5, 0.4, -0.2], [0.3, 0.2, 0.1, 0.0]], np.float32),
                        np.full(2, -np.inf, np.float32))


def test_new_whale_goes_before_the_first_score_below_the_threshold():
    assert insert_new_whale(CANDIDATES, 0.45) == [["a", "b", "new_whale", "c", "d"],
                                                  ["new_whale", "b", "a", "d", "c"]]
    # negative thresholds are meaningful for similarities
    assert insert_new_whale(CANDIDATES, -0.1) == [["a", "b", "c", "new_whale", "d"],
                                                  ["b", "a", "d", "c", "new_whale"]]
    # a new_whale score of its own above the threshold moves it up
    own = Candidates(CANDIDATES.ids, CANDIDATES.top, np.array([0.6, -np.inf], np.float32))
    assert insert_new_whale(own, 0.0)[0] == ["a", "new_whale", "b", "c", "d"]


def test_final_answers_put_duplicates_first():
    assert final_answers(CANDIDATES, 0.45, [[(5, "d"), (0, "c")], []]) == [["c", "d", "a", "b", "new_whale"],
                                                                          ["new_whale", "b", "a", "d", "c"]]
    with pytest.raises(ValueError, match="1 duplicate lists for 2 images"):
        final_answers(CANDIDATES, 0.45, [[]])


def test_the_sweep_takes_the_first_of_equally_good_thresholds():
    best, curve = sweep_new_whale_threshold(CANDIDATES, ["a", "new_whale"], [0.0, 0.35, 0.45, 0.95])
    assert curve["map5"].tolist() == [pytest.approx((1 + 1 / 5) / 2), 1.0, 1.0, pytest.approx((1 / 2 + 1) / 2)]
    assert best == 0.35 and curve["chosen"].tolist() == [False, True, False, False]
    with pytest.raises(ValueError, match="no thresholds"):
        sweep_new_whale_threshold(CANDIDATES, ["a", "b"], [])


def test_threshold_grid_includes_its_stop_without_float_noise():
    grid = threshold_grid(0.3, 0.9, 0.05)
    assert len(grid) == 13 and grid[0] == 0.3 and grid[-1] == 0.9 and grid[1] == 0.35 and grid[7] == 0.65
    assert threshold_grid(-0.2, 0.2, 0.1) == [-0.2, -0.1, 0.0, 0.1, 0.2]
    assert str(threshold_grid(-0.2, 0.2, 0.1)[2]) == "0.0"  # not -0.0
    assert threshold_grid(0.0, 0.25, 0.1) == [0.0, 0.1, 0.2]  # stop not on a step: the last step before it
    assert threshold_grid(0.5, 0.5, 0.1) == [0.5]
    with pytest.raises(ValueError, match="step must be positive"):
        threshold_grid(0.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="stop 0.1 is below its start 0.5"):
        threshold_grid(0.5, 0.1, 0.1)


def test_each_method_chooses_how_loose_a_duplicate_may_be_with_its_threshold():
    # image 0 (truth a) has an exact copy of an "a" photo and a loose pHash match to "z";
    # image 1 (truth b) only a loose match to "x": loose matches push the right answers down
    duplicates = [[(-1, "a"), (6, "z")], [(6, "x")]]
    assert within(duplicates, 0) == [[(-1, "a")], []]
    distance, threshold, curve = sweep_duplicates_and_threshold(CANDIDATES, ["a", "b"], [0.0, 0.45],
                                                                duplicates, [6, 0])
    assert (distance, threshold) == (0, 0.0)
    assert list(curve.columns) == ["max_distance", "threshold", "map5", "chosen"]
    assert curve["max_distance"].tolist() == [0, 0, 6, 6] and curve["chosen"].sum() == 1
    assert curve.loc[curve["chosen"], "map5"].item() == 1.0
    assert curve.loc[curve["max_distance"] == 6, "map5"].max() == pytest.approx(0.75)
    # a loose match that is right is taken
    distance, _, _ = sweep_duplicates_and_threshold(CANDIDATES, ["a", "x"], [0.0], duplicates, [0, 6])
    assert distance == 6
