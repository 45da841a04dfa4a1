"""The workflow run end to end by Snakemake on small generated data."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from browser import CHROMIUM_SKIP, open_browser
from conftest import REPO, RIGHT_WHALE

from whaleid.evaluation.metrics import map_at_5

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TINY = {"preprocess": {"size": 32, "chunk_size": 16, "threads": 2}, "ingest": {"threads": 2},
        "autoencoder": {"epochs": 1, "batch_size": 8, "threads": 2}, "encode": {"chunk_size": 32},
        # The head only: fine-tuning is tested in test_classifier.py, and costs every run here 12 s.
        # VGG19, as published: on these few photos its plain stack of convolutions trains and
        # answers in 14 s less CPU than MobileNetV2's 150 layers (which test_classifier.py
        # builds and test_weights.py trains from staged ImageNet weights).
        "classifier": {"backbone": "vgg19", "weights": "none", "input_size": 32, "head_epochs": 1,
                       "fine_tune_epochs": 0, "batch_size": 8, "threads": 2},
        "metric_learning": {"backbone": "compact", "weights": "none", "width": 4, "input_size": 32,
                            "embedding_size": 16, "epochs": 2, "batch_size": 8, "tta_views": 2, "threads": 2},
        # one chunk: on a few photos each chunk's job costs more than its matching (the tiny run
        # of conftest.py is the one in chunks)
        "local": {"image_size": 128, "n_features": 150, "threads": 2, "chunks": 1},
        "report": {"gallery_size": 4}}
METHODS = ("baseline", "classifier", "metric_learning", "local", "fused")


def snakemake(workdir: Path, *args: str, config: dict | None = None, check: bool = True,
              env: dict[str, str] | None = None, snakefile: Path = REPO / "Snakefile") -> subprocess.CompletedProcess:
    """Run the workflow of this checkout (or of `snakefile`) with `workdir` as its working
    directory, in `env` (default: this process's environment)."""
    # Only the settings that differ: Snakemake merges them over the checkout's config.yaml.
    configfile = workdir / "test_config.yaml"
    configfile.write_text(yaml.safe_dump(config or TINY))
    command = [SNAKEMAKE, "--snakefile", str(snakefile), "--directory", str(workdir),
               "--cores", "2", "--configfile", str(configfile), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def planned_jobs(workdir: Path, config: dict, *extra: str, snakefile: Path = REPO / "Snakefile") -> dict[str, int]:
    """The rules `snakemake -n` would run, with their job counts, from its 'Job stats' table."""
    output = snakemake(workdir, "-n", *extra, config=config, snakefile=snakefile).stdout
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:", 1)[1]
    return {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)
            if rule != "total"}


def folder_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(str(path.stat().st_mtime_ns).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def merged(*layers: dict) -> dict:
    result: dict = {}
    for layer in layers:
        for key, value in layer.items():
            result[key] = merged(result.get(key, {}), value) if isinstance(value, dict) else value
    return result


@pytest.mark.slow
def test_run_writes_a_valid_scored_submission(tiny_run):
    results, data = tiny_run["results"], tiny_run["data"]
    submission = pd.read_csv(results / "submission.csv", dtype=str)
    truth = pd.read_csv(data / "test_truth.csv", dtype=str)
    assert list(submission.columns) == ["Image", "Id"]
    assert sorted(submission["Image"]) == sorted(truth["Image"])  # every test image exactly once
    answers = submission["Id"].str.split()
    assert all(len(a) == 5 == len(set(a)) for a in answers)

    scores = pd.read_csv(results / "scores.csv")
    assert list(scores.columns) == ["method", "split", "map5", "top1", "n_images"]
    assert set(zip(scores["method"], scores["split"])) == {
        (method, split) for method in METHODS for split in ("validation", "test")}
    # submission.csv is the submission of the method best on validation, and its test score is
    # the one an independent computation gives from the file
    scored = scores.set_index(["method", "split"])
    chosen = (results / "submission_method.txt").read_text().strip()
    assert scored.loc[(chosen, "validation"), "map5"] == scored.xs("validation", level="split")["map5"].max()
    assert (results / "submission.csv").read_bytes() == (results / chosen / "submission.csv").read_bytes()
    by_image = dict(zip(submission["Image"], answers))
    expected = map_at_5([by_image[i] for i in truth["Image"]], truth["Id"].tolist())
    assert scored.loc[(chosen, "test"), "map5"] == pytest.approx(expected)
    assert (scored.xs("test", level="split")["n_images"] == len(truth)).all()
    # the baseline answers new_whale second at worst, so it scores at least what that earns
    assert scored.loc[("baseline", "test"), "map5"] >= 0.5 * (truth["Id"] == "new_whale").mean()

    comparison = pd.read_csv(results / "comparison.csv")
    assert comparison["method"].tolist() == list(METHODS)
    for method, split, measure in [("classifier", "validation", "map5"), ("metric_learning", "test", "top1")]:
        row = comparison[comparison["method"] == method].iloc[0]
        assert row[f"{split}_{measure}"] == pytest.approx(scored.loc[(method, split), measure])


@pytest.mark.slow
def test_every_stage_leaves_a_log_and_a_benchmark(tiny_run):
    results = tiny_run["results"]
    for stage in ["ingest", "validation_split", "baseline_identify", "collect_scores", "preprocess/train",
                  "preprocess/test", "autoencoder_train", "autoencoder_encode/train", "autoencoder_encode/test",
                  "classifier_train", "classifier_identify", "submission/baseline", "score/baseline",
                  "submission/classifier", "score/classifier", "metric_learning_train", "metric_learning_embed/train",
                  "metric_learning_embed/test", "metric_learning_identify", "submission/metric_learning",
                  "score/metric_learning", "report_gallery/metric_learning", "report_gallery/local",
                  "report_gallery/fused", "report_calibration/local", "report_calibration/fused",
                  "local_keypoints_chunk/train/1-of-3", "local_keypoints_chunk/test/3-of-3",
                  "local_keypoints/train", "local_keypoints/test", "local_foreground", "local_verifier",
                  "local_foreground_matches/1-of-3", "local_verifier_pairs/2-of-3", "local_match/validation/1-of-3",
                  "local_match/test/3-of-3", "local_identify",
                  "local_shortlist_recall", "submission/local", "score/local",
                  "fused_identify", "submission/fused", "score/fused", "review_catalogue", "review_page"]:
        assert (results / "logs" / f"{stage}.log").is_file(), stage
        assert (results / "benchmarks" / f"{stage}.tsv").is_file(), stage
    cache = results / "preprocess" / "train.npy"
    index = pd.read_csv(results / "preprocess" / "train.csv")
    assert np.load(cache, mmap_mode="r").shape == (len(index), 32, 32)
    codes = np.load(results / "autoencoder" / "codes" / "train.npy", mmap_mode="r")
    assert codes.shape == (len(index), 8, 8, 3) and codes.dtype == np.float16
    assert pd.read_csv(results / "autoencoder" / "codes" / "train.csv")["image"].tolist() == index["image"].tolist()
    history = pd.read_csv(results / "autoencoder" / "history.csv")
    assert history["epoch"].tolist() == [0] and np.isfinite(history["loss"]).all()
    assert (results / "autoencoder" / "reconstructions.png").stat().st_size > 0
    assert not (results / "autoencoder" / "backup").exists()  # a finished run leaves no backup
    embeddings = np.load(results / "metric_learning" / "embeddings" / "train.npy")
    assert embeddings.shape == (len(index), 16)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-4)
    assert pd.read_csv(results / "metric_learning" / "history.csv")["epoch"].tolist() == [0, 1]
    assert pd.read_csv(results / "metric_learning" / "new_whale_threshold.csv")["chosen"].sum() == 1
    assert not (results / "metric_learning" / "backup").exists()
    assert not (results / "classifier" / "backup").exists()
    keypoints = np.load(results / "local" / "keypoints" / "train.npy", mmap_mode="r")
    assert keypoints.shape == (len(index), 150) and set(keypoints.dtype.names) == {"xy", "descriptor"}
    assert (~np.isnan(keypoints["xy"][:, :, 0])).sum(axis=1).mean() > 10  # keypoints found on 32-pixel squares
    shortlists = pd.read_csv(results / "local" / "shortlists" / "test.csv")
    assert set(shortlists["image"]) <= set(pd.read_csv(results / "local" / "keypoints" / "test.csv")["image"])
    assert (shortlists.groupby("image")["rank"].max() < 10).all()  # the configured shortlist of 10
    assert {"score", "probability"} <= set(shortlists.columns) and shortlists["probability"].between(0, 1).all()
    pairs = pd.read_csv(results / "local" / "pairs" / "test.csv")
    assert len(pairs) >= len(shortlists) and pairs["probability"].between(0, 1).all()
    assert set(pairs["photo"]) <= set(pd.read_csv(results / "local" / "keypoints" / "train.csv")["image"])
    assert pd.read_csv(results / "local" / "poolings.csv")["chosen"].sum() == 1
    recall = pd.read_csv(results / "local" / "shortlist_recall.csv")
    assert set(recall["split"]) == {"validation", "test"} and recall["recall"].dropna().between(0, 1).all()
    weights = pd.read_csv(results / "fused" / "weights.csv")
    assert weights["chosen"].sum() == 1 and weights["weight"].tolist() == pytest.approx([i / 10 for i in range(11)])
    assert pd.read_csv(results / "fused" / "calibration.csv")["method"].tolist() == ["local", "metric_learning"]


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_no_method_answers_a_validation_photo_with_what_only_validation_photos_show(tiny_run, method):
    """A validation photo is matched against the fit photos only: never against itself nor another
    held-out photo. The individuals held out whole (all their photos in validation, truth
    new_whale) are then unknown to every method on validation, and a leak names them at once:
    their photo matches itself perfectly (as a duplicate, by its embedding, its keypoints), and
    a classifier trained on it has a class for it. Test photos are matched against train only."""
    results = tiny_run["results"]
    split = pd.read_csv(results / "validation" / "split.csv", dtype=str, keep_default_na=False)
    fit_ids = set(split.loc[split["subset"] == "fit", "id"])
    held_out_whole = set(split.loc[split["subset"] == "validation", "id"]) - fit_ids - {"new_whale"}
    assert held_out_whole  # the split holds some: the check below has something to find
    validation = pd.read_csv(results / method / "predictions" / "validation.csv", dtype=str)
    named = {whale_id for answers in validation["Id"].str.split() for whale_id in answers}
    assert not named & held_out_whole, sorted(named & held_out_whole)
    assert named <= fit_ids | {"new_whale"}
    test = pd.read_csv(results / method / "predictions" / "test.csv", dtype=str)
    assert {whale_id for answers in test["Id"].str.split() for whale_id in answers} <= set(split["id"]) | {"new_whale"}
    if method == "local":  # what the fused method reads: the verified shortlists, on validation fit ids only
        shortlists = pd.read_csv(results / "local" / "shortlists" / "validation.csv", dtype=str)
        assert set(shortlists["id"]) <= fit_ids
        # and the verifier learned from fit photos alone, asked against fit photos alone
        fit_images = set(split.loc[split["subset"] == "fit", "image"])
        learned = pd.read_csv(results / "local" / "verifier" / "training_pairs.csv", dtype=str)
        assert len(learned) and set(learned["image"]) | set(learned["photo"]) <= fit_images
        # its answers out of fold were against catalogues thinned of the asked photo's own
        # individual only: every pair of two individuals stays
        assert (learned.loc[learned["same"] == "False", "survey_like"] == "True").all()
        # and so did the foreground model that weighs every keypoint
        labelled = pd.read_csv(results / "local" / "foreground" / "labels.csv", dtype=str)
        assert len(labelled) and set(labelled["image"]) | set(labelled["photo"]) <= fit_images


@pytest.mark.slow
def test_a_machine_with_fewer_cores_trains_the_same_model(tiny_run, tmp_path):
    """TensorFlow runs on each stage's configured threads, not on the cores Snakemake hands the
    job: the tiny run's metric learning (2 threads, 2 cores) trained again with one core gives
    the same embeddings, to the byte."""
    work = tmp_path / "work"
    shutil.copytree(tiny_run["work"], work, symlinks=True)
    target = "results/metric_learning/embeddings/train.npy"
    # after "--": the target, which would otherwise be read as one more --configfile
    result = snakemake(work, "--forcerun", "metric_learning_train", "--cores", "1", "--", target,
                       config=tiny_run["config"])
    assert "metric_learning_train" in result.stdout + result.stderr  # it did train again
    assert (work / target).read_bytes() == (tiny_run["work"] / target).read_bytes()
    assert "TensorFlow on 2 CPU threads" in (work / "results" / "logs" / "metric_learning_train.log").read_text()


# What TensorFlow and its libraries print from C++ as they start: the job's log keeps it.
FRAMEWORK_START_UP = ("cpu_feature_guard", "absl::InitializeLog", "oneDNN custom operations",
                      "rebuild TensorFlow with the appropriate compiler flags")


@pytest.mark.slow
def test_the_console_says_what_the_workflow_does_and_the_logs_keep_the_framework_s_noise(tiny_run):
    console = tiny_run["console"]
    assert "metric_learning_train" in console and "steps (100%) done" in console
    assert not [line for line in console.splitlines() if any(noise in line for noise in FRAMEWORK_START_UP)]
    log = (tiny_run["results"] / "logs" / "metric_learning_train.log").read_text()
    assert "TensorFlow on 2 CPU threads" in log
    assert any(noise in log for noise in FRAMEWORK_START_UP)  # kept, where a person debugging looks


@pytest.mark.slow
def test_input_folder_is_unchanged_by_a_run(tiny_run):
    assert folder_digest(tiny_run["data"]) == tiny_run["before"]


# What `snakemake --report` takes from a run of TINY (every method, the classifier on codes):
# each output flagged report(...) in rules/, under the name the report shows.
REPORTED = ["comparison.csv", "reconstructions.png", "dataset.png", "dataset.csv", "preprocessing.png",
            "autoencoder.png", "classifier.png", "metric_learning.png", "baseline.png", "classifier.png",
            "metric_learning.png", "local.png", "fused.png", "metric_learning_best_hits.html",
            "metric_learning_worst_misses.html", "local_best_hits.html", "local_worst_misses.html",
            "fused_best_hits.html", "fused_worst_misses.html",
            "local.png", "fused.png",  # the calibrated methods' reliability
            "resources.csv", "resources.png"]


@pytest.mark.slow
def test_the_report_holds_every_flagged_output(tiny_run):
    report = tiny_run["work"] / "report.html"
    result = snakemake(tiny_run["work"], "--report", str(report), config=tiny_run["config"])
    added = re.findall(r"^Adding (\S+) \(", result.stdout + result.stderr, re.MULTILINE)
    assert sorted(added) == sorted(REPORTED)
    html = report.read_text()
    # one self-contained file: nothing fetched from elsewhere when a researcher opens it
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"https?://", html)
    for category in ["Data", "Preprocessing", "Autoencoder", "Training", "Thresholds", "Calibration", "Comparison",
                     "Candidate gallery", "Resources"]:
        assert category in html, category


