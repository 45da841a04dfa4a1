import numpy as np
import pandas as pd
import pytest

from whaleid.data.duplicates import within
from whaleid.identification.answers import (
    final_answers,
    identify_with,
    insert_new_whale,
    pool_duplicates,
    sweep_duplicates_and_threshold,
    sweep_new_whale_threshold,
)
from whaleid.identification.candidates import (
    Candidates,
    Individuals,
    candidates_from_scores,
    check_known_individuals,
    pool_candidates,
)
from whaleid.identification.search import Queries, Search, read_encounters
from whaleid.settings import threshold_grid

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


def photos(rows):
    """A table of photos (image, id, subset, truth) with made-up hashes: every photo its own
    picture, no two pHashes alike."""
    table = pd.DataFrame(rows, columns=["image", "id", "subset", "truth"])
    table["phash"] = [f"{(i + 1) * 0x0F0F0F0F0F0F0F0F % (1 << 64):016x}" for i in range(len(table))]
    table["content_hash"] = table["image"]
    return table


# train: w_a and w_b have two photos, one of each held out; w_c one photo, held out whole
# (unknown to the fit photos: truth new_whale); w_d, w_e, w_f one photo each, all fit.
TRAIN = photos([("a1", "w_a", "fit", "w_a"), ("a2", "w_a", "validation", "w_a"), ("b1", "w_b", "validation", "w_b"),
                ("b2", "w_b", "fit", "w_b"), ("c1", "w_c", "validation", "new_whale"), ("d1", "w_d", "fit", "w_d"),
                ("e1", "w_e", "fit", "w_e"), ("f1", "w_f", "fit", "w_f"), ("n1", "new_whale", "fit", "new_whale")])
TEST = photos([("t1", "", "", ""), ("t2", "", "", "")]).drop(columns=["id", "subset", "truth"])


def test_validation_photos_are_matched_against_the_fit_photos_only_and_test_photos_against_all_of_train():
    validation, test = Queries(TRAIN, TEST).searches()
    assert validation.split == "validation" and test.split == "test"
    assert validation.queries["image"].tolist() == ["a2", "b1", "c1"]
    assert validation.query_rows.tolist() == [1, 2, 4]
    # no validation photo in the catalogue: not itself, not its individual's other held-out photo
    assert set(validation.catalogue["subset"]) == {"fit"}
    assert not set(validation.catalogue["image"]) & set(validation.queries["image"])
    assert "w_c" not in validation.catalogue_ids  # held out whole: unknown to the validation queries
    assert test.catalogue["image"].tolist() == TRAIN["image"].tolist()
    assert not set(test.catalogue["image"]) & set(TEST["image"])
    values = np.arange(len(TRAIN)) * 10
    assert validation.query_values(values, np.array([7, 8])).tolist() == [10, 20, 40]
    assert test.query_values(values, np.array([7, 8])).tolist() == [7, 8]
    assert validation.catalogue_values(values).tolist() == [0, 30, 50, 60, 70, 80]
    assert test.catalogue_values(values) is values  # the whole array, not a copy of it


def test_a_split_without_validation_photos_is_refused():
    with pytest.raises(ValueError, match="split.csv has no validation images"):
        Queries(TRAIN.assign(subset="fit"), TEST, "split.csv").searches()


def test_arrays_must_have_one_row_per_photo():
    queries = Queries(TRAIN, TEST)
    queries.check_rows(len(TRAIN), len(TEST), "train.npy", "test.npy")
    with pytest.raises(ValueError, match="test.npy has 3 rows but its index lists 2 images"):
        queries.check_rows(len(TRAIN), 3, "train.npy", "test.npy")


def scores_by_search(search: Search) -> Candidates:
    """A method that knows every answer: for each query the catalogue's individuals, the truth
    (where the catalogue has it) scored 1, the others 0.1."""
    individuals = sorted(set(search.catalogue_ids) - {"new_whale"})
    truths = search.queries["truth"] if "truth" in search.queries else pd.Series([""] * len(search.queries))
    scores = np.array([[1.0 if individual == truth else 0.1 for individual in individuals] for truth in truths],
                      np.float32)
    return candidates_from_scores(scores, individuals)


