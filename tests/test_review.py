import numpy as np
import pandas as pd
import pytest
from test_gallery import made_up_run

from whaleid.identification.auto_accept import (
    ON_FIT_FOLDS,
    auto_accept,
    checked_on_validation,
    fold_auto_accept,
    wilson_lower_bound,
)
from whaleid.review.decisions import catalogue_table, identified, individuals_table, read_decisions


@pytest.fixture
def results(tmp_path):
    """test_gallery.py's made-up run: the files the review page reads."""
    return made_up_run(tmp_path)


TEST_IMAGES = ["t1.jpg", "t2.jpg", "t3.jpg", "t4.jpg", "t5.jpg"]
KNOWN = ["w_a", "w_b", "new_whale"]


def decisions(tmp_path, text, name="decisions.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_decisions_confirm_known_individuals_and_name_new_ones(tmp_path):
    path = decisions(tmp_path, "Image,decision,Id,by\n"
                               "t1.jpg,confirmed,w_a,person\n"
                               "t2.jpg,new,,person\n"
                               "t3.jpg,new,new-t2,person\n"       # the same new individual seen twice
                               "t4.jpg,unsure,,person\n"
                               "t5.jpg,confirmed,new-t2,auto\n"    # confirmed as a new one of the file
                               "t1.jpg,confirmed,w_a,person\n")   # the same decision twice: kept once
    reviewed = read_decisions([path], TEST_IMAGES, KNOWN)
    assert reviewed.columns.tolist() == ["image", "id", "decision", "source"]
    assert reviewed[["image", "id", "decision"]].values.tolist() == [
        ["t1.jpg", "w_a", "confirmed"], ["t2.jpg", "new-t2", "new"], ["t3.jpg", "new-t2", "new"],
        ["t4.jpg", "", "unsure"], ["t5.jpg", "new-t2", "confirmed"]]
    assert set(reviewed["source"]) == {str(path)}
    assert identified(reviewed)["image"].tolist() == ["t1.jpg", "t2.jpg", "t3.jpg", "t5.jpg"]


@pytest.mark.parametrize("rows, message", [
    ("t9.jpg,confirmed,w_a", r"decisions.csv, line 3: 't9.jpg' is not a test photo of this run"),
    ("t2.jpg,confirmed,w_zz", r"line 3: t2.jpg is confirmed as 'w_zz', which is neither a known individual"),
    ("t2.jpg,maybe,w_a", r"line 3: decision 'maybe': expected one of confirmed, new, unsure"),
    ("t1.jpg,confirmed,w_b", r"line 3: t1.jpg is decided confirmed 'w_b', but .*line 2 decided it confirmed 'w_a'"),
    ("t2.jpg,new,w_b", r"line 3: t2.jpg is decided new but 'w_b' is a known individual: decide it confirmed"),
    ("t2.jpg,confirmed,new_whale", r"line 3: new_whale is no individual"),
    ("t2.jpg,confirmed,", r"line 3: confirmed without an Id"),
    (",confirmed,w_a", r"line 3: no Image"),
    ("t2.jpg,confirmed,w_a,extra", r"line 3: more fields than the header's 3"),
])
def test_a_wrong_row_is_an_error_naming_the_file_and_line(tmp_path, rows, message):
    path = decisions(tmp_path, f"Image,decision,Id\nt1.jpg,confirmed,w_a\n{rows}\n")
    with pytest.raises(ValueError, match=message):
        read_decisions([path], TEST_IMAGES, KNOWN)


def test_a_malformed_or_missing_file_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"bad.csv: no decision, Id column"):
        read_decisions([decisions(tmp_path, "Image,Answer\nt1.jpg,w_a\n", "bad.csv")], TEST_IMAGES, KNOWN)
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(ValueError, match=r"binary.csv: not a UTF-8 text file"):
        read_decisions([tmp_path / "binary.csv"], TEST_IMAGES, KNOWN)
    with pytest.raises(ValueError, match=r"gone.csv: file not found"):
        read_decisions([tmp_path / "gone.csv"], TEST_IMAGES, KNOWN)