@pytest.mark.slow
def test_changing_one_setting_reruns_exactly_the_stages_below_it(tiny_run):
    work, config = tiny_run["work"], tiny_run["config"]
    assert planned_jobs(work, config) == {}
    # with each model its training curves (report_training), with each method's answers its
    # threshold curve (report_thresholds), and after any job the table of what jobs cost
    autoencoder = {"autoencoder_train": 1, "autoencoder_encode": 2, "report_training": 1}
    # a method's own submission and score, the table, and submission.csv (the best on validation)
    table = {"collect_scores": 1, "chosen_submission": 1, "report_resources": 1, "all": 1}
    classifier = {"classifier_train": 1, "report_training": 1, "classifier_identify": 1, "report_thresholds": 1,
                  "submission": 1, "score": 1, **table}
    # retrieval's answers are also what its candidate gallery shows
    retrieval = {"metric_learning_identify": 1, "report_thresholds": 1, "report_gallery": 1, "submission": 1,
                 "score": 1, **table}
    # and the fused method reads both the embedding's and the local method's (its gallery and
    # reliability follow, and the review page, which shows the fused answers here)
    retrieval_and_fused = {**retrieval, "fused_identify": 1, "report_thresholds": 2, "report_gallery": 2,
                           "report_calibration": 1, "submission": 2, "score": 2, "review_page": 1}
    metric = {"metric_learning_train": 1, "report_training": 1, "metric_learning_embed": 2, **retrieval_and_fused}
    # the local method's answers: its shortlist recall, its new individuals proposed, and the
    # fused method's that reads them; both methods' reliability and gallery
    local_answers = {"local_identify": 1, "local_shortlist_recall": 1, "local_new_individuals": 1,
                     "report_calibration": 2, "fused_identify": 1, "report_gallery": 2, "report_thresholds": 2,
                     "submission": 2, "score": 2, "review_page": 1, **table}
    # the verifier learns from pairs matched as identification matches them, and gives each
    # matched pair its probability (3 chunks of each search's queries)
    local = {"local_verifier_pairs": 3, "local_verifier": 1, "local_match": 6, **local_answers}
    # matching settings: and so does the foreground model, which both read
    matching = {"local_foreground_matches": 3, "local_foreground": 1, **local}
    every_method = {"classifier_identify": 1, "metric_learning_identify": 1, "report_gallery": 3,
                    "local_identify": 1, "local_shortlist_recall": 1, "local_new_individuals": 1,
                    "report_calibration": 2, "fused_identify": 1,
                    "submission": 5, "score": 5, "report_thresholds": 5, "review_page": 1, **table}
    # the local method's keypoints (each split's photos in the tiny run's 3 chunks, then joined)
    # and its matching jobs, in 3 chunks too
    keypoints = {"local_keypoints_chunk": 6, "local_keypoints": 2}
    matching_jobs = {"local_foreground_matches": 3, "local_foreground": 1, "local_verifier_pairs": 3,
                     "local_verifier": 1, "local_match": 6}
    both_models = {"classifier_train": 1, "metric_learning_train": 1, "metric_learning_embed": 2, "report_training": 2}
    assert planned_jobs(work, merged(config, {"classifier": {"head_learning_rate": 0.002}})) == classifier
    assert planned_jobs(work, merged(config, {"metric_learning": {"margin": 0.25}})) == metric
    assert planned_jobs(work, merged(config, {"metric_learning": {"tta_views": 1}})) == {
        "metric_learning_embed": 2, **retrieval_and_fused}
    assert planned_jobs(work, merged(config, {"metric_learning": {"new_whale_thresholds": {"step": 0.05}}})) == {
        "metric_learning_train": 1, "report_training": 1, "metric_learning_embed": 2,
        **retrieval_and_fused}  # also how training scores
    # the keypoints are cached: matching settings reuse them, extraction settings remake them
    assert planned_jobs(work, merged(config, {"local": {"shortlist": 6}})) == matching
    assert planned_jobs(work, merged(config, {"local": {"guided_ratio": 0.8}})) == matching
    assert planned_jobs(work, merged(config, {"local": {"n_features": 120}})) == {**keypoints, **matching}
    # more keypoints found than kept: those kept on the animal, of train and test, are what is matched
    assert planned_jobs(work, merged(config, {"local": {"detected_per_kept": 2}})) == {
        **keypoints, **matching, "local_keypoints_kept": 2}
    # keypoints of the original photos: another cache, read from the photos, not the squares
    assert planned_jobs(work, merged(config, {"local": {"max_side": 64}})) == {**keypoints, **matching}
    assert planned_jobs(work, merged(config, {"foreground": {"negatives": 3}})) == matching
    # unweighted keypoints: no foreground model, and everything that read its weights again
    assert planned_jobs(work, merged(config, {"local": {"foreground": "none"}})) == local
    assert planned_jobs(work, merged(config, {"verifier": {"folds": 3}})) == local
    assert planned_jobs(work, merged(config, {"local": {"new_whale_probabilities": {"step": 0.05}}})) == local_answers
    assert planned_jobs(work, merged(config, {"local": {"new_whale_threshold_on": "validation"}})) == local_answers
    assert planned_jobs(work, merged(config, {"self_training": {"rounds": 2}})) == local_answers
    # the proposal of new individuals is what the review page shows beside each photo
    assert planned_jobs(work, merged(config, {"new_individuals": {"precision": 0.9}})) == {
        "local_new_individuals": 1, "review_page": 1, "report_resources": 1, "all": 1}
    assert planned_jobs(work, merged(config, {"new_individuals": {"propose": False}})) == {
        "review_page": 1, "report_resources": 1, "all": 1}
    assert planned_jobs(work, merged(config, {"fused": {"weights": [0.0, 0.5, 1.0]}})) == {
        "fused_identify": 1, "report_thresholds": 1, "report_calibration": 1, "report_gallery": 1, "submission": 1,
        "score": 1, "review_page": 1, **table}
    assert planned_jobs(work, merged(config, {"encode": {"batch_size": 4}})) == {"autoencoder_encode": 2, **classifier}
    assert planned_jobs(work, merged(config, {"autoencoder": {"learning_rate": 0.002}})) == {
        **classifier, **autoencoder, "report_training": 2}
    # the baseline reads the manifest's hashes, not the images
    assert planned_jobs(work, merged(config, {"preprocess": {"size": 40}})) == {
        "preprocess": 2, "report_preprocessing": 1, **autoencoder, **every_method, **both_models,
        **keypoints, **matching_jobs, "report_training": 3, "submission": 4, "score": 4,
        "report_thresholds": 4}
    # duplicates come first in every method, matched as the baseline chose
    assert planned_jobs(work, merged(config, {"baseline": {"phash_max_distance": 3}})) == {
        "baseline_identify": 1, **every_method}
    # the catalogue (train's individuals and the decided photos), as tables, folders and Wildbook's import
    review_catalogue = {"review_catalogue": 1, "review_catalogue_folders": 1, "review_wildbook": 1}
    assert planned_jobs(work, merged(config, {"validation": {"seed": 5}})) == {
        "validation_split": 1, "report_dataset": 1, "baseline_identify": 1, **matching_jobs, **review_catalogue,
        **both_models, **every_method}
    # ingest settings feed the manifest, which everything reads
    assert planned_jobs(work, merged(config, {"ingest": {"max_pixels": 10**8 + 1}})) == {
        "ingest": 1, "report_dataset": 1, "preprocess": 2, "report_preprocessing": 1, **autoencoder,
        "validation_split": 1, "baseline_identify": 1, **both_models, **every_method, **keypoints,
        **matching_jobs, "report_training": 3, **review_catalogue,
        # the photos' EXIF read again, and the encounters found from it (none in the tiny data)
        "photo_captures": 1, "exif_encounters": 1}


