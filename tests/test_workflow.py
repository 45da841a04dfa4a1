"""The workflow run end to end by Snakemake on small generated data."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, RIGHT_WHALE

from whaleid.metrics import map_at_5

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TINY = {"preprocess": {"size": 32, "chunk_size": 16, "threads": 2}, "ingest": {"threads": 2},
        "autoencoder": {"epochs": 1, "batch_size": 8, "threads": 2}, "encode": {"chunk_size": 32},
        "classifier": {"backbone": "mobilenetv2", "weights": "none", "input_size": 32, "head_epochs": 1,
                       "fine_tune_epochs": 1, "batch_size": 8, "threads": 2},
        "metric_learning": {"width": 4, "input_size": 32, "embedding_size": 16, "epochs": 2, "batch_size": 8,
                            "tta_views": 2, "threads": 2},
        "local": {"image_size": 128, "n_features": 150, "threads": 2},
        "report": {"gallery_size": 4}}
METHODS = ("baseline", "classifier", "metric_learning", "local", "fused")


def snakemake(workdir: Path, *args: str, config: dict | None = None, check: bool = True,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the workflow of this checkout with `workdir` as its working directory, in `env`
    (default: this process's environment)."""
    # Only the settings that differ: Snakemake merges them over the checkout's config.yaml.
    configfile = workdir / "test_config.yaml"
    configfile.write_text(yaml.safe_dump(config or TINY))
    command = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--cores", "2", "--configfile", str(configfile), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def planned_jobs(workdir: Path, config: dict, *extra: str) -> dict[str, int]:
    """The rules `snakemake -n` would run, with their job counts, from its 'Job stats' table."""
    output = snakemake(workdir, "-n", *extra, config=config).stdout
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
    assert (results / "submission.csv").read_bytes() == (results / "submissions" / f"{chosen}.csv").read_bytes()
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
    for stage in ["ingest", "validation_split", "baseline", "collect_scores", "preprocess/train",
                  "preprocess/test", "train_autoencoder", "encode/train", "encode/test",
                  "train_classifier", "predict_classifier", "submission/baseline", "score/baseline",
                  "submission/classifier", "score/classifier", "train_embedding", "embed/train", "embed/test",
                  "identify_by_retrieval", "submission/metric_learning", "score/metric_learning", "candidate_gallery",
                  "extract_local_features/train", "extract_local_features/test", "identify_by_local_features",
                  "submission/local", "score/local", "fuse_rankings", "submission/fused", "score/fused"]:
        assert (results / "logs" / f"{stage}.log").is_file(), stage
        assert (results / "benchmarks" / f"{stage}.tsv").is_file(), stage
    cache = results / "preprocess" / "train.npy"
    index = pd.read_csv(results / "preprocess" / "train.csv")
    assert np.load(cache, mmap_mode="r").shape == (len(index), 32, 32)
    codes = np.load(results / "codes" / "train.npy", mmap_mode="r")
    assert codes.shape == (len(index), 8, 8, 3) and codes.dtype == np.float16
    assert pd.read_csv(results / "codes" / "train.csv")["image"].tolist() == index["image"].tolist()
    history = pd.read_csv(results / "autoencoder" / "history.csv")
    assert history["epoch"].tolist() == [0] and np.isfinite(history["loss"]).all()
    assert (results / "autoencoder" / "reconstructions.png").stat().st_size > 0
    assert not (results / "autoencoder_backup").exists()  # a finished run leaves no backup
    embeddings = np.load(results / "embeddings" / "train.npy")
    assert embeddings.shape == (len(index), 16)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-4)
    assert pd.read_csv(results / "metric_learning" / "history.csv")["epoch"].tolist() == [0, 1]
    assert pd.read_csv(results / "metric_learning" / "new_whale_threshold.csv")["chosen"].sum() == 1
    assert not (results / "metric_learning_backup").exists()
    keypoints = np.load(results / "local_features" / "train.npy", mmap_mode="r")
    assert keypoints.shape == (len(index), 150) and set(keypoints.dtype.names) == {"xy", "descriptor"}
    assert (~np.isnan(keypoints["xy"][:, :, 0])).sum(axis=1).mean() > 10  # keypoints found on 32-pixel squares
    shortlists = pd.read_csv(results / "local" / "shortlists" / "test.csv")
    assert set(shortlists["image"]) <= set(pd.read_csv(results / "local_features" / "test.csv")["image"])
    assert (shortlists.groupby("image")["rank"].max() < 10).all()  # the configured shortlist of 10
    weights = pd.read_csv(results / "fused" / "weights.csv")
    assert weights["chosen"].sum() == 1 and weights["weight"].tolist() == pytest.approx([i / 10 for i in range(11)])