def test_a_method_is_a_function_from_a_search_to_candidates_and_ends_as_every_method_does():
    seen = []

    def rank(search):
        seen.append((search.split, search.catalogue["image"].tolist()))
        return scores_by_search(search)

    answers = identify_with(rank, Queries(TRAIN, TEST), [0], [0.0, 0.5])
    assert [split for split, _ in seen] == ["validation", "test"]
    assert answers.validation["image"].tolist() == ["a2", "b1", "c1"]
    # known individuals first; w_c, never in the fit photos, gets new_whale first (threshold 0.5)
    assert [row[0] for row in answers.validation["answers"]] == ["w_a", "w_b", "new_whale"]
    assert answers.chosen == 0.5 and answers.curve["chosen"].sum() == 1
    assert answers.curve.loc[answers.curve["chosen"], "map5"].item() == 1.0
    assert answers.test["image"].tolist() == ["t1", "t2"]
    assert all(len(row) == 5 == len(set(row)) for row in answers.test["answers"])


def test_duplicates_are_looked_for_in_each_search_s_own_catalogue():
    # t1 is the same picture as c1 (held out whole): a test duplicate, but no validation one
    test = TEST.assign(phash=[TRAIN.loc[4, "phash"], TEST.loc[1, "phash"]], content_hash=["c1", "t2"])
    answers = identify_with(scores_by_search, Queries(TRAIN, test), [0, 4], [0.5])
    assert answers.test["answers"][0][0] == "w_c"
    assert "w_c" not in answers.validation["answers"][2]


def test_individuals_group_a_catalogue_s_photos_and_leave_new_whale_out():
    grouped = Individuals.of(["w_b", "new_whale", "w_a", "w_b", "w_c", "w_d"])
    assert grouped.ids.tolist() == ["w_a", "w_b", "w_c", "w_d"]
    assert grouped.photos.tolist() == [0, 2, 3, 4, 5]
    assert grouped.counts.tolist() == [1, 2, 1, 1]
    assert [grouped.photos[m].tolist() for m in grouped.members()] == [[2], [0, 3], [4], [5]]
    with pytest.raises(ValueError, match="the catalogue: 3 known individuals; five distinct answers need at least 4"):
        Individuals.of(["w_a", "w_b", "w_c", "new_whale"])
    assert len(Individuals.of(["w_a"], enough_for_answers=False).ids) == 1
    with pytest.raises(ValueError, match="the fit images: 2 known individuals"):
        check_known_individuals(2, "the fit images")


def test_reviewed_test_photos_join_the_test_catalogue_only_and_answer_first_for_themselves():
    test = photos([("t1", "", "", ""), ("t2", "", "", ""), ("t3", "", "", "")]).drop(columns=["id", "subset", "truth"])
    reviewed = pd.DataFrame({"image": ["t3", "t1"], "id": ["w_b", "new-t1"]})
    queries = Queries(TRAIN, test, reviewed=reviewed)
    validation, search = queries.searches()
    assert validation.catalogue["image"].tolist() == Queries(TRAIN, test).searches()[0].catalogue["image"].tolist()
    # train first, then the reviewed photos in the test arrays' order, with their ids
    assert search.catalogue["image"].tolist() == [*TRAIN["image"], "t1", "t3"]
    assert search.catalogue_ids[-2:] == ["new-t1", "w_b"]
    assert search.catalogue["subset"].tolist()[-2:] == ["reviewed", "reviewed"]
    assert search.reviewed_rows.tolist() == [0, 2]
    train_values, test_values = np.arange(len(TRAIN)) * 10, np.array([7, 8, 9])
    assert search.catalogue_values(train_values, test_values).tolist() == [*train_values, 7, 9]
    with pytest.raises(ValueError, match="holds 2 reviewed test photos"):
        search.catalogue_values(train_values)
    assert validation.catalogue_values(train_values).tolist() == [0, 30, 50, 60, 70, 80]
    seen = {}

    def rank(search):
        seen[search.split] = search.catalogue_ids
        return scores_by_search(search)

    answers = identify_with(rank, queries, [0], [0.5])
    assert "new-t1" in seen["test"] and "new-t1" not in seen["validation"]
    first = dict(zip(answers.test["image"], (row[0] for row in answers.test["answers"])))
    assert first["t1"] == "new-t1" and first["t3"] == "w_b"
    assert all(len(row) == 5 == len(set(row)) for row in answers.test["answers"])
    with pytest.raises(ValueError, match="1 reviewed photos are not test photos of this run"):
        Queries(TRAIN, test, reviewed=pd.DataFrame({"image": ["a1"], "id": ["w_a"]}))