# What the local method's gathering jobs write (its models aside, pickles of scikit-learn's trees:
# what they answer is in the answers).
LOCAL_OUTPUTS = ["local/keypoints/train.npy", "local/keypoints/test.npy", "local/keypoints/train.csv",
                 "local/keypoints/test.csv", "local/foreground/train.npy", "local/foreground/test.npy",
                 "local/foreground/labels.csv",
                 "local/verifier/training_pairs.csv", "local/verifier/reliability.csv",
                 "local/verifier/fold_answers.csv",
                 "local/predictions/validation.csv", "local/predictions/test.csv", "local/new_whale_threshold.csv",
                 "local/shortlists/validation.csv", "local/shortlists/test.csv", "local/pairs/validation.csv",
                 "local/pairs/test.csv", "local/poolings.csv", "local/pseudo_labels.csv", "local/new_individuals.csv"]


@pytest.mark.slow
def test_the_local_method_s_outputs_are_the_same_bytes_in_one_chunk_as_in_three(tiny_run, tmp_path):
    """The tiny run found each split's keypoints, and matched the fit photos (for the foreground
    and the verifier) and each search's queries, in 3 chunks (blocks of 8 queries); in one job
    each, every output of the local method is the same, byte for byte."""
    work = copy_of_run(tiny_run, tmp_path)
    config = merged(tiny_run["config"], {"local": {"chunks": 1}})
    targets = [f"results/{output}" for output in LOCAL_OUTPUTS]
    assert planned_jobs(work, config, "--", *targets) == {
        "local_keypoints_chunk": 2, "local_keypoints": 2, "local_foreground_matches": 1, "local_foreground": 1,
        "local_verifier_pairs": 1, "local_verifier": 1, "local_match": 2, "local_identify": 1,
        "local_new_individuals": 1}
    snakemake(work, "--", *targets, config=config)
    assert sorted(path.name for path in (work / "results" / "local" / "matches" / "test").iterdir()) == [
        "1-of-1.npz", "1-of-3.npz", "2-of-3.npz", "3-of-3.npz"]
    for output in LOCAL_OUTPUTS:
        assert (work / "results" / output).read_bytes() == (tiny_run["results"] / output).read_bytes(), output


