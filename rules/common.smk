# What every stage needs: a checked config, the data folder, and the result paths.
# Nothing heavy is imported here, so `snakemake -n` stays fast.

import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The modules of the package imported here: the shared vocabulary, which ImageNet weights file a
# backbone reads, each stage's settings, and the digest of the code each rule runs. Standard
# library only (tests/test_weights.py checks), so `snakemake -n` stays fast.
sys.path.append(os.path.join(workflow.basedir, "workflow_scripts"))
import whaleid.learning.pretrained as pretrained
import whaleid.reproducibility as reproducibility
import whaleid.settings as settings
from whaleid.code_digest import code_digest
from whaleid.vocabulary import BEST, DATA_SPLITS, METHODS, SCORED_SPLITS


def package_code(script):
    """Every rule's params `code`: the digest of the package's files that its `script` (in
    workflow_scripts/) runs, so that a change to whaleid's code reruns exactly the stages that
    run it, as a change to a setting does (whaleid.code_digest)."""
    # this checkout's package, whichever whaleid an import would find first (PYTHONPATH)
    scripts = os.path.join(workflow.basedir, "workflow_scripts")
    return code_digest(os.path.join(scripts, script), os.path.join(scripts, "whaleid"))


validate(config, schema="../schemas/config.schema.yaml")

# OpenCV picks its kernels when it loads, by the processor's instructions: every job starts with
# it held to those of every x86-64 processor (whaleid.reproducibility), TensorFlow's in its jobs.
if config["reproducible"]:
    os.environ.update(reproducibility.held_environment(os.environ))

# The generated demo dataset: flukes at sea, or with demo.scene_sites the scene variant, kept
# apart so that neither overwrites the other.
DEMO_DIR = "resources/demo_scenes" if config["demo"]["scene_sites"] else "resources/demo_data"
DATA = os.path.normpath(config["data_dir"])
R = os.path.normpath(config["results_dir"])
USING_DEMO = DATA == DEMO_DIR

if config["submit"] not in [BEST, *config["methods"]]:
    raise WorkflowError(f"config: submit={config['submit']!r} is neither best nor among methods={config['methods']}")


if "fused" in config["methods"] and not {"local", "metric_learning"} <= set(config["methods"]):
    raise WorkflowError(
        f"config: methods={config['methods']} lists fused without both methods it combines; "
        "add local and metric_learning"
    )
if "fused" in config["methods"] and config["local"]["scoring"] != "verifier":
    raise WorkflowError(
        "config: the fused method combines calibrated probabilities, which local.scoring="
        f"{config['local']['scoring']!r} does not give; set local.scoring: verifier"
    )


def submission_candidates():
    """The methods submission.csv may come from: all of them when the best on validation is chosen."""
    return config["methods"] if config["submit"] == BEST else [config["submit"]]


def inside(path, folder):
    return os.path.commonpath([os.path.abspath(path), os.path.abspath(folder)]) == os.path.abspath(folder)


# The folders layout's catalogue/<id>/ and queries/ (whaleid.data.folders): rule
# catalogue_folders links them in PHOTOS as the playground layout every stage reads.
CATALOGUE = os.path.normpath(os.path.join(DATA, config["folders"]["catalogue"]))
QUERIES = os.path.normpath(os.path.join(DATA, config["folders"]["queries"]))


def data_layout():
    """The layout of data_dir, playground or folders; auto is decided by what the folder holds."""
    if USING_DEMO or config["data_layout"] == "playground":
        return "playground"
    if config["data_layout"] == "folders" or not os.path.exists(os.path.join(DATA, "train.csv")):
        return "folders"
    return "playground"


DATA_LAYOUT = data_layout()
# Where the stages find train.csv, train/ and test/.
PHOTOS = DATA if DATA_LAYOUT == "playground" else f"{R}/data"

