"""ImageNet weights staged on the submit host (rule stage_weights) for GPU nodes without internet."""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
import sys
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from conftest import REPO
from test_workflow import TINY, merged, planned_jobs, snakemake

from whaleid.demo.dataset import generate_demo_dataset
from whaleid.learning import autoencoder, backbones, pretrained
from whaleid.methods import classifier as clf

MOBILENET_224 = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
VGG19 = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"


def save_like_keras_applications(model: keras.Model, path: Path) -> None:
    """`model`'s weights in the legacy .h5 layout of the files keras.applications downloads."""
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as file:
        save_weights_to_hdf5_group(file, model)


def test_the_modules_the_snakefile_imports_bring_no_heavy_library():
    # As rules/common.smk does: import both, and build (and so check) every stage's settings.
    check = ("import sys; import whaleid.learning.pretrained, whaleid.vocabulary, whaleid.code_digest, "
             "whaleid.reproducibility, whaleid.settings as s; "
             "[kind.defaults() for kind in (s.AutoencoderSettings, s.ClassifierSettings, s.MetricLearningSettings, "
             "s.KeypointSettings, s.MatchSettings)]; "
             "print(sorted(m for m in ('numpy', 'pandas', 'cv2', 'keras', 'tensorflow') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", check], cwd=REPO / "workflow_scripts", capture_output=True,
                            text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_the_side_the_backbone_sees_is_worked_out_as_the_models_do():
    assert pretrained.CODE_REDUCTION == autoencoder.REDUCTION
    assert pretrained.array_side("codes", 896) == 224 and pretrained.array_side("images", 896) == 896
    assert pretrained.backbone_side(224, None) == 224 and pretrained.backbone_side(8, 96) == 96
    model = clf.build_classifier((8, 8, 3), 3, backbone="mobilenetv2", weights=None, scale=[1, 1, 1],
                                 input_size=96, dropout=0.5, augment=False, flip=False, seed=0)
    assert tuple(model.get_layer("base").input.shape[1:3]) == (pretrained.backbone_side(8, 96),) * 2
    # the names the Snakefile asks for are those the models fetch
    assert backbones.imagenet_weights is pretrained.imagenet_weights
    assert pretrained.imagenet_weights("mobilenetv2", 96).file_name.endswith("_1.0_96_no_top.h5")
    assert pretrained.imagenet_weights("mobilenetv2", 32).file_name == MOBILENET_224


def test_the_keras_cache_is_keras_home_or_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert pretrained.keras_models_dir() == tmp_path / "home" / ".keras" / "models"
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "elsewhere"))
    assert pretrained.keras_models_dir() == tmp_path / "elsewhere" / "models"


def test_staging_copies_from_the_keras_cache_and_training_then_loads_it_offline(offline, tmp_path, monkeypatch):
    # `offline`: no network, and KERAS_HOME (the user's own Keras cache) at tmp_path/keras
    keras.utils.set_random_seed(5)
    made = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    save_like_keras_applications(made, offline / MOBILENET_224)
    staged = pretrained.stage_imagenet_weights("mobilenetv2", 32, tmp_path / "staged")
    assert staged == tmp_path / "staged" / "models" / MOBILENET_224
    assert staged.read_bytes() == (offline / MOBILENET_224).read_bytes()
    assert [p.name for p in staged.parent.iterdir()] == [MOBILENET_224]  # no temporary file left

    (offline / MOBILENET_224).unlink()  # only the staged copy is left to find
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "staged"))  # what start_tensorflow_job sets
    loaded = backbones.build_backbone("mobilenetv2", "imagenet", (32, 32, 3))
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), made.get_weights()))


def test_nothing_cached_and_offline_says_what_to_download_and_where(offline, tmp_path):
    with pytest.raises(pretrained.MissingWeightsError) as caught:
        pretrained.stage_imagenet_weights("resnet50", 224, tmp_path / "staged")
    message = str(caught.value)
    name = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert f"download https://storage.googleapis.com/tensorflow/keras-applications/resnet/{name}" in message
    assert f"named {name}, in {tmp_path / 'staged' / 'models'}/" in message
    assert "Network is unreachable" in message
    assert not list((tmp_path / "staged" / "models").iterdir())  # no partial file left behind


def test_a_cached_file_with_the_wrong_md5_is_refused(offline, tmp_path):
    offline.mkdir(parents=True)
    (offline / VGG19).write_bytes(b"half a download")
    with pytest.raises(pretrained.MissingWeightsError) as caught:
        pretrained.stage_imagenet_weights("vgg19", 224, tmp_path / "staged")
    message = str(caught.value)
    actual = hashlib.md5(b"half a download").hexdigest()
    assert f"{offline / VGG19}, but its MD5 is {actual}, not 253f8cb515780f3b799900260a226db6" in message
    assert f"named {VGG19}, in {tmp_path / 'staged' / 'models'}/" in message
    assert not list((tmp_path / "staged" / "models").iterdir())