def test_decisions_of_several_reviews_are_read_together(tmp_path):
    first = decisions(tmp_path, "Image,decision,Id\nt1.jpg,new,\n", "first.csv")
    # a later review confirms a photo as the individual the first one found new
    second = decisions(tmp_path, "Image,decision,Id\nt2.jpg,confirmed,new-t1\n", "second.csv")
    reviewed = read_decisions([first, second], TEST_IMAGES, KNOWN)
    assert reviewed[["image", "id", "source"]].values.tolist() == [["t1.jpg", "new-t1", str(first)],
                                                                   ["t2.jpg", "new-t1", str(second)]]
    contradicting = decisions(tmp_path, "Image,decision,Id\nt1.jpg,unsure,\n", "third.csv")
    with pytest.raises(ValueError, match=r"third.csv, line 2: t1.jpg is decided unsure .*first.csv, line 2"):
        read_decisions([first, contradicting], TEST_IMAGES, KNOWN)


def test_the_catalogue_holds_train_and_reviewed_photos_and_where_they_came_from():
    train = pd.DataFrame({"image": ["a1", "a2", "n1", "b1"], "id": ["w_a", "w_a", "new_whale", "w_b"]})
    reviewed = pd.DataFrame({"image": ["t1", "t2", "t3"], "id": ["w_a", "new-t2", ""],
                             "decision": ["confirmed", "new", "unsure"], "source": ["d.csv"] * 3})
    catalogue = catalogue_table(train, reviewed)
    assert catalogue.values.tolist() == [["a1", "w_a", "train", "train", ""], ["a2", "w_a", "train", "train", ""],
                                         ["b1", "w_b", "train", "train", ""],
                                         ["t1", "w_a", "test", "d.csv", "confirmed"],
                                         ["t2", "new-t2", "test", "d.csv", "new"]]
    individuals = individuals_table(catalogue).set_index("id")
    assert individuals.loc["w_a"].tolist() == [3, 2, 1, False, "a1 a2 t1"]
    assert individuals.loc["new-t2"].tolist() == [1, 0, 1, True, "t2"]
    assert individuals.index.tolist() == ["new-t2", "w_a", "w_b"]


def test_auto_accept_takes_the_largest_most_confident_set_right_often_enough():
    scores = [0.99, 0.95, 0.9, 0.9, 0.8, 0.7, 0.5, np.nan]
    correct = [True, True, True, False, True, True, False, True]
    accept = auto_accept(scores, correct, 0.8)
    # top 6 are right 5 of 6 (0.833); the tied 0.9s go together
    assert accept.threshold == 0.7 and accept.chosen_accepted == accept.validation_accepted == 6
    assert accept.chosen_precision == pytest.approx(5 / 6) and accept.validation_queries == 7
    assert accept.on_validation
    # few answers: the precision may really be much lower
    assert 0.55 < accept.lower_bound < 5 / 6
    assert wilson_lower_bound(54, 54) == pytest.approx(0.9706, abs=1e-3)
    assert wilson_lower_bound(530, 540) > wilson_lower_bound(53, 54) > 0.93
    np.testing.assert_allclose(wilson_lower_bound(np.array([54, 530]), np.array([54, 540])),
                               [wilson_lower_bound(54, 54), wilson_lower_bound(530, 540)])
    strict = auto_accept(scores, correct, 1.0)
    assert strict.threshold == 0.95 and strict.validation_accepted == 2
    none = auto_accept([0.9, 0.8], [False, True], 0.99)
    assert none.threshold == float("inf") and none.validation_accepted == 0 and np.isnan(none.validation_precision)
    with pytest.raises(ValueError, match="precision must be in"):
        auto_accept(scores, correct, 0)