@pytest.mark.slow
def test_input_folder_is_unchanged_by_a_run(tiny_run):
    assert folder_digest(tiny_run["data"]) == tiny_run["before"]


# What `snakemake --report` takes from a run of TINY (every method, the classifier on codes):
# each output flagged report(...) in rules/, under the name the report shows.
REPORTED = ["comparison.csv", "reconstructions.png", "dataset.png", "dataset.csv", "preprocessing.png",
            "autoencoder.png", "classifier.png", "metric_learning.png", "baseline.png", "classifier.png",
            "metric_learning.png", "local.png", "fused.png", "metric_learning_best_hits.html",
            "metric_learning_worst_misses.html",
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
    for category in ["Data", "Preprocessing", "Autoencoder", "Training", "Thresholds", "Comparison",
                     "Candidate gallery", "Resources"]:
        assert category in html, category


@pytest.mark.slow
def test_changing_one_setting_reruns_exactly_the_stages_below_it(tiny_run):
    work, config = tiny_run["work"], tiny_run["config"]
    assert planned_jobs(work, config) == {}
    # with each model its training curves (report_training), with each method's answers its
    # threshold curve (report_thresholds), and after any job the table of what jobs cost
    autoencoder = {"train_autoencoder": 1, "encode": 2, "report_training": 1}
    # a method's own submission and score, the table, and submission.csv (the best on validation)
    table = {"collect_scores": 1, "chosen_submission": 1, "report_resources": 1, "all": 1}
    classifier = {"train_classifier": 1, "report_training": 1, "predict_classifier": 1, "report_thresholds": 1,
                  "submission": 1, "score": 1, **table}
    # retrieval's answers are also what the candidate gallery shows
    retrieval = {"identify_by_retrieval": 1, "report_thresholds": 1, "candidate_gallery": 1, "submission": 1,
                 "score": 1, **table}
    # and the fused method reads both the embedding's and the local method's
    retrieval_and_fused = {**retrieval, "fuse_rankings": 1, "report_thresholds": 2, "submission": 2, "score": 2}
    metric = {"train_embedding": 1, "report_training": 1, "embed": 2, **retrieval_and_fused}
    local = {"identify_by_local_features": 1, "fuse_rankings": 1, "report_thresholds": 2, "submission": 2,
             "score": 2, **table}
    every_method = {"predict_classifier": 1, "identify_by_retrieval": 1, "candidate_gallery": 1,
                    "identify_by_local_features": 1, "fuse_rankings": 1, "submission": 5, "score": 5,
                    "report_thresholds": 5, **table}
    both_models = {"train_classifier": 1, "train_embedding": 1, "embed": 2, "report_training": 2}
    assert planned_jobs(work, merged(config, {"classifier": {"head_learning_rate": 0.002}})) == classifier
    assert planned_jobs(work, merged(config, {"metric_learning": {"margin": 0.25}})) == metric
    assert planned_jobs(work, merged(config, {"metric_learning": {"tta_views": 1}})) == {
        "embed": 2, **retrieval_and_fused}
    assert planned_jobs(work, merged(config, {"metric_learning": {"new_whale_thresholds": {"step": 0.05}}})) == {
        "train_embedding": 1, "report_training": 1, "embed": 2, **retrieval_and_fused}  # also how training scores
    # the keypoints are cached: matching settings reuse them, extraction settings remake them
    assert planned_jobs(work, merged(config, {"local": {"shortlist": 6}})) == local
    assert planned_jobs(work, merged(config, {"local": {"n_features": 120}})) == {"extract_local_features": 2, **local}
    assert planned_jobs(work, merged(config, {"fused": {"half_inliers": 5}})) == {
        "fuse_rankings": 1, "report_thresholds": 1, "submission": 1, "score": 1, **table}
    assert planned_jobs(work, merged(config, {"encode": {"batch_size": 4}})) == {"encode": 2, **classifier}
    assert planned_jobs(work, merged(config, {"autoencoder": {"learning_rate": 0.002}})) == {
        **classifier, **autoencoder, "report_training": 2}
    # the baseline reads the manifest's hashes, not the images
    assert planned_jobs(work, merged(config, {"preprocess": {"size": 40}})) == {
        "preprocess": 2, "report_preprocessing": 1, **autoencoder, **every_method, **both_models,
        "extract_local_features": 2, "report_training": 3, "submission": 4, "score": 4, "report_thresholds": 4}
    # duplicates come first in every method, matched as the baseline chose
    assert planned_jobs(work, merged(config, {"baseline": {"phash_max_distance": 3}})) == {
        "baseline": 1, **every_method}
    assert planned_jobs(work, merged(config, {"validation": {"seed": 5}})) == {
        "validation_split": 1, "report_dataset": 1, "baseline": 1, **both_models, **every_method}
    # ingest settings feed the manifest, which everything reads
    assert planned_jobs(work, merged(config, {"ingest": {"max_pixels": 10**8 + 1}})) == {
        "ingest": 1, "report_dataset": 1, "preprocess": 2, "report_preprocessing": 1, **autoencoder,
        "validation_split": 1, "baseline": 1, **both_models, **every_method, "extract_local_features": 2,
        "report_training": 3}


@pytest.mark.slow
def test_photos_added_to_the_catalogue_need_no_retraining_and_change_only_their_answers(tiny_run, tmp_path):
    data, work, results = tiny_run["data"], tiny_run["work"], tiny_run["results"]
    train = pd.read_csv(data / "train.csv", dtype=str)
    photos = train[train["Id"] != "new_whale"].head(3)
    additions = tmp_path / "additions"
    (additions / "train").mkdir(parents=True)
    for image in photos["Image"]:
        (additions / "train" / image).write_bytes((data / "train" / image).read_bytes())
    photos.assign(Id="w_added").to_csv(additions / "train.csv", index=False)
    config = merged(tiny_run["config"], {"metric_learning": {"catalogue_additions": str(additions)}})
    assert planned_jobs(work, config) == {"add_to_catalogue": 1, "identify_by_retrieval": 1, "report_thresholds": 1,
                                          "candidate_gallery": 1, "submission": 1, "score": 1, "collect_scores": 1,
                                          "chosen_submission": 1, "report_resources": 1, "all": 1}
    before = pd.read_csv(results / "predictions" / "metric_learning" / "test.csv", dtype=str)
    try:
        snakemake(work, config=config)
        after = pd.read_csv(results / "predictions" / "metric_learning" / "test.csv", dtype=str)
        assert pd.read_csv(results / "catalogue" / "additions.csv")["id"].tolist() == ["w_added"] * 3
    finally:
        snakemake(work, config=tiny_run["config"])  # put the run back as the other tests expect it
    answers = before.merge(after, on="Image", suffixes=("_before", "_after"))
    assert len(answers) == len(before) == len(after)
    mentions = answers["Id_after"].str.split().map(lambda ids: "w_added" in ids)
    assert mentions.any()
    unchanged = answers[~mentions]
    assert (unchanged["Id_before"] == unchanged["Id_after"]).all()


@pytest.mark.slow
def test_demo_dataset_is_generated_when_data_dir_is_the_demo(tmp_path):
    config = merged(TINY, {"demo": {"n_individuals": 12, "n_train_images": 40, "n_test_images": 15,
                                    "max_side": 96, "seed": 3}})
    snakemake(tmp_path, config=config)
    demo = tmp_path / "resources" / "demo_data"
    assert len(list((demo / "train").glob("*.jpg"))) == 40
    scores = pd.read_csv(tmp_path / "results" / "scores.csv")
    assert sorted(zip(scores["method"], scores["split"])) == sorted(
        (method, split) for method in METHODS for split in ("test", "validation"))


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


@pytest.mark.parametrize("preset", ["demo.yaml", "cpu.yaml"])
def test_presets_are_valid_settings(preset, tmp_path):
    result = subprocess.run([SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path), "-n",
                             "--cores", "1", "--configfile", str(REPO / "presets" / preset)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "train_embedding" in result.stdout and "train_classifier" in result.stdout


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
        # Of the package, only the standard-library-only whaleid.pretrained (test_weights.py checks it).
        assert set(re.findall(r"^\s*(?:import|from)\s+(whaleid[\w.]*)", text, re.MULTILINE)) <= {"whaleid.pretrained"}, source


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.skipif(not RIGHT_WHALE.is_dir(), reason="../shared/data/right_whale is not here")
def test_baseline_on_real_photos_beats_the_sample_submission(tmp_path):
    config = merged(TINY, {"data_dir": str(RIGHT_WHALE), "results_dir": "results"})
    snakemake(tmp_path, config=config)
    scores = pd.read_csv(tmp_path / "results" / "scores.csv").set_index(["method", "split"])
    truth = pd.read_csv(RIGHT_WHALE / "test_truth.csv", dtype=str)
    sample = pd.read_csv(RIGHT_WHALE / "sample_submission.csv", dtype=str)
    sample_answers = dict(zip(sample["Image"], sample["Id"].str.split()))
    sample_score = map_at_5([sample_answers[i] for i in truth["Image"]], truth["Id"].tolist())
    assert sample_score == pytest.approx(0.21884, abs=1e-4)
    assert scores.loc[("baseline", "test"), "map5"] >= sample_score
    assert scores.loc[("baseline", "test"), "n_images"] == len(truth)
    for method in ("classifier", "metric_learning", "local", "fused"):
        assert scores.loc[(method, "test"), "n_images"] == len(truth)
