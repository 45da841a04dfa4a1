import pandas as pd
import pytest

from whaleid.evaluation.metrics import average_precision_at_5, map_at_5, top1_accuracy
from whaleid.evaluation.scoring import best_method, comparison_table, score_method, score_predictions
from whaleid.evaluation.submission import (
    SubmissionError,
    check_predictions,
    complete_submission,
    read_predictions,
    write_predictions,
)
from whaleid.evaluation.summary import format_comparison


def test_average_precision_is_one_over_the_rank_of_the_truth():
    answers = ["a", "b", "c", "d", "e"]
    assert [average_precision_at_5(answers, t) for t in "abcdez"] == [1, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 0]


def test_map_and_top1_over_images():
    predictions = [["a", "b", "c", "d", "e"], ["x", "y", "a", "b", "c"], ["q", "r", "s", "t", "u"]]
    assert map_at_5(predictions, ["a", "a", "a"]) == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert top1_accuracy(predictions, ["a", "a", "q"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        map_at_5(predictions, ["a"])


@pytest.mark.parametrize("images, predictions, problem", [
    (["a.jpg", "a.jpg"], [list("vwxyz"), list("vwxyz")], "more than once"),
    (["a.jpg"], [list("vwxy")], "5 distinct ids"),
    (["a.jpg"], [list("vwxyy")], "5 distinct ids"),
    (["a.jpg"], [["v", "w", "x", "y", "z z"]], "contains a space"),
])
def test_bad_submissions_are_refused(images, predictions, problem):
    with pytest.raises(SubmissionError, match=problem):
        check_predictions(images, predictions)


def test_submission_must_answer_exactly_the_test_images(tmp_path):
    with pytest.raises(SubmissionError, match="1 test images missing"):
        write_predictions(tmp_path / "s.csv", ["a.jpg"], [list("vwxyz")], expected_images=["a.jpg", "b.jpg"])
    assert not (tmp_path / "s.csv").exists()


def test_written_submission_reads_back_in_kaggle_format(tmp_path):
    path = tmp_path / "s.csv"
    write_predictions(path, ["a.jpg", "b.jpg"], [["new_whale", "w_1", "w_2", "w_3", "w_4"], list("vwxyz")])
    assert path.read_text().splitlines() == ["Image,Id", "a.jpg,new_whale w_1 w_2 w_3 w_4", "b.jpg,v w x y z"]
    predictions = read_predictions(path)
    assert score_predictions(predictions, {"a.jpg": "w_1", "b.jpg": "new_whale"}) == {
        "map5": 0.25, "top1": 0.0, "n_images": 2}
    with pytest.raises(SubmissionError, match="no prediction"):
        score_predictions(predictions, {"c.jpg": "w_1"})


def test_a_method_is_scored_on_validation_and_on_test_where_its_truth_is_known(tmp_path):
    (tmp_path / "split.csv").write_text("image,id,subset,truth\na.jpg,w_1,validation,w_1\nb.jpg,w_2,fit,w_2\n"
                                        "c.jpg,w_3,validation,new_whale\n")
    write_predictions(tmp_path / "validation.csv", ["a.jpg", "c.jpg"],
                      [["w_2", "w_1", "w_3", "w_4", "new_whale"], ["new_whale", "w_1", "w_2", "w_3", "w_4"]])
    write_predictions(tmp_path / "submission.csv", ["t.jpg"], [["w_1", "w_2", "w_3", "w_4", "new_whale"]])
    (tmp_path / "test_truth.csv").write_text("Image,Id\nt.jpg,w_3\n")
    scores = score_method("local", tmp_path / "validation.csv", tmp_path / "split.csv", tmp_path / "submission.csv",
                          tmp_path / "test_truth.csv")
    assert scores.to_dict("records") == [
        {"method": "local", "split": "validation", "map5": 0.75, "top1": 0.5, "n_images": 2},
        {"method": "local", "split": "test", "map5": pytest.approx(1 / 3), "top1": 0.0, "n_images": 1}]
    without_truth = score_method("local", tmp_path / "validation.csv", tmp_path / "split.csv",
                                 tmp_path / "submission.csv", None)
    assert without_truth["split"].tolist() == ["validation"]


def test_unreadable_test_images_still_get_a_row():
    manifest = pd.DataFrame({"image": ["t1.jpg", "t2.jpg", "t3.jpg", "t4.jpg", "t5.jpg", "q1.jpg"],
                             "split": ["train"] * 5 + ["test"],
                             "id": ["w_1", "w_1", "w_2", "w_3", "w_4", ""]})
    rejected = pd.DataFrame({"image": ["q2.jpg"], "split": ["test"]})
    images, answers, filled = complete_submission({"q1.jpg": list("vwxyz")}, manifest, rejected)
    assert images == ["q1.jpg", "q2.jpg"]
    assert answers[1] == ["new_whale", "w_1", "w_2", "w_3", "w_4"]
    assert filled == ["q2.jpg"]


SCORES = pd.DataFrame({"method": ["baseline", "baseline", "classifier", "classifier", "metric_learning"],
                       "split": ["validation", "test", "validation", "test", "validation"],
                       "map5": [0.3, 0.31, 0.5, 0.4, 0.5], "top1": [0.2, 0.21, 0.4, 0.3, 0.45],
                       "n_images": [10, 20, 10, 20, 10]})


def test_comparison_puts_the_methods_side_by_side():
    table = comparison_table(SCORES)
    assert list(table.columns) == ["method", "validation_map5", "validation_top1", "test_map5", "test_top1",
                                   "validation_images", "test_images"]
    assert table["method"].tolist() == ["baseline", "classifier", "metric_learning"]
    assert table.loc[1, "test_top1"] == 0.3 and table.loc[0, "validation_map5"] == 0.3
    assert pd.isna(table.loc[2, "test_map5"])  # not scored on test: left empty, not zero
    assert "0.5000" in format_comparison(table)


def test_the_best_method_on_validation_is_chosen_the_first_listed_among_equals():
    assert best_method(SCORES, ["baseline", "classifier", "metric_learning"]) == "classifier"
    assert best_method(SCORES, ["metric_learning", "classifier"]) == "metric_learning"
    assert best_method(SCORES, ["baseline"]) == "baseline"
    with pytest.raises(ValueError, match="no validation score for other"):
        best_method(SCORES, ["baseline", "other"])


def test_stage_times_sum_each_rules_jobs_longest_first():
    from whaleid.evaluation.summary import stage_times

    resources = pd.DataFrame({"job": ["embed/train", "embed/test", "baseline", "train_embedding"],
                              "rule": ["embed", "embed", "baseline", "train_embedding"],
                              "wall_s": [3.0, 2.0, 1.0, 4.0], "max_rss_mb": [1.0] * 4,
                              "cpu_time_s": [2.0, 1.5, 0.5, 3.0]})
    times = stage_times(resources)
    assert times["rule"].tolist() == ["embed", "train_embedding", "baseline"]
    assert times["jobs"].tolist() == [2, 1, 1]
    assert times["wall_s"].tolist() == [5.0, 4.0, 1.0] and times["cpu_time_s"].tolist() == [3.5, 3.0, 0.5]


def test_the_slowest_stages_take_one_line_however_many_stages_ran(tmp_path):
    from whaleid.evaluation.summary import slowest_stages, stage_times

    rules = [f"rule_{i}" for i in range(40)]
    resources = pd.DataFrame({"job": rules + ["rule_7/b"], "rule": rules + ["rule_7"], "max_rss_mb": 1.0,
                              "wall_s": [float(i) for i in range(40)] + [100.0], "cpu_time_s": 1.0})
    line = slowest_stages(stage_times(resources), tmp_path / "resources.csv", shown=3)
    assert line == ("slowest stages (wall seconds, jobs summed): rule_7 107 s (2 jobs), rule_39 39 s, rule_38 38 s; "
                    f"every stage's in {tmp_path / 'resources.csv'}")
