"""The report's figures and tables (whaleid.report.figures) on small made-up inputs, and the
report rules run end to end on the tiny workflow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import textured
from test_workflow import TINY, merged, planned_jobs

from whaleid.report import figures as rf

BENCHMARK_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's header."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def pixels(width: float, height: float) -> tuple[int, int]:
    return round(width * rf.DPI), round(height * rf.DPI)


def assert_png(path: Path, width: float, height: float) -> None:
    assert path.stat().st_size > 1000
    assert png_size(path) == pixels(width, height)
    assert not [p for p in path.parent.iterdir() if ".tmp-" in p.name]  # written atomically


@pytest.fixture
def dataset():
    """8 train photos (A x3, B x1, C x2, new_whale x2), 3 test photos, 2 rejected rows (one
    only a repeated train.csv row), and a split with 3 validation photos."""
    ids = ["A", "A", "A", "B", "C", "C", "new_whale", "new_whale"]
    train = pd.DataFrame({"image": [f"t{i}.jpg" for i in range(8)], "split": "train", "id": ids,
                          "width": [100, 120, 90, 300, 64, 64, 200, 150],
                          "height": [50, 60, 45, 200, 64, 48, 100, 90]})
    test = pd.DataFrame({"image": ["x0.jpg", "x1.jpg", "x2.jpg"], "split": "test", "id": "",
                         "width": [80, 90, 100], "height": [40, 50, 60]})
    manifest = pd.concat([train, test], ignore_index=True).astype(str)
    rejected = pd.DataFrame({"image": ["bad.jpg", "t0.jpg"], "split": ["train", "train"],
                             "source": ["train.csv", "train.csv"], "row": ["9", "10"],
                             "reason": ["train/bad.jpg: empty file (0 bytes)",
                                        "train.csv row 10: t0.jpg listed again, kept once"]})
    split = pd.DataFrame({"image": train["image"], "id": ids,
                          "subset": ["fit", "fit", "validation", "validation", "fit", "fit", "fit", "validation"],
                          "truth": ids[:3] + ["new_whale"] + ids[4:]})
    return manifest, rejected, split


def test_dataset_table_has_the_key_numbers(dataset):
    table = rf.dataset_table(*dataset)
    assert dict(zip(table["quantity"], table["value"])) == {
        "train images": 8, "test images": 3, "individuals": 3, "individuals with one photo": 1,
        "new_whale photos": 2, "validation images": 3, "rejected images": 1, "rejected.csv rows": 2}


def test_dataset_figure(dataset, tmp_path):
    manifest, _, split = dataset
    rf.dataset_figure(manifest, split, tmp_path / "report" / "dataset.png")
    assert_png(tmp_path / "report" / "dataset.png", *rf.DATASET_SIZE)


def test_example_rows_spread_from_first_to_last():
    assert rf.example_rows(100, 4) == [0, 33, 66, 99]
    assert rf.example_rows(2, 4) == [0, 1]
    assert rf.example_rows(0, 4) == []


@pytest.mark.parametrize("n_rows", [6, 2])
def test_preprocessing_figure_shows_originals_over_their_squares(write_image, tmp_path, n_rows):
    images = tmp_path / "train"
    names = [f"p{i}.jpg" for i in range(n_rows)]
    for i, name in enumerate(names):
        # colour and grey photos, as datasets mix them
        write_image(name, textured(40 + 5 * i, 70, channels=3 if i % 2 else 1, seed=i), folder=images)
    cache = np.random.default_rng(0).integers(0, 256, size=(n_rows, 16, 16), dtype=np.uint8)
    out = tmp_path / "out" / "preprocessing.png"
    rf.preprocessing_figure(cache, pd.DataFrame({"image": names}), images, out, n_examples=4)
    assert_png(out, rf.EXAMPLE_COLUMN_WIDTH * 4, rf.EXAMPLES_HEIGHT)


def test_preprocessing_figure_refuses_an_index_of_another_length(tmp_path):
    cache = np.zeros((3, 8, 8), np.uint8)
    with pytest.raises(ValueError, match="lists 2 images but the cache has 3 rows"):
        rf.preprocessing_figure(cache, pd.DataFrame({"image": ["a.jpg", "b.jpg"]}), tmp_path, tmp_path / "x.png")


def test_read_rgb_gives_none_for_an_unreadable_file(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not a photo")
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert rf.read_rgb(tmp_path / "broken.jpg") is None
    assert rf.read_rgb(tmp_path / "empty.jpg") is None


@pytest.mark.parametrize("model, columns, panels", [
    # as the three training stages write them
    ("classifier", {"phase": ["head", "head", "fine_tune"], "accuracy": [0.1, 0.2, 0.3], "loss": [3.0, 2.5, 2.0],
                    "val_map5": [0.2, 0.4, 0.3], "val_new_whale_threshold": [0.05, 0.1, 0.1]}, 2),
    ("metric_learning", {"loss": [16.0, 15.5, 15.0], "val_map5": [0.2, 0.2, 0.25],
                         "val_new_whale_threshold": [1.0, 0.9, 0.8]}, 2),
    ("autoencoder", {"loss": [0.11, 0.08, 0.07], "val_loss": [0.12, 0.09, 0.085]}, 1),
    # optional columns missing: no validation at all, or the score without a loss
    ("autoencoder", {"loss": [0.11, 0.08, 0.07]}, 1),
    ("metric_learning", {"val_map5": [0.2, 0.3, 0.25]}, 1),
])
def test_training_figure_has_a_panel_per_kind_of_curve(tmp_path, model, columns, panels):
    history = pd.DataFrame({"epoch": [0, 1, 2], **columns})
    rf.training_figure(history, model, tmp_path / "training.png")
    assert_png(tmp_path / "training.png", rf.TRAINING_PANEL_WIDTH * panels, rf.TRAINING_HEIGHT)


def test_training_figure_of_a_single_epoch_without_epoch_column(tmp_path):
    rf.training_figure(pd.DataFrame({"loss": [0.1], "val_loss": [0.2]}), "autoencoder", tmp_path / "one.png")
    assert_png(tmp_path / "one.png", rf.TRAINING_PANEL_WIDTH, rf.TRAINING_HEIGHT)


def test_training_figure_names_the_columns_when_it_has_nothing_to_plot(tmp_path):
    with pytest.raises(ValueError, match="columns: epoch, lr"):
        rf.training_figure(pd.DataFrame({"epoch": [0], "lr": [0.1]}), "classifier", tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def model_curve() -> pd.DataFrame:
    """A model's curve as ranking.sweep_duplicates_and_threshold writes it."""
    rows = [(d, t, 0.2 + 0.01 * d + 0.1 * (t == 0.5)) for d in (0, 2, 4) for t in (0.0, 0.25, 0.5, 0.75)]
    curve = pd.DataFrame(rows, columns=["max_distance", "threshold", "map5"])
    curve["chosen"] = curve.index == curve["map5"].idxmax()
    return curve


