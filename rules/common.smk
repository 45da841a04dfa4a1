# What every stage needs: a checked config, the data folder, and the result paths.
# Nothing heavy is imported here, so `snakemake -n` stays fast.

import os

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")

DEMO_DIR = "resources/demo_data"
DATA = os.path.normpath(config["data_dir"])
R = os.path.normpath(config["results_dir"])
USING_DEMO = DATA == DEMO_DIR
SPLITS = ["train", "test"]

if config["submit"] not in ["best", *config["methods"]]:
    raise WorkflowError(
        f"config: submit={config['submit']!r} is neither best nor among methods={config['methods']}"
    )


def submission_candidates():
    """The methods submission.csv may come from: all of them when the best on validation is chosen."""
    return config["methods"] if config["submit"] == "best" else [config["submit"]]

# A wrong data folder should fail now, not after the first jobs have run.
if not USING_DEMO:
    if not os.path.isdir(DATA):
        raise WorkflowError(f"data_dir {DATA!r}: folder not found")
    for needed in ("train.csv", "train", "test"):
        if not os.path.exists(os.path.join(DATA, needed)):
            raise WorkflowError(
                f"data_dir {DATA!r}: {needed} not found; expected the Kaggle playground "
                "layout (train.csv with Image,Id, train/, test/)"
            )
if os.path.commonpath([os.path.abspath(R), os.path.abspath(DATA)]) == os.path.abspath(DATA):
    raise WorkflowError(
        f"results_dir {R!r} is inside data_dir {DATA!r}; the data folder is never written to"
    )


def has_test_truth():
    return USING_DEMO or os.path.exists(os.path.join(DATA, "test_truth.csv"))


def test_truth_input():
    return [os.path.join(DATA, "test_truth.csv")] if has_test_truth() else []


def sample_submission_input():
    path = os.path.join(DATA, "sample_submission.csv")
    return [path] if USING_DEMO or os.path.exists(path) else []


def classifier_input(split, kind):
    """The classifier's input array (`npy`) or its index (`csv`): codes or preprocessed images."""
    stage = "codes" if config["classifier"]["input"] == "codes" else "preprocess"
    return f"{R}/{stage}/{split}.{kind}"


def metric_learning_input(split, kind):
    """The embedding's input array (`npy`) or its index (`csv`): preprocessed images or codes."""
    stage = "codes" if config["metric_learning"]["input"] == "codes" else "preprocess"
    return f"{R}/{stage}/{split}.{kind}"


def weights_input(section):
    """A local weights file is an input, so replacing it retrains; `imagenet` and `none` are not files."""
    weights = str(config[section]["weights"])
    return [] if weights.lower() in ("imagenet", "none") else [weights]


ADDITIONS = config["metric_learning"]["catalogue_additions"]
if ADDITIONS:
    for needed in ("train.csv", "train"):
        if not os.path.exists(os.path.join(ADDITIONS, needed)):
            raise WorkflowError(
                f"metric_learning.catalogue_additions {ADDITIONS!r}: {needed} not found; expected "
                "the layout of a dataset's train part (train.csv with Image,Id, and train/)"
            )


def catalogue_additions_input(name):
    """A file or folder of the photos to add to the catalogue (none when there are none)."""
    return [os.path.join(ADDITIONS, name)] if ADDITIONS else []


def catalogue_additions_output():
    return [f"{R}/catalogue/additions.npy", f"{R}/catalogue/additions.csv"] if ADDITIONS else []


def duplicate_distances():
    """The pHash distances a method may match duplicates up to: the baseline's candidates, each
    method choosing its own on validation, or the one distance set in the config."""
    distance = config["baseline"]["phash_max_distance"]
    return config["baseline"]["phash_max_distance_candidates"] if distance == "auto" else [distance]


# The grid itself is made by the scripts (whaleid.ranking.threshold_grid); a wrong one fails now.
SIMILARITY_GRID = config["metric_learning"]["new_whale_thresholds"]
if SIMILARITY_GRID["stop"] < SIMILARITY_GRID["start"]:
    raise WorkflowError(
        f"metric_learning.new_whale_thresholds: stop {SIMILARITY_GRID['stop']} is below start "
        f"{SIMILARITY_GRID['start']}"
    )


def get_final_output():
    outputs = [f"{R}/scores.csv", f"{R}/submission.csv"]
    outputs += expand(f"{R}/submissions/{{method}}.csv", method=config["methods"])
    outputs.append(f"{R}/comparison.csv")
    # The autoencoder's picture of what it learned, wherever a method reads its codes.
    if any(m in config["methods"] and config[m]["input"] == "codes" for m in ("classifier", "metric_learning")):
        outputs.append(f"{R}/autoencoder/reconstructions.png")
    return outputs


wildcard_constraints:
    split="|".join(SPLITS),
    method="[a-z_]+",