@pytest.mark.slow
def test_editing_the_package_reruns_exactly_the_stages_that_run_the_edited_file(tiny_run, tmp_path):
    """Every rule's params carry the digest of the package's files its script runs
    (whaleid.code_digest): an upgrade of whaleid reruns the stages whose code changed, and only
    those. Checked on a copy of the checkout, edited file by file, against a copy of the run."""
    work, config = copy_of_run(tiny_run, tmp_path), tiny_run["config"]
    checkout = tmp_path / "checkout"
    # copied with the files' times, so that the rule scripts are no newer than the run's outputs
    shutil.copytree(REPO, checkout, ignore=shutil.ignore_patterns(
        ".git", ".venv", "results", "resources", ".snakemake", "__pycache__", ".pytest_cache", "tests", "docs"))
    package = checkout / "workflow_scripts" / "whaleid"

    def planned_after_editing(relative: str) -> dict[str, int]:
        path = package / relative
        original = path.read_bytes()
        path.write_bytes(original + b"\n")
        try:
            return planned_jobs(work, config, snakefile=checkout / "Snakefile")
        finally:
            path.write_bytes(original)

    assert planned_jobs(work, config, snakefile=checkout / "Snakefile") == {}  # the copy alone reruns nothing
    # the verifier's module runs where the verifier learns and where it scores: as a verifier setting
    assert planned_after_editing("methods/local/verifier.py") == {
        "local_verifier_pairs": 3, "local_verifier": 1, "local_match": 6, "local_identify": 1,
        "local_shortlist_recall": 1, "local_new_individuals": 1,
        "report_calibration": 2, "fused_identify": 1, "report_gallery": 2, "report_thresholds": 2, "submission": 2,
        "score": 2, "review_page": 1, "collect_scores": 1, "chosen_submission": 1, "report_resources": 1, "all": 1}
    # the gallery page's module: the galleries, and the table of what jobs cost that follows any job
    assert planned_after_editing("review/gallery.py") == {"report_gallery": 3, "report_resources": 1, "all": 1}
    # the review page's script, which its template inlines: that page alone
    assert planned_after_editing("review/templates/review_page.js") == {"review_page": 1, "report_resources": 1,
                                                                        "all": 1}
    # the demo generator: no stage of a run on given data runs it
    assert planned_after_editing("demo/scenes.py") == {}