def test_a_download_is_checked_before_it_takes_the_final_name(offline, tmp_path, monkeypatch, caplog):
    offline.mkdir(parents=True)
    (offline / VGG19).write_bytes(b"another file")
    served = {"bytes": b"not the weights"}
    monkeypatch.setattr(pretrained, "_download", lambda url, path, timeout: path.write_bytes(served["bytes"]))
    with pytest.raises(pretrained.MissingWeightsError, match=r"downloaded from https://\S+/vgg19_weights\S+ was "
                                                             r"refused: its MD5 is [0-9a-f]{32}, not 253f8cb5"):
        pretrained.stage_imagenet_weights("vgg19", 224, tmp_path / "staged")
    assert not list((tmp_path / "staged" / "models").iterdir())

    # without an MD5 (MobileNetV2), what is not HDF5 (a proxy's error page) is refused too
    served["bytes"] = b"<html>Sign in to the network</html>"
    with pytest.raises(pretrained.MissingWeightsError, match="not an HDF5 file"):
        pretrained.stage_imagenet_weights("mobilenetv2", 32, tmp_path / "staged")
    assert not (tmp_path / "staged" / "models" / MOBILENET_224).exists()

    # a download that matches its MD5 is staged, the mismatched cached file left alone
    served["bytes"] = b"the real weights"
    real = pretrained.ImagenetWeights(VGG19, pretrained.imagenet_weights("vgg19", 224).url,
                                      hashlib.md5(b"the real weights").hexdigest())
    monkeypatch.setattr(pretrained, "imagenet_weights", lambda backbone, side: real)
    with caplog.at_level(logging.WARNING, logger="whaleid.learning.pretrained"):
        staged = pretrained.stage_imagenet_weights("vgg19", 224, tmp_path / "staged")
    assert staged.read_bytes() == b"the real weights" and (offline / VGG19).read_bytes() == b"another file"
    assert "not copying" in caplog.text


def planned(work: Path, config: dict) -> tuple[dict[str, int], str]:
    """`snakemake -n`'s job counts and the inputs of its classifier_train job ("" if none)."""
    output = snakemake(work, "-n", config=config).stdout
    jobs = {rule: int(count) for rule, count in
            re.findall(r"^(\w+)\s+(\d+)$", output.split("Job stats:", 1)[1], re.MULTILINE) if rule != "total"}
    inputs = re.search(r"rule classifier_train:\n\s+input: (.*)", output)
    return jobs, inputs.group(1) if inputs else ""


def test_imagenet_weights_are_staged_once_before_training_and_only_then(tmp_path):
    staged = f"resources/keras/models/{MOBILENET_224}"
    imagenet = merged(TINY, {"classifier": {"backbone": "mobilenetv2", "weights": "imagenet"}})
    jobs, inputs = planned(tmp_path, imagenet)
    assert jobs["stage_weights"] == 1 and staged in inputs.split(", ")
    assert jobs == {**planned_jobs(tmp_path, TINY), "stage_weights": 1}  # nothing else changes

    # both methods reading the same file: staged once; two files: one job still
    both = merged(imagenet, {"metric_learning": {"backbone": "mobilenetv2", "weights": "imagenet"}})
    assert planned(tmp_path, both)[0]["stage_weights"] == 1
    output = snakemake(tmp_path, "-n", config=merged(both, {"metric_learning": {"backbone": "resnet50"}})).stdout
    stage = re.search(r"rule stage_weights:\n\s+output: (.*)", output).group(1).split(", ")
    resnet50 = "resources/keras/models/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert sorted(stage) == sorted([staged, resnet50])

    # none, a method not run, or a file already staged: no staging job
    assert "stage_weights" not in planned_jobs(tmp_path, TINY)
    assert "stage_weights" not in planned_jobs(tmp_path, merged(imagenet, {"methods": ["baseline"]}))
    (tmp_path / staged).parent.mkdir(parents=True)
    (tmp_path / staged).write_bytes(b"staged before")
    jobs, inputs = planned(tmp_path, imagenet)
    assert "stage_weights" not in jobs and staged in inputs.split(", ")


def test_rule_stage_weights_copies_from_the_submit_hosts_keras_cache(tmp_path, monkeypatch):
    home = tmp_path / "home"
    cached = home / ".keras" / "models" / MOBILENET_224
    cached.parent.mkdir(parents=True)
    with h5py.File(cached, "w") as file:  # any HDF5 file: MobileNetV2's have no MD5 to check
        file.attrs["made_by"] = "test"
    monkeypatch.setenv("HOME", str(home))  # the Snakemake process inherits it
    monkeypatch.delenv("KERAS_HOME", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    config = merged(TINY, {"classifier": {"backbone": "mobilenetv2", "weights": "imagenet"}, "keras_home": "keras"})
    snakemake(work, "--", "stage_weights", config=config)  # "--": the target is no --configfile
    staged = work / "keras" / "models" / MOBILENET_224
    assert staged.read_bytes() == cached.read_bytes()
    assert "copied" in (work / "results" / "logs" / "stage_weights.log").read_text()
    assert (work / "results" / "benchmarks" / "stage_weights.tsv").is_file()


@pytest.mark.slow
def test_training_with_imagenet_weights_runs_offline_from_the_staged_file(tmp_path, monkeypatch):
    home = tmp_path / "home"
    keras.utils.set_random_seed(6)
    save_like_keras_applications(
        keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3)),
        home / ".keras" / "models" / MOBILENET_224)
    monkeypatch.setenv("HOME", str(home))  # the submit host's Keras cache, for the Snakemake process
    monkeypatch.delenv("KERAS_HOME", raising=False)
    for variable in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")  # no download can succeed: offline
    monkeypatch.setenv("no_proxy", "")
    generate_demo_dataset(tmp_path / "data", n_individuals=24, n_train_images=90, n_test_images=40, max_side=160,
                          seed=7)
    work = tmp_path / "work"
    work.mkdir()
    config = merged(TINY, {"data_dir": str(tmp_path / "data"), "results_dir": "results",
                           "methods": ["baseline", "classifier"],
                           "classifier": {"backbone": "mobilenetv2", "weights": "imagenet", "input": "images"}})
    snakemake(work, "--until", "classifier_train", config=config)
    logs = work / "results" / "logs"
    assert "copied" in (logs / "stage_weights.log").read_text()
    assert f"KERAS_HOME={work / 'resources' / 'keras'}" in (logs / "classifier_train.log").read_text()
    assert (work / "results" / "classifier" / "model.keras").is_file()