# A wrong data folder should fail now, not after the first jobs have run.
if not USING_DEMO:
    if not os.path.isdir(DATA):
        raise WorkflowError(f"data_dir {DATA!r}: folder not found")
    if DATA_LAYOUT == "playground":
        for needed in ("train.csv", "train", "test"):
            if not os.path.exists(os.path.join(DATA, needed)):
                raise WorkflowError(
                    f"data_dir {DATA!r}: {needed} not found; expected the Kaggle playground "
                    "layout (train.csv with Image,Id, train/, test/)"
                )
    if DATA_LAYOUT == "folders" and config["data_layout"] == "auto" and not os.path.isdir(CATALOGUE):
        raise WorkflowError(
            f"data_dir {DATA!r}: train.csv not found, nor {CATALOGUE}; expected the Kaggle playground "
            "layout (train.csv with Image,Id, train/, test/) or a folder per individual (catalogue/<id>/<photo>, "
            "queries/<photo>)"
        )
    for folder, holds in ((CATALOGUE, "a folder of photos per individual"), (QUERIES, "the photos to identify")):
        if DATA_LAYOUT == "folders" and not os.path.isdir(folder):
            raise WorkflowError(f"data_dir {DATA!r}: {folder} not found; the folders layout's {folder} holds {holds}")
        if DATA_LAYOUT == "folders" and inside(folder, R):
            raise WorkflowError(
                f"{folder} is inside results_dir {R!r}, which this run writes: give the new season a new "
                "results_dir (the review's export, <results_dir>/review/catalogue, is read where it is)"
            )
SOURCES = [("data_dir", DATA)] + ([("folders", CATALOGUE), ("folders", QUERIES)] if DATA_LAYOUT == "folders" else [])
for what, source in SOURCES:
    if inside(R, source):
        raise WorkflowError(f"results_dir {R!r} is inside {what} {source!r}; the data folder is never written to")


def individual_folders():
    """The folders layout's folder of each individual: a photo added to one changes its time,
    not the catalogue folder's, and must relink the catalogue."""
    with os.scandir(CATALOGUE) as entries:
        return sorted(entry.path for entry in entries if entry.is_dir())


def test_truth_file():
    return os.path.join(DATA, "test_truth.csv" if DATA_LAYOUT == "playground" else "queries_truth.csv")


def has_test_truth():
    return USING_DEMO or os.path.exists(test_truth_file())


def test_truth_input():
    return [test_truth_file()] if has_test_truth() else []


def given_encounters():
    path = os.path.join(DATA, "encounters.csv")
    return path if os.path.exists(path) else None


def encounters_from_exif():
    """Whether the test photos' encounters are found from their EXIF (rule exif_encounters)."""
    return given_encounters() is None and config["encounters"]["from_exif"]


def encounters_input():
    """The encounters (Image,Encounter): the data folder's encounters.csv, where it has one, else
    those found from the photos' EXIF, where asked. The test photos of one encounter are identified
    and reviewed together."""
    if given_encounters():
        return [given_encounters()]
    return [f"{R}/ingest/encounters.csv"] if encounters_from_exif() else []


def sample_submission_input():
    path = os.path.join(DATA, "sample_submission.csv")
    return [path] if USING_DEMO or (DATA_LAYOUT == "playground" and os.path.exists(path)) else []


def model_input(method, split, kind):
    """The input array (`npy`) or its index (`csv`) of `method`'s model (classifier or
    metric_learning): the autoencoder's codes or the preprocessed images, as its `input` says."""
    folder = "autoencoder/codes" if config[method]["input"] == "codes" else "preprocess"
    return f"{R}/{folder}/{split}.{kind}"


def predictions(method, split):
    """Where `method` writes its answers for the validation or test photos."""
    return f"{R}/{method}/predictions/{split}.csv"


def identification_output(method):
    """What every method's <method>_identify writes: its answers for both splits, and the
    curve of validation MAP@5 that its setting (the new_whale threshold; the baseline's pHash
    distance) was chosen on."""
    curve = "phash_threshold.csv" if method == "baseline" else "new_whale_threshold.csv"
    return {
        "validation": predictions(method, "validation"),
        "test": predictions(method, "test"),
        "threshold_curve": f"{R}/{method}/{curve}",
    }