def test_on_the_fit_folds_answers_auto_accept_takes_the_set_surely_right_often_enough():
    # 300 answers, most sure first: the first 150 all right, then one wrong in every 5, then half
    right = np.r_[np.ones(150, bool), np.arange(100) % 5 != 0, np.arange(50) % 2 == 0]
    scores = np.linspace(1, 0.1, 300)
    surely = auto_accept(np.r_[scores, np.nan], np.r_[right, True], 0.95, ON_FIT_FOLDS)
    accepted = int(np.sum(scores >= surely.threshold))
    assert surely.chosen_accepted == accepted and surely.chosen_answers == 300 and not surely.on_validation
    # the bound, not the precision reached, meets the one asked: reached is above it
    assert surely.lower_bound >= 0.95 and surely.chosen_precision > surely.lower_bound
    assert surely.chosen_precision == pytest.approx(right[:accepted].mean())
    assert wilson_lower_bound(right[:accepted + 1].sum(), accepted + 1) < 0.95
    # where only the precision reached had to meet it, more would have been accepted
    reached = auto_accept(scores, right, 0.95)
    assert reached.chosen_accepted > accepted and reached.lower_bound < 0.95 <= reached.chosen_precision
    # a few answers all right are not sure enough: 20 of 20 may really be 92%
    assert wilson_lower_bound(20, 20) == pytest.approx(0.924, abs=1e-3)
    few = auto_accept(np.linspace(1, 0.5, 20), np.ones(20, bool), 0.98, ON_FIT_FOLDS)
    assert few.threshold == float("inf") and few.chosen_accepted == 0 and np.isnan(few.chosen_precision)


def test_a_threshold_chosen_on_out_of_fold_answers_is_checked_on_validation(tmp_path):
    rng = np.random.default_rng(0)
    probability = rng.uniform(0, 1, 2000)
    answers = pd.DataFrame({"image": [f"f{n}.jpg" for n in range(2000)], "id": "w", "known": True,
                            "pooling": "max", "rank": 0, "answer": "w", "probability": probability,
                            "right": rng.uniform(0, 1, 2000) < probability})
    # the other pooling's, the answers below rank 1, and photos nothing verified, are not what it
    # is chosen on
    others = answers.assign(pooling="noisy_or", right=False)
    second = answers.assign(rank=1, probability=0.99, right=False)
    unanswered = pd.DataFrame({"image": ["u.jpg"], "id": ["w"], "known": [True], "pooling": ["max"], "rank": [0],
                               "answer": [""], "probability": [np.nan], "right": [False]})
    pd.concat([answers, others, second, unanswered]).to_csv(tmp_path / "fold_answers.csv", index=False)
    pd.DataFrame({"pooling": ["max", "noisy_or"], "map5": [0.6, 0.5], "threshold": [0.3, 0.3],
                  "chosen": [True, False]}).to_csv(tmp_path / "poolings.csv", index=False)
    accept = fold_auto_accept(tmp_path / "fold_answers.csv", tmp_path / "poolings.csv", 0.95)
    assert not accept.on_validation and accept.chosen_answers == 2000
    # right with probability p: the answers above about 0.9 are right 95% of the time
    assert 0.85 < accept.threshold < 0.97 and accept.lower_bound >= 0.95
    checked = checked_on_validation(accept, [0.99, 0.97, 0.5, np.nan], [True, False, True, True])
    assert (checked.validation_accepted, checked.validation_queries, checked.validation_precision) == (2, 3, 0.5)
    assert (checked.threshold, checked.chosen_accepted) == (accept.threshold, accept.chosen_accepted)


def test_the_summary_make_demo_prints_says_where_the_review_page_is(tmp_path):
    from whaleid.evaluation.summary import summarise

    pd.DataFrame({"method": ["local", "local"], "split": ["validation", "test"], "map5": [0.9, 0.8],
                  "top1": [0.85, 0.7], "n_images": [35, 150]}).to_csv(tmp_path / "scores.csv", index=False)
    (tmp_path / "submission_method.txt").write_text("local\n")
    assert "review page" not in summarise(tmp_path)
    (tmp_path / "review").mkdir()
    pd.DataFrame([{"method": "local", "precision": 0.98, "threshold": 0.7, "chosen_on": "out-of-fold fit queries",
                   "chosen_precision": 0.99, "chosen_accepted": 400, "chosen_answers": 900, "lower_bound": 0.981,
                   "validation_precision": 0.98,
                   "validation_accepted": 50, "validation_queries": 60, "test_photos": 150, "test_accepted": 40,
                   "to_review": 110, "decided_before": 0}]).to_csv(tmp_path / "review" / "auto_accept.csv",
                                                                    index=False)
    assert (f"review page: {tmp_path / 'review' / 'page.html'} (local: 40 of 150 test photos auto-accepted at 0.98 "
            "precision on out-of-fold fit queries, 110 for a person)") in summarise(tmp_path)


