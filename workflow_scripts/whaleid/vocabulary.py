"""The words every layer of whaleid shares: what an answer is, which splits and methods there are,
and the choices of each setting, with the one check of a choice.

The config schema (schemas/config.schema.yaml) lists the same choices as its enums;
tests/test_vocabulary.py holds the two together, so a choice is added here and there at once.

Standard library only, and imports nothing of whaleid: every module may use it, the Snakefile too.
"""

from __future__ import annotations

from collections.abc import Sequence

# The answer for a photo of no known individual, and the label of train photos of nobody named.
NEW_WHALE = "new_whale"
# Answers per photo in a submission, as MAP@5 scores them.
N_ANSWERS = 5

# The data folder's splits, each a folder of photos.
DATA_SPLITS = ("train", "test")
# What every method answers and is scored on: held-out train photos, then the test photos.
SCORED_SPLITS = ("validation", "test")

# The identification methods, in the order they are compared. One name per method: its
# rules/<method>.smk, rules <method>_<step>, results/<method>/.
METHODS = ("baseline", "classifier", "metric_learning", "local", "fused")
# What `submit` may name: a method, or the one best on validation.
BEST = "best"
SUBMIT_CHOICES = (BEST, *METHODS)
# A setting chosen on validation rather than given (baseline.phash_max_distance, calibrations).
AUTO = "auto"
# How data_dir is laid out: Kaggle's playground (train.csv, train/, test/), a folder per
# individual (catalogue/<id>/, queries/), or whichever of the two it holds.
DATA_LAYOUTS = (AUTO, "playground", "folders")

# ---------------------------------------------------------------------------------- settings' choices

# The keras.applications backbones the workflow builds, all of which have ImageNet weights.
IMAGENET_BACKBONES = ("vgg19", "resnet50", "mobilenetv2")
# The embedding's: a small network trained from scratch, or one of those.
EMBEDDING_BACKBONES = ("compact", *IMAGENET_BACKBONES)
OPTIMIZERS = ("adam", "published")
# What a model reads: the autoencoder's codes, or the preprocessed squares.
INPUT_KINDS = ("codes", "images")
CLASS_WEIGHTS = ("none", "inverse", "effective")
NEW_WHALE_MODES = ("exclude", "class")
AGGREGATES = ("max", "mean_top_k")
TRANSFORMS = ("similarity", "affine", "homography")
SHORTLIST_BY = ("photo", "individual")
LOCAL_SCORINGS = ("verifier", "inliers")
# What the local method's new_whale threshold is chosen on: validation's MAP@5, or the fit photos'
# out-of-fold answers (identification.fold_threshold).
THRESHOLD_ON = ("fit_folds", "validation")
FOREGROUNDS = ("learned", "none")
CALIBRATIONS = (AUTO, "isotonic", "sigmoid")
# What the fit photos' answers out of fold are made against: a catalogue as a survey's
# (local.verifier.survey_catalogue), or every photo of the other folds.
FOLD_ANSWERS = ("survey", "all")


def check_choice(name: str, value, allowed: Sequence) -> None:
    """Raise ValueError, naming the setting and its choices, unless `value` is one of `allowed`."""
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(map(str, allowed))}")