def weights_input(section):
    """A local weights file is an input, so replacing it retrains; `imagenet` and `none` are not files."""
    weights = str(config[section]["weights"])
    return [] if weights.lower() in ("imagenet", "none") else [weights]


def stage_settings(kind):
    """A rule's params for the stage whose settings are `kind` (a whaleid.settings dataclass):
    the values of exactly the config keys it reads, so that a change to any of them, and only
    to those, reruns it. Checked now: a wrong combination fails before any job runs."""
    values = {key: config[kind.SECTION][key] for key in kind.keys()}
    try:
        kind(**values)
    except ValueError as error:
        raise WorkflowError(f"config: {kind.SECTION}: {error}")
    return values


KERAS_HOME = os.path.normpath(config["keras_home"])
if inside(KERAS_HOME, DATA):
    raise WorkflowError(f"keras_home {KERAS_HOME!r} is inside data_dir {DATA!r}; the data folder is never written to")


def imagenet_backbone(section):
    """(backbone, side it sees) where <section>_train starts from ImageNet weights, else None:
    its method is not run, its weights are not `imagenet`, or its backbone has none (compact,
    which the script then refuses, saying why). The side is worked out as the scripts do."""
    stage = config[section]
    if section not in config["methods"] or str(stage["weights"]).lower() != "imagenet":
        return None
    if stage["backbone"] not in pretrained.IMAGENET_BACKBONES:
        return None
    input_side = pretrained.array_side(stage["input"], config["preprocess"]["size"])
    return stage["backbone"], pretrained.backbone_side(input_side, stage["input_size"])


def staged_file(backbone, side):
    """Where rule stage_weights puts `backbone`'s ImageNet weights for inputs `side` square."""
    return f"{KERAS_HOME}/models/{pretrained.imagenet_weights(backbone, side).file_name}"


def staged_weights():
    """{staged file: {backbone, side}}, each file once: what rule stage_weights puts in
    <keras_home>/models/ for the training jobs (nothing when none starts from ImageNet)."""
    staged = {}
    for section in ("classifier", "metric_learning"):
        wanted = imagenet_backbone(section)
        if wanted:
            staged.setdefault(staged_file(*wanted), {"backbone": wanted[0], "side": wanted[1]})
    return staged


def staged_weights_input(section):
    """The staged ImageNet weights file <section>_train reads (an input, so it is staged first),
    or none."""
    wanted = imagenet_backbone(section)
    return [staged_file(*wanted)] if wanted else []


def tensorflow_job(section):
    """How a TensorFlow job of `section` (its config.yaml section) computes: on its configured
    `threads`, not on the cores Snakemake hands it on this machine (a reduction split over other
    threads sums in another order), and `reproducible` or not
    (whaleid.learning.tensorflow_runtime.start_tensorflow_job)."""
    return {"threads": config[section]["threads"], "reproducible": config["reproducible"]}


def keras_home_param(wildcards, input):
    """A training job's KERAS_HOME where it reads staged ImageNet weights (`input.imagenet`, in
    its models/), else None: Keras's own."""
    return os.path.dirname(os.path.dirname(input.imagenet[0])) if input.imagenet else None


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
    """The embeddings and index of the photos added to the catalogue (none when there are none)."""
    return (
        [f"{R}/metric_learning/additions/embeddings.npy", f"{R}/metric_learning/additions/index.csv"]
        if ADDITIONS
        else []
    )


# The researcher's loop (review.smk): decision files exported from the review page, fed back.
DECISIONS = config["review"]["decisions"]
DECISION_FILES = [DECISIONS] if isinstance(DECISIONS, str) else list(DECISIONS or [])
for path in DECISION_FILES:
    if not os.path.isfile(path):
        raise WorkflowError(f"review.decisions: {path!r}: file not found")


