import pandas as pd

from whaleid.evaluation.submission import most_frequent_ids
from whaleid.identification.search import Queries
from whaleid.methods.baseline import identify, predict, rank_answers, tune_max_distance


def photo(image, whale_id, phash, content=None, split="train"):
    return {"image": image, "id": whale_id, "phash": phash, "content_hash": content or image, "split": split}


CATALOGUE = pd.DataFrame([
    photo("a1", "w_a", "0000000000000000"), photo("a2", "w_a", "00000000000000ff"),
    photo("b1", "w_b", "ffffffffffffffff"), photo("c1", "w_c", "0f0f0f0f0f0f0f0f"),
    photo("d1", "w_d", "f0f0f0f0f0f0f0f0"), photo("e1", "w_e", "3333333333333333"),
    photo("n1", "new_whale", "5555555555555555"),
])


def test_most_frequent_ids_skip_new_whale_and_break_ties_by_name():
    assert most_frequent_ids(["w_b", "w_a", "new_whale", "new_whale", "w_b", "w_c"], 3) == ["w_b", "w_a", "w_c"]


def test_answers_put_duplicates_first_then_new_whale_then_common_ids():
    fallback = ["w_a", "w_b", "w_c", "w_d", "w_e"]
    assert rank_answers([], fallback) == ["new_whale", "w_a", "w_b", "w_c", "w_d"]
    assert rank_answers([(1, "w_c"), (3, "w_c")], fallback) == ["w_c", "new_whale", "w_a", "w_b", "w_d"]


def test_exact_and_near_duplicates_are_found():
    query = pd.DataFrame([
        photo("q1", "", "0000000000000001", split="test"),      # 1 bit from a1
        photo("q2", "", "aaaaaaaaaaaaaaaa", content="b1", split="test"),  # same bytes as b1
        photo("q3", "", "aaaaaaaaaaaaaaaa", split="test"),      # nothing close
    ])
    answers = predict(query, CATALOGUE, max_distance=2)
    assert answers[0][:2] == ["w_a", "new_whale"]
    assert answers[1][:2] == ["w_b", "new_whale"]
    assert answers[2][0] == "new_whale"
    assert predict(query, CATALOGUE, max_distance=0)[0][0] == "new_whale"


def test_threshold_is_chosen_on_validation():
    # q1 is 4 bits from a1 (a real duplicate); q2 is 12 bits from w_e's photo but another whale
    query = pd.DataFrame([photo("q1", "", "000000000000000f"), photo("q2", "", "3333333333333ccc")])
    best, curve = tune_max_distance(query, ["w_a", "new_whale"], CATALOGUE, [0, 2, 4, 8, 12])
    assert best == 4
    assert curve.set_index("max_distance")["map5"].to_dict() == {0: 0.75, 2: 0.75, 4: 1.0, 8: 1.0, 12: 0.75}


def test_validation_queries_only_see_the_fit_part_of_train():
    # v1 is w_v's only photo, held out whole (truth new_whale): against all of train it would be
    # its own exact duplicate and answer w_v first; against the fit photos it has none. a3 (held
    # out, w_a) is a near duplicate of a1, which stays in fit.
    manifest = pd.concat([CATALOGUE, pd.DataFrame([photo("a3", "w_a", "0000000000000000", content="a3x"),
                                                   photo("v1", "w_v", "9999999999999999"),
                                                   photo("q", "", "0000000000000000", split="test"),
                                                   photo("q2", "", "aaaaaaaaaaaaaaaa", content="v1", split="test")])])
    split = pd.DataFrame({"image": manifest.loc[manifest["split"] == "train", "image"]})
    split["subset"] = ["validation" if i in ("a3", "v1") else "fit" for i in split["image"]]
    split["truth"] = ["new_whale" if i == "v1" else "w_a" for i in split["image"]]
    answers = identify(Queries.from_manifest(manifest, split), "auto", [0, 4])
    validation = dict(zip(answers.validation["image"], answers.validation["answers"]))
    assert list(validation) == ["a3", "v1"] and validation["a3"][0] == "w_a"
    assert validation["v1"][0] == "new_whale" and "w_v" not in validation["v1"]
    # test photos see all of train: q2, the same bytes as v1, gets w_v first
    test = dict(zip(answers.test["image"], answers.test["answers"]))
    assert test["q"][0] == "w_a" and test["q2"][0] == "w_v" and answers.chosen == 0
    assert identify(Queries.from_manifest(manifest, split), 4, [0, 4]).chosen == 4