def embedding_files(r):
    """The embeddings of the made-up run of test_gallery.py's `results` (at known angles)."""
    from whaleid.review.evidence import EmbeddingFiles

    files = r / "metric_learning" / "embeddings"
    return EmbeddingFiles(files / "train.npy", files / "train.csv", files / "test.npy", files / "test.csv")


def review_of(r, tmp_path, method="metric_learning", precision=0.9, reviewed=None, encounters=None):
    """write_review on the made-up run of test_gallery.py's `results`."""
    from whaleid.review.review_page import write_review

    files = r / "metric_learning"
    out = tmp_path / "review"
    accept = write_review(method=method, run="made up", precision=precision, split_csv=r / "validation/split.csv",
                          validation_predictions=files / "predictions/validation.csv",
                          test_predictions=files / "predictions/test.csv",
                          threshold_curve=files / "new_whale_threshold.csv", train_images=r / "preprocess/train.npy",
                          train_images_index=r / "preprocess/train.csv", test_images=r / "preprocess/test.npy",
                          test_images_index=r / "preprocess/test.csv", page_out=out / "page.html",
                          queue_out=out / "queue.csv", auto_accept_out=out / "auto_accept.csv", reviewed=reviewed,
                          encounters=encounters,
                          **({"embeddings": embedding_files(r)} if method == "metric_learning" else {}))
    return accept, pd.read_csv(out / "queue.csv"), pd.read_csv(out / "auto_accept.csv"), (out / "page.html").read_text()


def test_the_review_queue_is_least_sure_first_and_accepts_at_the_precision_validation_reached(results, tmp_path):
    # validation: a3 right at similarity cos 10 degrees, g1 wrong (truth new_whale) at cos 20
    accept, queue, figures, page = review_of(results, tmp_path)
    assert accept.threshold == pytest.approx(np.cos(np.radians(10)), abs=1e-4)
    assert (accept.validation_accepted, accept.validation_queries, accept.validation_precision) == (1, 2, 1.0)
    # t4 (30 degrees from d1) is least sure, then t1 (5 from b1), t3 (2 from a3: test photos are
    # answered from all of train) and t2 (0 from a1)
    assert queue["image"].tolist() == ["t4.jpg", "t1.jpg", "t3.jpg", "t2.jpg"]
    assert queue["answer"].tolist() == ["D", "B", "A", "A"]
    assert queue["accepted"].tolist() == [False, True, True, True]
    assert figures.loc[0, ["test_photos", "test_accepted", "to_review"]].tolist() == [4, 3, 1]
    assert page.count('<section class="query"') == 4 and "A person still has to look at 1." in page
    # asked for less, g1's wrong answer is within it: the threshold falls to cos 20, still above t4's cos 30
    loose, queue, _, _ = review_of(results, tmp_path, precision=0.5)
    assert loose.threshold == pytest.approx(np.cos(np.radians(20)), abs=1e-4) and loose.validation_accepted == 2
    assert queue["accepted"].tolist() == [False, True, True, True]


def test_a_method_without_scores_is_reviewed_in_its_answers_order_and_nothing_is_accepted(results, tmp_path):
    accept, queue, _, page = review_of(results, tmp_path, method="baseline")
    assert accept.threshold == np.inf and not queue["accepted"].any()
    assert queue["image"].tolist() == ["t1.jpg", "t2.jpg", "t3.jpg", "t4.jpg"]
    assert "a person has to look at every photo (4)" in page


def test_photos_decided_before_are_not_asked_again(results, tmp_path):
    reviewed = tmp_path / "reviewed.csv"
    pd.DataFrame({"image": ["t3.jpg", "t4.jpg"], "id": ["A", ""], "decision": ["confirmed", "unsure"],
                  "source": "d.csv"}).to_csv(reviewed, index=False)
    _, queue, figures, _ = review_of(results, tmp_path, reviewed=reviewed)
    # t3 is decided; t4, unsure, is asked again
    assert queue["image"].tolist() == ["t4.jpg", "t1.jpg", "t2.jpg"]
    assert figures.loc[0, "decided_before"] == 1