def reviewed_input():
    """The test photos people identified, where decisions are fed back: they join every method's
    catalogue, so every stage that answers from the catalogue reads them."""
    return [f"{R}/review/reviewed.csv"] if DECISION_FILES else []


def review_method():
    """The method whose answers the review page shows: review.method, or the one submitted
    where `submit` names it, or the first run of those that can show most."""
    method = config["review"]["method"]
    if method is None:
        preferred = [config["submit"]] if config["submit"] != BEST else []
        preferred += ["fused", "local", "metric_learning", "classifier", "baseline"]
        method = next(m for m in preferred if m in config["methods"])
    if method not in config["methods"]:
        raise WorkflowError(f"config: review.method={method!r} is not among methods={config['methods']}")
    return method


def fold_answers_input():
    """What the auto-accept threshold is chosen on where it is not validation: the local
    method's out-of-fold answers to the fit photos and the pooling it chose, where the review
    page shows the local method and its verifier made them."""
    if review_method() != "local" or config["local"]["scoring"] != "verifier":
        return {}
    return {"fold_answers": f"{R}/local/verifier/fold_answers.csv", "poolings": f"{R}/local/poolings.csv"}


def verifier_input():
    """The verifier's model, where the local method scores with it."""
    return [f"{R}/local/verifier/model.joblib"] if config["local"]["scoring"] == "verifier" else []


if config["local"]["new_whale_threshold_on"] == "fit_folds" and config["local"]["scoring"] != "verifier":
    raise WorkflowError(
        "config: local.new_whale_threshold_on: fit_folds chooses the threshold on the verifier's out-of-fold "
        f"answers, which local.scoring={config['local']['scoring']!r} does not make; set "
        "local.new_whale_threshold_on: validation, or local.scoring: verifier"
    )


if config["self_training"]["rounds"] and config["local"]["scoring"] != "verifier":
    raise WorkflowError(
        "config: self-training accepts the local method's answers by its verifier's calibrated probability, which "
        f"local.scoring={config['local']['scoring']!r} does not give; set self_training.rounds: 0, or "
        "local.scoring: verifier"
    )


def proposes_new_individuals():
    """Whether the local method's test photos answered new_whale are matched against each other
    and proposed as new individuals (rule local_new_individuals)."""
    return "local" in config["methods"] and config["new_individuals"]["propose"]


if proposes_new_individuals() and config["local"]["scoring"] != "verifier":
    raise WorkflowError(
        "config: new individuals are proposed where the local method's verifier's calibrated probability "
        f"links two test photos, which local.scoring={config['local']['scoring']!r} does not give; set "
        "new_individuals.propose: false, or local.scoring: verifier"
    )


def new_individuals_input():
    """The test photos proposed as new individuals, which the review page shows side by side."""
    return {"new_individuals": f"{R}/local/new_individuals.csv"} if proposes_new_individuals() else {}


def threshold_fold_answers():
    """The fit photos' out-of-fold answers the local method's new_whale threshold is chosen on, or
    self-training's acceptance threshold, where either is."""
    fit_folds = config["local"]["new_whale_threshold_on"] == "fit_folds"
    return [f"{R}/local/verifier/fold_answers.csv"] if fit_folds or config["self_training"]["rounds"] else []


KEEPS_ON_ANIMAL = config["local"]["detected_per_kept"] > 1
if KEEPS_ON_ANIMAL and config["local"]["foreground"] == "none":
    raise WorkflowError(
        "config: local.detected_per_kept above 1 keeps the keypoints the foreground model finds on the animal, "
        "which local.foreground: none does not learn; set it to 1, or local.foreground: learned"
    )


def kept_keypoints(split):
    """The keypoint cache of a split the local method matches with: every keypoint found, or
    where local.detected_per_kept is above 1 those kept on the animal (rule local_keypoints_kept)."""
    return f"{R}/local/kept/{split}.npy" if KEEPS_ON_ANIMAL else f"{R}/local/keypoints/{split}.npy"