@pytest.mark.slow
def test_the_local_new_whale_threshold_chosen_on_fit_folds_reads_no_validation_answer(tiny_run, tmp_path):
    """On the fit photos' out-of-fold answers (the default), the local method's new_whale threshold
    of each pooling is the same whoever each validation photo is: their truths shuffled among
    them, which moves validation's own curve, moves none of them. (Which pooling answers is
    still validation's choice.)"""
    from whaleid.identification.fold_threshold import read_fold_answers
    from whaleid.io.files import read_columns
    from whaleid.methods.local.identify import identify
    from whaleid.methods.local.verifier import Verifier

    results = tiny_run["results"]
    split = pd.read_csv(results / "validation/split.csv", dtype=str, keep_default_na=False)
    validation = np.flatnonzero(split["subset"] == "validation")
    shuffled = split.copy()
    shuffled.loc[validation, "truth"] = np.random.default_rng(0).permutation(split.loc[validation, "truth"].to_numpy())
    assert (shuffled["truth"] != split["truth"]).sum() > len(validation) // 2
    shuffled.to_csv(tmp_path / "split.csv", index=False)
    pairs = {search: [read_columns(path) for path in sorted((results / "local/matches" / search).glob("*.npz"))]
             for search in ("validation", "test")}

    def identified(split_csv, fold_answers):
        return identify(pairs, results / "local/keypoints/train.csv", results / "local/keypoints/test.csv", split_csv,
                        results / "ingest/manifest.csv", scoring="verifier",
                        verifier=Verifier.load(results / "local/verifier/model.joblib"), phash_distances=[0, 4],
                        thresholds=list(np.linspace(0, 1, 51)),
                        threshold_on="validation" if fold_answers is None else "fit_folds", fold_answers=fold_answers)

    answers = read_fold_answers(results / "local/verifier/fold_answers.csv")
    given = identified(results / "validation/split.csv", answers)
    scrambled = identified(tmp_path / "split.csv", answers)
    by_pooling = ["pooling", "threshold", "fold_map5"]
    pd.testing.assert_frame_equal(given.poolings[by_pooling], scrambled.poolings[by_pooling])
    assert given.chosen == given.poolings.loc[given.poolings["chosen"], "threshold"].iloc[0]
    # what it was chosen on is the best of the out-of-fold curve, drawn beside validation's
    assert given.curve.loc[given.curve["chosen"], "fold_map5"].iloc[0] == given.curve["fold_map5"].max()
    # the check: validation's own choice reads whose each photo is
    on_validation = identified(results / "validation/split.csv", None)
    assert not on_validation.curve["map5"].equals(identified(tmp_path / "split.csv", None).curve["map5"])
    # and the run itself chose it so, and said so
    log = (results / "logs/local_identify.log").read_text()
    assert re.search(r"new_whale threshold \S+ chosen on \d+ fit photos' out-of-fold answers", log), log[-2000:]
    assert "fold_map5" in pd.read_csv(results / "local/poolings.csv").columns


def copy_of_run(tiny_run, tmp_path: Path) -> Path:
    """The tiny run's working folder copied, Snakemake's records and the files' times with it: a
    test that changes the run changes its copy, and leaves nothing to put back."""
    work = tmp_path / "work"
    shutil.copytree(tiny_run["work"], work, symlinks=True)
    return work


def first_answers(results: Path, method: str) -> dict[str, str]:
    submission = pd.read_csv(results / method / "submission.csv", dtype=str)
    return dict(zip(submission["Image"], submission["Id"].str.split().str[0]))