@pytest.mark.parametrize("method, curve", [
    ("classifier", model_curve()),
    ("metric_learning", model_curve().drop(columns="max_distance")),  # one line, no distances
    ("metric_learning", model_curve().drop(columns="chosen")),  # the best is starred instead
    ("classifier", model_curve().astype(str)),  # read as strings
    # the local method's threshold chosen on the fit photos' out-of-fold answers, drawn beside
    ("local", model_curve().assign(fold_map5=lambda curve: 0.3 + 0.1 * curve["threshold"]).astype(str)),
    ("baseline", pd.DataFrame({"max_distance": [0, 2, 4], "map5": [0.2, 0.3, 0.25],
                               "chosen": [False, True, False]})),
])
def test_threshold_figure(tmp_path, method, curve):
    rf.threshold_figure(curve, method, tmp_path / f"{method}.png")
    assert_png(tmp_path / f"{method}.png", *rf.THRESHOLD_SIZE)


def test_threshold_figure_needs_the_score(tmp_path):
    with pytest.raises(ValueError, match="columns: threshold, score"):
        rf.threshold_figure(pd.DataFrame({"threshold": [0.1], "score": [0.2]}), "classifier", tmp_path / "x.png")


def write_benchmark(path: Path, *rows: str, header: str = BENCHMARK_HEADER) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "".join(row + "\n" for row in rows))


def test_read_benchmarks_reads_nested_files_longest_first(tmp_path):
    folder = tmp_path / "benchmarks"
    write_benchmark(folder / "ingest.tsv", "3.93\t0:00:03\t333.29\t1000\t300\t310\t0.1\t0.2\t50\t2.05")
    write_benchmark(folder / "encode" / "train.tsv", "4.52\t0:00:04\t566.89\t2316.80\t234\t342\t0.02\t0.09\t76\t3.94")
    # repeat: 2 gives two rows: their mean time, their peak memory
    write_benchmark(folder / "encode" / "test.tsv", "6.0\t0:00:06\t500\t1\t1\t1\t0\t0\t1\t4.0",
                    "8.0\t0:00:08\t600\t1\t1\t1\t0\t0\t1\t6.0")
    # too short for Snakemake to measure memory
    write_benchmark(folder / "score" / "baseline.tsv", "0.5\t0:00:00\tNA\tNA\tNA\tNA\tNA\tNA\tNA\t0.3")
    # an older format without cpu_time
    write_benchmark(folder / "collect_scores.tsv", "0.8\t0:00:00\t70.8", header="s\th:m:s\tmax_rss\n")
    write_benchmark(folder / "report_resources.tsv", "1\t0:00:01\t1\t1\t1\t1\t1\t1\t1\t1")
    (folder / "notes.txt").write_text("not a benchmark")

    table = rf.read_benchmarks(folder, exclude=[folder / "report_resources.tsv"])
    assert list(table.columns) == rf.RESOURCE_COLUMNS
    assert table["job"].tolist() == ["encode/test", "encode/train", "ingest", "collect_scores", "score/baseline"]
    assert table["rule"].tolist() == ["encode", "encode", "ingest", "collect_scores", "score"]
    rows = table.set_index("job")
    assert rows.loc["encode/test", "wall_s"] == pytest.approx(7.0)
    assert rows.loc["encode/test", "max_rss_mb"] == pytest.approx(600)
    assert rows.loc["encode/test", "cpu_time_s"] == pytest.approx(5.0)
    assert rows.loc["encode/train", "max_rss_mb"] == pytest.approx(566.89)
    assert np.isnan(rows.loc["score/baseline", "max_rss_mb"])
    assert rows.loc["score/baseline", "cpu_time_s"] == pytest.approx(0.3)
    assert np.isnan(rows.loc["collect_scores", "cpu_time_s"])

    rf.resources_figure(table, tmp_path / "resources.png")
    height = max(rf.RESOURCES_MIN_HEIGHT, 1.5 + rf.RESOURCES_ROW_HEIGHT * len(table))
    assert_png(tmp_path / "resources.png", rf.RESOURCES_WIDTH, height)