def foreground_input(wildcards):
    """The weights of the keypoints the local method matches with, where it learns which lie on the animal."""
    if config["local"]["foreground"] == "none":
        return {}
    weights = "local/kept/{}.weights.npy" if KEEPS_ON_ANIMAL else "local/foreground/{}.npy"
    return {f"{split}_weights": f"{R}/{weights.format(split)}" for split in ("train", "test")}


def local_thresholds():
    """The new_whale thresholds tried on validation, in the units of the local method's score."""
    if config["local"]["scoring"] == "verifier":
        return settings.threshold_grid(**config["local"]["new_whale_probabilities"])
    return config["local"]["new_whale_thresholds"]


def duplicate_distances():
    """The pHash distances a method may match duplicates up to: the baseline's candidates, each
    method choosing its own on validation, or the one distance set in the config."""
    distance = config["baseline"]["phash_max_distance"]
    return config["baseline"]["phash_max_distance_candidates"] if distance == "auto" else [distance]


def uses_codes():
    """Whether a method that runs reads the autoencoder's codes (so the autoencoder is trained)."""
    return any(m in config["methods"] and config[m]["input"] == "codes" for m in ("classifier", "metric_learning"))


def trained_models():
    """The models this config trains: the autoencoder where a method reads its codes, then the
    classifier and the embedding where their methods run."""
    models = [m for m in ("classifier", "metric_learning") if m in config["methods"]]
    return ["autoencoder", *models] if uses_codes() else models


# The methods whose answers the candidate gallery can show with the photos that speak for them.
GALLERY_METHODS = ("metric_learning", "local", "fused")


def calibrated_methods():
    """The methods that answer with calibrated probabilities: local where its verifier scores,
    and fused (which needs it)."""
    calibrated = ["local", "fused"] if config["local"]["scoring"] == "verifier" else []
    return [method for method in calibrated if method in config["methods"]]


def report_figures():
    """The report's figures and tables (rules in report.smk), but the resources
    per job: the data; preprocessing examples where a model runs (so the cache is made anyway);
    each trained model's training curves; each method's threshold curve; the calibrated
    methods' reliability; the candidate gallery of each method it can show."""
    figures = [f"{R}/report/dataset.png", f"{R}/report/dataset.csv"]
    if trained_models():
        figures.append(f"{R}/report/preprocessing.png")
    figures += expand(f"{R}/report/training/{{model}}.png", model=trained_models())
    figures += expand(f"{R}/report/thresholds/{{method}}.png", method=config["methods"])
    figures += expand(f"{R}/report/calibration/{{method}}.png", method=calibrated_methods())
    figures += expand(
        f"{R}/report/gallery/{{method}}_{{page}}.html",
        method=[m for m in GALLERY_METHODS if m in config["methods"]],
        page=("best_hits", "worst_misses"),
    )
    return figures


def calibration_input(wildcards):
    """Each query's ranked individuals with their probabilities; for the local method, also the
    held-out reliability of its verifier's training pairs."""
    if wildcards.method == "local":
        return {"candidates": f"{R}/local/shortlists/validation.csv", "pairs": f"{R}/local/verifier/reliability.csv"}
    return {"candidates": f"{R}/fused/candidates/validation.csv"}