@pytest.mark.slow
def test_photos_added_to_the_catalogue_need_no_retraining_and_change_only_their_answers(tiny_run, tmp_path):
    data, work = tiny_run["data"], copy_of_run(tiny_run, tmp_path)
    results = work / "results"
    train = pd.read_csv(data / "train.csv", dtype=str)
    photos = train[train["Id"] != "new_whale"].head(3)
    additions = tmp_path / "additions"
    (additions / "train").mkdir(parents=True)
    for image in photos["Image"]:
        (additions / "train" / image).write_bytes((data / "train" / image).read_bytes())
    photos.assign(Id="w_added").to_csv(additions / "train.csv", index=False)
    config = merged(tiny_run["config"], {"metric_learning": {"catalogue_additions": str(additions)}})
    assert planned_jobs(work, config) == {"metric_learning_additions": 1, "metric_learning_identify": 1,
                                          "report_thresholds": 1, "report_gallery": 1, "submission": 1, "score": 1,
                                          "collect_scores": 1, "chosen_submission": 1, "report_resources": 1,
                                          "all": 1}
    before = pd.read_csv(results / "metric_learning" / "predictions" / "test.csv", dtype=str)
    snakemake(work, "--", "results/metric_learning/predictions/test.csv", config=config)
    after = pd.read_csv(results / "metric_learning" / "predictions" / "test.csv", dtype=str)
    assert pd.read_csv(results / "metric_learning" / "additions" / "index.csv")["id"].tolist() == ["w_added"] * 3
    answers = before.merge(after, on="Image", suffixes=("_before", "_after"))
    assert len(answers) == len(before) == len(after)
    mentions = answers["Id_after"].str.split().map(lambda ids: "w_added" in ids)
    assert mentions.any()
    unchanged = answers[~mentions]
    assert (unchanged["Id_before"] == unchanged["Id_after"]).all()


@pytest.mark.slow
@CHROMIUM_SKIP
def test_a_person_reviews_the_page_by_keyboard_and_the_decisions_grow_every_method_s_catalogue(tiny_run, tmp_path):
    work = copy_of_run(tiny_run, tmp_path)
    results = work / "results"
    with open_browser() as browser:
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto((results / "review" / "page.html").as_uri(), wait_until="load")
        sections = page.eval_on_selector_all("section.query", "all => all.map(s => ({...s.dataset}))")
        first, second, third = (section["image"] for section in sections[:3])
        ranked = page.eval_on_selector_all(f'section.query[data-image="{first}"] [data-rank]',
                                           "all => all.map(c => c.dataset.id)")
        key = next(rank for rank, individual in enumerate(ranked, start=1) if individual != "new_whale")
        confirmed = ranked[key - 1]
        # the first photo is the candidate of that key, the second someone new, the third the same new one
        for pressed in (str(key), "n", "s"):
            page.keyboard.press(pressed)
        new_id = "new-" + Path(second).stem
        expected = {first: ("confirmed", confirmed), second: ("new", new_id), third: ("new", new_id)}
        page.reload(wait_until="load")
        kept = {s["image"]: (s["decision"], s["decidedId"], s["by"])
                for s in page.eval_on_selector_all("section.query", "all => all.map(s => ({...s.dataset}))")}
        assert {image: kept[image][:2] for image in expected} == expected
        with page.expect_download() as download:
            page.keyboard.press("e")
        decisions = tmp_path / "decisions.csv"
        download.value.save_as(decisions)
        context.close()
    assert errors == []
    exported = pd.read_csv(decisions, dtype=str, keep_default_na=False)
    assert exported.columns.tolist() == ["Image", "decision", "Id", "by"]
    by_person = exported[exported["by"] == "person"]
    assert {row.Image: (row.decision, row.Id) for row in by_person.itertuples()} == expected
    # the rank-1 answers accepted at the precision asked for come with them, marked as such
    queue = pd.read_csv(results / "review" / "queue.csv", dtype=str, keep_default_na=False)
    accepted = queue[queue["accepted"] == "True"].set_index("image")["answer"]
    auto = exported[exported["by"] == "auto"].set_index("Image")["Id"]
    assert auto.to_dict() == accepted.drop(list(expected), errors="ignore").to_dict()

    config = merged(tiny_run["config"], {"review": {"decisions": str(decisions)}})
    answers = {"submission": 5, "score": 5, "report_thresholds": 5, "collect_scores": 1, "chosen_submission": 1,
               "report_resources": 1, "all": 1}
    # the stages that read the catalogue, and those after them: nothing is trained or extracted again
    assert planned_jobs(work, config) == {
        "review_catalogue": 1, "baseline_identify": 1, "classifier_identify": 1, "metric_learning_identify": 1,
        "local_match": 6, "local_identify": 1, "fused_identify": 1, "local_shortlist_recall": 1,
        "local_new_individuals": 1, "report_calibration": 2, "report_gallery": 3, "review_page": 1,
        "review_catalogue_folders": 1, "review_wildbook": 1, **answers}
    snakemake(work, "--", *(f"results/{method}/submission.csv" for method in METHODS), "results/review/page.html",
              "results/review/catalogue", config=config)
    catalogue = pd.read_csv(results / "review" / "catalogue.csv", dtype=str, keep_default_na=False)
    reviewed = catalogue[catalogue["split"] == "test"].set_index("image")
    assert {image: (reviewed.loc[image, "decision"], reviewed.loc[image, "id"]) for image in expected} == expected
    assert len(reviewed) == len(expected) + len(auto)
    individuals = pd.read_csv(results / "review" / "individuals.csv", dtype=str).set_index("id")
    assert individuals.loc[new_id, "images"].split() == [second, third]
    # and as a folder per individual, next season's catalogue: the new individual's with its two photos
    assert sorted(os.listdir(results / "review" / "catalogue" / new_id)) == sorted([second, third])
    assert len(list((results / "review" / "catalogue").glob("*/*"))) == len(catalogue)
    # every method answers the decided photos with their ids first, and answers from them
    for method in METHODS:
        answered = first_answers(results, method)
        assert {image: answered[image] for image in expected} == {image: i for image, (_, i) in expected.items()}
    # decided photos are not asked again
    asked = pd.read_csv(results / "review" / "queue.csv", dtype=str)["image"]
    assert not set(asked) & set(exported["Image"])

    # a wrong row stops the run before any method reads the decisions, naming the file and line
    predictions = {method: (results / method / "predictions" / "test.csv").read_bytes() for method in METHODS}
    broken = tmp_path / "broken.csv"
    broken.write_text(decisions.read_text() + "no_such_photo.jpg,confirmed,w_x,person\n")
    failed = snakemake(work, config=merged(config, {"review": {"decisions": str(broken)}}), check=False)
    assert failed.returncode != 0
    message = (results / "logs" / "review_catalogue.log").read_text()
    assert f"{broken}, line {len(exported) + 2}: 'no_such_photo.jpg' is not a test photo of this run" in message
    assert {method: (results / method / "predictions" / "test.csv").read_bytes() for method in METHODS} == predictions