def test_encounters_are_read_with_each_wrong_row_named(tmp_path):
    path = tmp_path / "encounters.csv"
    path.write_text("Image,Encounter\nt1,e1\nt2,e1\nt1,e1\n")
    assert read_encounters(path, ["t1", "t2", "t3"]) == {"t1": "e1", "t2": "e1"}
    assert read_encounters(None, ["t1"]) == {}
    for rows, message in [("t9,e1", r"line 3: 't9' is not a test photo of this run"),
                          ("t1,e2", r"line 3: t1 is in encounter 'e2', but line 2 puts it in 'e1'"),
                          ("t2,", r"line 3: a photo and its encounter are both needed")]:
        path.write_text(f"Image,Encounter\nt1,e1\n{rows}\n")
        with pytest.raises(ValueError, match=f"encounters.csv, {message}"):
            read_encounters(path, ["t1", "t2"])
    path.write_text("Image,Group\nt1,e1\n")
    with pytest.raises(ValueError, match="encounters.csv: no Encounter column"):
        read_encounters(path, ["t1"])


def test_an_encounter_s_photos_pool_their_evidence_and_get_the_same_answers():
    candidates = Candidates([["a", "b", "c", "d"], ["e", "a", "f", "g"], ["b", "c", "d", "e"]],
                            np.array([[0.9, 0.5, 0.4, 0.1], [0.95, 0.6, 0.3, 0.2], [0.8, 0.7, 0.1, 0.0]], np.float32),
                            np.array([0.3, 0.1, 0.2], np.float32))
    pooled = pool_candidates(candidates, [np.array([0, 1])])
    # each individual by its best score over both photos: e 0.95, a 0.9 (not 0.6), b 0.5, c 0.4
    assert pooled.ids[0] == pooled.ids[1] == ["e", "a", "b", "c"]
    np.testing.assert_allclose(pooled.top[0], [0.95, 0.9, 0.5, 0.4])
    assert pooled.own[0] == pooled.own[1] == np.float32(0.1) and pooled.own[2] == np.float32(0.2)
    assert pooled.ids[2] == candidates.ids[2]  # not in the encounter
    duplicates = pool_duplicates([[(3, "a")], [(0, "b"), (5, "a")], [(1, "z")]], [np.array([0, 1])])
    assert duplicates == [[(0, "b"), (3, "a")], [(0, "b"), (3, "a")], [(1, "z")]]


def test_the_test_photos_of_one_encounter_are_answered_together():
    test = photos([("t1", "", "", ""), ("t2", "", "", ""), ("t3", "", "", "")]).drop(columns=["id", "subset", "truth"])
    # pictures of no train photo (photos() would give them train's first three pHashes)
    test["phash"] = ["0000000000000000", "ffffffffffffffff", "00000000ffffffff"]
    best = {"t1": "w_a", "t2": "w_b", "t3": "w_d"}

    def rank(search):
        individuals = sorted(set(search.catalogue_ids) - {"new_whale"})
        truths = search.queries["truth"] if search.split == "validation" else search.queries["image"].map(best)
        # each test photo's own best individual at 0.9; t1's second best is w_b at 0.5
        scores = np.array([[0.9 if i == truth else 0.5 if (image, i) == ("t1", "w_b") else 0.1 for i in individuals]
                           for image, truth in zip(search.queries["image"], truths)], np.float32)
        return candidates_from_scores(scores, individuals)

    alone = identify_with(rank, Queries(TRAIN, test), [0], [0.5]).test.set_index("image")["answers"]
    together = identify_with(rank, Queries(TRAIN, test, encounters={"t1": "e", "t2": "e"}), [0], [0.5])
    together = together.test.set_index("image")["answers"]
    assert alone["t1"][0] == "w_a" and alone["t2"][0] == "w_b"
    assert together["t1"] == together["t2"] and together["t1"][:2] in (["w_a", "w_b"], ["w_b", "w_a"])
    assert together["t3"] == alone["t3"]
    assert Queries(TRAIN, test, encounters={"t1": "e", "t2": "e", "t3": "f"}).encounter_groups()[0].tolist() == [0, 1]
    with pytest.raises(ValueError, match="1 encounter photos are not test photos"):
        Queries(TRAIN, test, encounters={"a1": "e"})