def test_read_benchmarks_names_a_file_that_is_not_one(tmp_path):
    write_benchmark(tmp_path / "odd.tsv", "1\t2", header="a\tb\n")
    with pytest.raises(ValueError, match="odd.tsv: not a Snakemake benchmark file"):
        rf.read_benchmarks(tmp_path)


def test_resources_of_an_empty_folder(tmp_path):
    table = rf.read_benchmarks(tmp_path)
    assert table.empty and list(table.columns) == rf.RESOURCE_COLUMNS
    rf.resources_figure(table, tmp_path / "resources.png")
    assert_png(tmp_path / "resources.png", rf.RESOURCES_WIDTH, rf.RESOURCES_MIN_HEIGHT)


# The report's outputs for TINY (every method, the classifier reading the autoencoder's codes):
# what report_figures() and REPORT_RESOURCES in rules/common.smk list for it (the gallery aside).
REPORT_OUTPUTS = ["dataset.png", "dataset.csv", "preprocessing.png", "training/autoencoder.png",
                  "training/classifier.png", "training/metric_learning.png", "thresholds/baseline.png",
                  "thresholds/classifier.png", "thresholds/metric_learning.png", "resources.csv", "resources.png"]


def test_report_figures_follow_the_methods(tmp_path):
    """Only the stages a method runs: no training for the baseline alone, its squares made only
    for the review page's pictures, and the autoencoder's curves only where a method reads its
    codes."""
    target = ["--", "results/report/resources.png"]
    baseline = planned_jobs(tmp_path, merged(TINY, {"methods": ["baseline"], "submit": "baseline"}), *target)
    assert {rule: n for rule, n in baseline.items() if rule.startswith("report")} == {
        "report_dataset": 1, "report_thresholds": 1, "report_resources": 1}
    assert set(baseline) == {"demo_dataset", "ingest", "validation_split", "baseline_identify", "submission", "score",
                             "collect_scores", "chosen_submission", "review_catalogue", "preprocess", "review_page",
                             "report_dataset", "report_thresholds", "report_resources",
                             # the survey's capture times and encounters, the catalogue and Wildbook's import
                             "photo_captures", "exif_encounters", "review_catalogue_folders", "review_wildbook"}
    images_only = merged(TINY, {"methods": ["metric_learning"], "submit": "metric_learning",
                                "metric_learning": {"input": "images"}})
    planned = planned_jobs(tmp_path, images_only, *target)
    assert planned["report_training"] == 1 and planned["report_preprocessing"] == 1
    assert "autoencoder_train" not in planned and "metric_learning_train" in planned


@pytest.mark.slow
def test_report_outputs_of_a_tiny_run(tiny_run):
    report = tiny_run["results"] / "report"
    for name in REPORT_OUTPUTS:
        assert (report / name).stat().st_size > 0, name
        if name.endswith(".png"):
            assert png_size(report / name)[0] >= 600, name

    numbers = pd.read_csv(report / "dataset.csv").set_index("quantity")["value"]
    manifest = pd.read_csv(tiny_run["results"] / "ingest" / "manifest.csv", dtype=str, keep_default_na=False)
    assert numbers["train images"] == (manifest["split"] == "train").sum() == 90
    assert numbers["test images"] == 40
    known = manifest.loc[(manifest["split"] == "train") & (manifest["id"] != "new_whale"), "id"]
    assert numbers["individuals"] == known.nunique()

    resources = pd.read_csv(report / "resources.csv")
    jobs = set(resources["job"])
    # every job of the run, nested benchmark files included, but the resources job itself
    assert {"ingest", "preprocess/train", "autoencoder_encode/test", "classifier_train", "metric_learning_embed/train",
            "score/baseline", "report_dataset", "report_training/autoencoder", "report_thresholds/baseline",
            "report_gallery/metric_learning"} <= jobs
    assert "report_resources" not in jobs
    assert (resources["wall_s"] > 0).all()