@pytest.mark.slow
def test_demo_dataset_is_generated_when_data_dir_is_the_demo(tmp_path):
    # The baseline alone: every other method runs on a generated dataset in tiny_run.
    methods = ["baseline"]
    config = merged(TINY, {"demo": {"n_individuals": 12, "n_train_images": 40, "n_test_images": 15,
                                    "max_side": 96, "seed": 3}, "methods": methods})
    # the scores only: the report's pages are the tiny run's to check
    snakemake(tmp_path, "--", "results/scores.csv", config=config)
    demo = tmp_path / "resources" / "demo_data"
    assert len(list((demo / "train").glob("*.jpg"))) == 40
    scores = pd.read_csv(tmp_path / "results" / "scores.csv")
    assert sorted(zip(scores["method"], scores["split"])) == sorted(
        (method, split) for method in methods for split in ("test", "validation"))


@pytest.mark.slow
def test_a_catalogue_of_mostly_one_photo_per_individual_runs_every_method_and_says_what_it_could_not_learn(tmp_path):
    """1.2 photos per named individual (a new photo-ID project; Kaggle's skew is 2.1): once the
    validation split holds photos out, no individual has two fit photos, and nothing learned
    from pairs of one individual can be learned. Every method still answers."""
    from whaleid.demo.dataset import generate_demo_dataset

    data = tmp_path / "data"
    generate_demo_dataset(data, n_individuals=40, n_train_images=52, n_test_images=30, max_side=160, seed=7)
    counts = pd.read_csv(data / "train.csv").query("Id != 'new_whale'")["Id"].value_counts()
    assert 1.1 <= counts.mean() <= 1.3
    work = tmp_path / "work"
    work.mkdir()
    snakemake(work, config=merged(TINY, {"data_dir": str(data), "results_dir": "results"}))
    results = work / "results"
    comparison = pd.read_csv(results / "comparison.csv").set_index("method")
    assert sorted(comparison.index) == sorted(METHODS)
    submission = pd.read_csv(results / "submission.csv")
    assert len(submission) == 30 and submission["Id"].str.split().map(len).eq(5).all()
    for log, says in (("local_foreground.log", "foreground NOT LEARNED"),
                      ("local_verifier.log", "verifier NOT LEARNED"),
                      ("local_identify.log", "new_whale threshold NOT chosen on the fit photos' out-of-fold answers"),
                      ("fused_identify.log", "embedding calibration NOT FITTED")):
        assert says in (results / "logs" / log).read_text(), log
    # inliers alone, uncalibrated, still find most of the known individuals
    assert comparison.loc["local", "test_map5"] > comparison.loc["baseline", "test_map5"] + 0.2


def test_config_errors_fail_before_any_job_and_name_the_key(tmp_path):
    bad_key = snakemake(tmp_path, "-n", config=merged(TINY, {"preprocess": {"sise": 64}}), check=False)
    assert bad_key.returncode != 0
    assert "'sise' was unexpected" in bad_key.stderr + bad_key.stdout
    bad_type = snakemake(tmp_path, "-n", config=merged(TINY, {"preprocess": {"size": "big"}}), check=False)
    assert bad_type.returncode != 0 and "['preprocess']['size']" in bad_type.stderr + bad_type.stdout
    missing = snakemake(tmp_path, "-n", config=merged(TINY, {"data_dir": str(tmp_path / "nowhere")}), check=False)
    assert missing.returncode != 0 and "folder not found" in missing.stderr + missing.stdout
    fused_alone = snakemake(tmp_path, "-n", config=merged(TINY, {"methods": ["fused"], "submit": "fused"}),
                            check=False)
    assert fused_alone.returncode != 0 and "add local and metric_learning" in fused_alone.stderr + fused_alone.stdout
    assert not (tmp_path / "results").exists()


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory):
    """A folder in the playground layout (nothing in it is read by a dry run)."""
    folder = tmp_path_factory.mktemp("guards") / "data"
    for sub in ("train", "test"):
        (folder / sub).mkdir(parents=True)
    (folder / "train.csv").write_text("Image,Id\n")
    return folder


GUARDS = {
    "submit names no method that runs": (lambda data: {"methods": ["baseline", "local"], "submit": "classifier"},
                                         "submit='classifier' is neither best nor among methods"),
    "results inside the data folder": (lambda data: {"results_dir": str(data / "results")},
                                       "is inside data_dir"),
    "keras_home inside the data folder": (lambda data: {"keras_home": str(data / "keras")},
                                          "keras_home"),
    "catalogue additions without train.csv": (
        lambda data: {"metric_learning": {"catalogue_additions": str(data / "train")}},
        "catalogue_additions"),
    "threshold grid that stops before it starts": (
        lambda data: {"metric_learning": {"new_whale_thresholds": {"start": 0.5, "stop": 0.1, "step": 0.1}}},
        "config: metric_learning: threshold grid stop 0.1 is below its start 0.5"),
    "data folder without test/": (lambda data: {"data_dir": str(data / "train")}, "train.csv not found"),
    "folders layout without its catalogue": (lambda data: {"data_layout": "folders"},
                                             "catalogue not found; the folders layout's"),
    "new_whale threshold on fold answers the inlier scoring does not make": (
        lambda data: {"local": {"scoring": "inliers"}, "methods": ["baseline", "local"]},
        "set local.new_whale_threshold_on: validation"),
    "self-training without the verifier's probabilities": (
        lambda data: {"local": {"scoring": "inliers", "new_whale_threshold_on": "validation"},
                      "methods": ["baseline", "local"]},
        "set self_training.rounds: 0"),
    "new individuals proposed without the verifier's probabilities": (
        lambda data: {"local": {"scoring": "inliers", "new_whale_threshold_on": "validation"},
                      "self_training": {"rounds": 0}, "methods": ["baseline", "local"]},
        "set new_individuals.propose: false"),
}


def test_no_stage_that_answers_reads_the_test_truth(tmp_path, data_folder):
    """test_truth.csv scores the answers and shows them in the report; no stage that answers, or
    self-trains on its answers, or makes the review page, reads it."""
    data = tmp_path / "data"
    shutil.copytree(data_folder, data)
    (data / "test_truth.csv").write_text("Image,Id\n")
    output = snakemake(tmp_path, "-n", config=merged(TINY, {"data_dir": str(data),
                                                            "results_dir": str(tmp_path / "results")})).stdout
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    input: (.*)$", output, re.MULTILINE)
    assert {rule for rule, inputs in jobs if str(data / "test_truth.csv") in inputs} == {
        "score", "local_shortlist_recall", "report_gallery"}