def test_an_encounter_is_one_query_each_answer_shown_by_the_photo_that_matched_it_best(results, tmp_path):
    from whaleid.review.evidence import gallery_queries, method_evidence
    from whaleid.review.review_page import review_queries

    encounters = tmp_path / "encounters.csv"
    pd.DataFrame({"Image": ["t1.jpg", "t4.jpg"], "Encounter": ["e1", "e1"]}).to_csv(encounters, index=False)
    _, queue, figures, page = review_of(results, tmp_path, encounters=encounters)
    # four photos, three queries: t1 and t4 share one position and one decision
    assert figures.loc[0, "test_photos"] == 4 and queue["position"].nunique() == 3
    assert queue.groupby("position")["image"].apply(list).tolist().count(["t1.jpg", "t4.jpg"]) == 1
    assert page.count('<section class="query"') == 3 and 'data-others="[&quot;t4.jpg&quot;]"' in page
    assert "4 test photos in 3 queries" in page
    # t1 (85 degrees) speaks for B, its rank 1; t4 (300 degrees) for D, 30 degrees from d1
    r, files = results, results / "metric_learning"
    found = gallery_queries(split_csv=r / "validation/split.csv", train_images=r / "preprocess/train.npy",
                            train_images_index=r / "preprocess/train.csv", test_images=r / "preprocess/test.npy",
                            test_images_index=r / "preprocess/test.csv",
                            validation_predictions=files / "predictions/validation.csv",
                            test_predictions=files / "predictions/test.csv", every_test_photo=True)
    shown = method_evidence("metric_learning", found, embeddings=embedding_files(r))
    queries, _ = review_queries(found, shown, 0.5, 0.99, set(), {"t1.jpg": "e1", "t4.jpg": "e1"})
    t1 = next(q for q in queries if q.image == "t1.jpg")
    assert t1.others == ("t4.jpg",)
    by_id = {c.id: c for c in t1.candidates}
    assert by_id["B"].query is None and by_id["B"].photo == "b1.jpg"
    assert by_id["D"].query == "t4.jpg" and by_id["D"].score == pytest.approx(np.cos(np.radians(30)), abs=1e-4)


def test_an_answer_a_pseudo_label_speaks_for_is_never_auto_accepted():
    """Self-training accepted t1 as A; t2's answer A at 0.99 is spoken for by t1, t3's by a
    catalogue photo: only t3 is accepted, the threshold's promise being measured on catalogue
    photos."""
    from whaleid.review.evidence import Evidence, GalleryQueries, MethodEvidence, Photos
    from whaleid.review.review_page import review_queries

    square = np.zeros((8, 8), np.uint8)
    others = ["B", "C", "D", "new_whale"]
    found = GalleryQueries({"test": Photos(["t2.jpg", "t3.jpg"], ["new_whale"] * 2, [square] * 2)},
                           {"test": Photos(["a1.jpg", "t1.jpg"], ["A", "A"], [square] * 2)},
                           {"test": [["A", *others], ["A", *others]]})
    evidence = Evidence(np.array([[1, -1, -1, -1, -1], [0, -1, -1, -1, -1]]), np.full((2, 5), 0.001),
                        np.array([0.99, 0.99]), np.array([[True] + [False] * 4] * 2))
    evidence.score[:, 0] = 0.99
    shown = MethodEvidence({"test": evidence}, found.catalogues, "probability",
                           pseudo_labelled={"test": {"t1.jpg": 1}})
    queries, _ = review_queries(found, shown, 0.5, 0.9, set())
    by_image = {query.image: query for query in queries}
    assert by_image["t2.jpg"].candidates[0].pseudo_round == 1 and not by_image["t2.jpg"].accepted
    assert by_image["t3.jpg"].candidates[0].pseudo_round is None and by_image["t3.jpg"].accepted
