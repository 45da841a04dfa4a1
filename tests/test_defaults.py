"""config.yaml's defaults, which are for a GPU with internet (ImageNet backbones, 448-pixel
embeddings, mixed precision), built (the embedding) and trained (the classifier) here on the CPU from
weights files the tests make: the real loading path, with no download.

presets/cpu.yaml holds the choices for a CPU without internet; tests/test_workflow.py plans a
whole run with the defaults and with each preset.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
from test_classifier import stage_inputs

import whaleid.methods.classifier as clf
from whaleid.learning.backbones import build_backbone
from whaleid.methods.metric_learning.model import build_embedder
from whaleid.settings import CPU_PRESET, ClassifierSettings, MetricLearningSettings

# Keras converts its variables with np.array(copy=False) when saving weights: its warning, not ours.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]


def test_the_defaults_are_for_a_gpu_with_internet_and_the_cpu_preset_downloads_nothing():
    gpu, cpu = MetricLearningSettings.defaults(), MetricLearningSettings.defaults(CPU_PRESET)
    assert (gpu.backbone, gpu.weights, gpu.mixed_precision) == ("resnet50", "imagenet", True)
    assert gpu.input_size >= 384  # the pattern's detail, not a thumbnail
    assert (cpu.backbone, cpu.weights) == ("compact", "none")
    classifier = ClassifierSettings.defaults()
    assert (classifier.backbone, classifier.weights, classifier.input) == ("vgg19", "imagenet", "codes")  # as published
    assert ClassifierSettings.defaults(CPU_PRESET).weights == "none"


def saved_backbone(backbone: str, side: int, path) -> list[np.ndarray]:
    """A weights file of `backbone` without its top, as a user would stage one instead of ImageNet's."""
    keras.utils.set_random_seed(7)
    base = build_backbone(backbone, None, (side, side, 3))
    base.save_weights(path)
    return base.get_weights()


def test_the_default_embedding_is_built_on_a_local_resnet50_file_at_448_pixels(tmp_path):
    defaults = MetricLearningSettings.defaults()
    weights = tmp_path / "resnet50.weights.h5"
    saved = saved_backbone(defaults.backbone, defaults.input_size, weights)
    embedder = build_embedder((32, 32, 1), backbone=defaults.backbone, weights=str(weights), scale=[1.0],
                              input_size=defaults.input_size, width=defaults.width,
                              embedding_size=defaults.embedding_size, dropout=defaults.dropout,
                              augment=defaults.augment, seed=defaults.seed)
    base = embedder.get_layer("base")
    assert base.input.shape[1:3] == (defaults.input_size, defaults.input_size)
    assert all(np.array_equal(a, b) for a, b in zip(base.get_weights(), saved, strict=True))
    assert embedder.output.shape[-1] == defaults.embedding_size
    # Training it is left to a GPU: an epoch at 448 pixels takes some 80 s on 2 cores, and the
    # training code is the one tests/test_metric_learning.py runs with the compact backbone.


def test_the_default_classifier_trains_from_a_local_vgg19_file(tmp_path):
    paths, _ = stage_inputs(tmp_path, side=32, kind="codes")
    saved = saved_backbone("vgg19", 32, tmp_path / "vgg19.weights.h5")
    settings = ClassifierSettings.defaults(weights=str(tmp_path / "vgg19.weights.h5"), head_epochs=1,
                                           fine_tune_epochs=1)
    model = clf.train_classifier(paths["train.npy"], paths["train.csv"], paths["split.csv"], tmp_path / "model.keras",
                                 tmp_path / "labels.json", tmp_path / "history.csv", tmp_path / "backup", settings)
    base = model.get_layer("base")
    # phase 1 trains the head alone and phase 2 only the top layers: the rest is the file's
    frozen = {id(weight) for layer in base.layers if not layer.trainable for weight in layer.weights}
    assert frozen
    for weight, value in zip(base.weights, saved, strict=True):
        if id(weight) in frozen:
            assert np.array_equal(weight.numpy(), value), weight.path
    assert pd.read_csv(tmp_path / "history.csv")["phase"].tolist() == ["head", "fine_tune"]