def test_an_encounters_file_in_the_data_folder_is_read_by_every_method_and_the_review_page(tmp_path, data_folder):
    """The data folder's optional encounters.csv: the stages that answer the test photos, and the
    review page, read it where it is, and only there; without one, those found from the photos'
    EXIF, unless encounters.from_exif is false."""
    data = tmp_path / "data"
    shutil.copytree(data_folder, data)
    readers = {f"{method}_identify" for method in METHODS} | {"review_page", "report_gallery", "review_wildbook"}
    from_exif = tmp_path / "results" / "ingest" / "encounters.csv"

    def reading(config, encounters) -> set[str]:
        output = snakemake(tmp_path, "-n", config=config).stdout
        jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    input: (.*)$", output, re.MULTILINE)
        return {rule for rule, inputs in jobs if str(encounters) in inputs}

    config = merged(TINY, {"data_dir": str(data), "results_dir": str(tmp_path / "results")})
    assert reading(config, from_exif) == readers
    assert reading(merged(config, {"encounters": {"from_exif": False}}), from_exif) == set()
    (data / "encounters.csv").write_text("Image,Encounter\n")
    assert reading(config, data / "encounters.csv") == readers
    assert "exif_encounters" not in snakemake(tmp_path, "-n", config=config).stdout


@pytest.mark.parametrize("guard", list(GUARDS))
def test_each_config_guard_stops_the_run_before_any_job_and_says_why(tmp_path, data_folder, guard):
    changes, message = GUARDS[guard]
    config = merged(TINY, {"data_dir": str(data_folder), "results_dir": str(tmp_path / "results")},
                    changes(data_folder))
    result = snakemake(tmp_path, "-n", config=config, check=False)
    assert result.returncode != 0 and message in result.stdout + result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "results").exists() and not (data_folder / "results").exists()


@pytest.mark.parametrize("presets", [[], ["cpu.yaml"], ["cpu.yaml", "demo.yaml"]], ids=["gpu defaults", "cpu", "demo"])
def test_the_defaults_and_the_presets_plan_a_whole_run(presets, tmp_path):
    configfiles = ["--configfile", *(str(REPO / "presets" / preset) for preset in presets)] if presets else []
    result = subprocess.run([SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path), "-n",
                             "--cores", "1", *configfiles], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "metric_learning_train" in result.stdout and "classifier_train" in result.stdout
    # config.yaml's defaults start both models from ImageNet weights, staged on the submit host;
    # the presets, for a CPU without internet, download nothing
    assert ("stage_weights" in result.stdout) == (not presets)


def test_lint_is_clean():
    result = subprocess.run([SNAKEMAKE, "--lint", "--snakefile", str(REPO / "Snakefile")], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_snakefile_imports_nothing_heavy():
    sources = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
    for source in sources:
        text = source.read_text()
        for heavy in ("tensorflow", "keras", "cv2", "pandas", "numpy"):
            assert not re.search(rf"^\s*(import|from)\s+{heavy}\b", text, re.MULTILINE), (source, heavy)
        # Of the package, only the standard-library-only modules (test_weights.py checks them).
        assert set(re.findall(r"^\s*(?:import|from)\s+(whaleid[\w.]*)", text, re.MULTILINE)) <= {
            "whaleid.learning.pretrained", "whaleid.settings", "whaleid.vocabulary", "whaleid.code_digest",
            "whaleid.reproducibility"}, source


# ../shared/data/right_whale (1,249 train and 1,746 test photos of real right whales), at what a
# CI run affords: the local method at the photos' own 224 pixels but fewer keypoints, a shorter
# shortlist, and a verifier and a foreground model that ask fewer fit photos than config.yaml's,
# the models tiny (the embedding one epoch: a second reached no more). Each method's floor is a
# little below what this config reached when it was set (test MAP@5 baseline 0.2198, classifier
# 0.2157, metric_learning 0.2154, local 0.4280, fused 0.4253), so that a regression of any method
# fails CI; the README gives what presets/cpu.yaml reaches. The classifier on MobileNetV2 here:
# on 3,000 photos VGG19's compute outweighs its faster start.
RIGHT_WHALE_CI = merged(TINY, {"preprocess": {"size": 224},
                               "classifier": {"backbone": "mobilenetv2", "input": "images", "batch_size": 32},
                               "metric_learning": {"input_size": 48, "epochs": 1, "batch_size": 32, "tta_views": 1},
                               "local": {"image_size": 224, "n_features": 150, "shortlist": 5,
                                         "photos_per_individual": 2},
                               "verifier": {"max_queries": 150}, "foreground": {"max_queries": 300}})
# local and fused at 0.40: the same commit (db28544) reached local 0.408 on another x86 machine
# (issue 29's item 6: two processors diverge), so 0.41 failed on code that had not changed.
FLOORS = {"baseline": 0.2188, "classifier": 0.20, "metric_learning": 0.20, "local": 0.40, "fused": 0.40}


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.skipif(not RIGHT_WHALE.is_dir(), reason="../shared/data/right_whale is not here")
def test_every_method_on_real_photos_clears_its_floor(tmp_path):
    config = merged(RIGHT_WHALE_CI, {"data_dir": str(RIGHT_WHALE), "results_dir": "results"})
    # the scores alone: the report's pages are the tiny run's to check, and cost a minute here
    snakemake(tmp_path, "--", "results/scores.csv", config=config)
    scores = pd.read_csv(tmp_path / "results" / "scores.csv").set_index(["method", "split"])
    truth = pd.read_csv(RIGHT_WHALE / "test_truth.csv", dtype=str)
    sample = pd.read_csv(RIGHT_WHALE / "sample_submission.csv", dtype=str)
    sample_answers = dict(zip(sample["Image"], sample["Id"].str.split()))
    sample_score = map_at_5([sample_answers[i] for i in truth["Image"]], truth["Id"].tolist())
    assert sample_score == pytest.approx(0.21884, abs=1e-4)
    assert scores.loc[("baseline", "test"), "map5"] >= sample_score
    reached = {method: round(float(scores.loc[(method, "test"), "map5"]), 4) for method in METHODS}
    assert all(reached[method] >= floor for method, floor in FLOORS.items()), reached
    assert (scores.xs("test", level="split")["n_images"] == len(truth)).all()