def evidence_input(method):
    """What shows who `method`'s answers are, on the gallery and review pages: its answers and
    threshold; the embeddings (metric_learning, with the photos added to its catalogue; fused,
    for photos no keypoint verified); the local method's keypoints and verified pairs (local,
    fused), and the individuals' scores (local's shortlists, fused's candidates), and the photos
    its self-training accepted; the photos a person identified, which are in the test catalogue."""
    inputs = {
        "validation": predictions(method, "validation"),
        "test_predictions": predictions(method, "test"),
        "threshold_curve": identification_output(method)["threshold_curve"],
        "reviewed": reviewed_input(),
        "encounters": encounters_input(),
    }
    if method in ("metric_learning", "fused"):
        inputs.update(
            {
                f"embeddings_{name}": f"{R}/metric_learning/embeddings/{name}"
                for name in ("train.npy", "train.csv", "test.npy", "test.csv")
            }
        )
    if method == "metric_learning" and ADDITIONS:
        inputs["additions"] = catalogue_additions_output() + [f"{R}/metric_learning/additions/squares.npy"]
    if method in ("local", "fused"):
        for split in ("train", "test"):
            inputs[f"keypoints_{split}.npy"] = kept_keypoints(split)
            inputs[f"keypoints_{split}.csv"] = f"{R}/local/keypoints/{split}.csv"
        scores = "local/shortlists" if method == "local" else "fused/candidates"
        for split in ("validation", "test"):
            inputs[f"pairs_{split}"] = f"{R}/local/pairs/{split}.csv"
            inputs[f"scores_{split}"] = f"{R}/{scores}/{split}.csv"
        # the photos self-training accepted, which verified pairs may show
        inputs["pseudo_labels"] = f"{R}/local/pseudo_labels.csv"
    return inputs


def evidence_params(method):
    """How the local method matched, to draw a pair's inliers again (for local and fused)."""
    if method not in ("local", "fused"):
        return None
    return {"image_size": keypoint_side(), "settings": stage_settings(settings.MatchSettings)}


def gallery_input(wildcards):
    """What a method's gallery shows (`evidence_input`)."""
    return evidence_input(wildcards.method)


def gallery_params(wildcards):
    """How a method's gallery draws inliers (`evidence_params`)."""
    return evidence_params(wildcards.method)


def keypoint_input(wildcards):
    """Where the local method finds keypoints: the preprocessed squares, or where
    `local.max_side` is set the original photos (the manifest lists them)."""
    if config["local"]["max_side"] is None:
        return {"cache": f"{R}/preprocess/{wildcards.split}.npy", "index": f"{R}/preprocess/{wildcards.split}.csv"}
    return {"manifest": f"{R}/ingest/manifest.csv", "images": f"{PHOTOS}/{wildcards.split}"}


def keypoint_chunks(wildcards):
    """A split's keypoint caches of its chunks of photos, in order (scattergather local_photos)."""
    return gather.local_photos(f"{R}/local/keypoints/chunks/{wildcards.split}/{{scatteritem}}.npy")


def keypoint_side():
    """The side of the square the local method's keypoint positions are in (KeypointSettings.side)."""
    return config["local"]["image_size"] if config["local"]["max_side"] is None else config["local"]["max_side"]


REVIEW_OUTPUTS = [
    f"{R}/review/page.html",
    f"{R}/review/catalogue.csv",
    f"{R}/review/individuals.csv",
    f"{R}/review/catalogue",
    f"{R}/review/wildbook_import.csv",
]

# What every job of a run cost: made last, from every other job's benchmark file (report.smk).
REPORT_RESOURCES = [f"{R}/report/resources.csv", f"{R}/report/resources.png"]


def get_final_output():
    outputs = [f"{R}/scores.csv", f"{R}/submission.csv"]
    outputs += expand(f"{R}/{{method}}/submission.csv", method=config["methods"])
    outputs.append(f"{R}/comparison.csv")
    # How often the local method's shortlist holds the right individual, by its catalogue photos.
    if "local" in config["methods"]:
        outputs.append(f"{R}/local/shortlist_recall.csv")
    # The autoencoder's picture of what it learned, wherever a method reads its codes.
    if uses_codes():
        outputs.append(f"{R}/autoencoder/reconstructions.png")
    # The review page of the test answers, and the catalogue it grows (review.smk).
    outputs += REVIEW_OUTPUTS
    return outputs + report_figures() + REPORT_RESOURCES


wildcard_constraints:
    split="|".join(DATA_SPLITS),
    method="|".join(METHODS),
