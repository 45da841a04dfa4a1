import json
import re

import cv2
import h5py
import keras
import numpy as np
import pandas as pd
import pytest
from conftest import kill_after_epoch, run_to_the_end, started_epochs

import whaleid.methods.classifier as clf
from whaleid.data.duplicates import duplicates_first
from whaleid.evaluation.metrics import map_at_5
from whaleid.evaluation.submission import check_predictions, most_frequent_ids
from whaleid.identification.answers import final_answers, insert_new_whale, sweep_new_whale_threshold
from whaleid.learning.augmentation import build_augmentation
from whaleid.learning.backbones import build_backbone, code_scale
from whaleid.learning.pretrained import MissingWeightsError, imagenet_weights
from whaleid.methods.baseline import rank_answers
from whaleid.settings import ClassifierSettings

# Keras converts its variables with np.array(copy=False) when saving weights: its warning, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

N_IDS, PER_ID, N_NEW = 6, 6, 4


def pattern(whale, side, channels):
    """An individual's look: a colour of its own (a grey level in one channel) over a smooth
    random texture."""
    rng = np.random.default_rng(100 + whale)
    texture = cv2.resize(rng.random((4, 4, channels)), (side, side), interpolation=cv2.INTER_CUBIC)
    colour = np.linspace(0.15, 1.0, N_IDS)[rng.permutation(N_IDS)[:channels]] if channels > 1 else (whale + 1) / N_IDS
    return (colour * (0.7 + 0.3 * texture.reshape(side, side, channels))).astype(np.float64)


def photo(whale, side, channels, rng):
    """A new photo of `whale` (noise only, for an unknown whale), in 0..3 like the codes."""
    look = pattern(whale, side, channels) if whale is not None else rng.random((side, side, channels))
    return np.clip(look + 0.1 * rng.standard_normal(look.shape), 0, None) * 3


def hash_hex(rng):
    return f"{int(rng.integers(0, 2**63)):016x}"


def stage_inputs(folder, side=32, kind="codes"):
    """What the classifier stages read, for N_IDS easy individuals: the train and test arrays
    (codes (N, side, side, 3) or grey images (N, side, side)) with their index CSVs, the
    validation split (one photo of each whale and two new_whale photos held out) and the
    manifest. Test photo dup.jpg has the bytes of fit photo w_3_2.jpg; validation photo
    w_2_0.jpg the bytes of fit photo w_2_1.jpg. Returns the paths and the test truth."""
    rng = np.random.default_rng(0)
    channels = 3 if kind == "codes" else 1
    train, test = [], []
    for whale in range(N_IDS):
        for j in range(PER_ID):
            train.append(dict(image=f"w_{whale}_{j}.jpg", id=f"w_{whale}", subset="validation" if j == 0 else "fit",
                              picture=photo(whale, side, channels, rng)))
        test += [dict(image=f"t_{whale}_{j}.jpg", id=f"w_{whale}", picture=photo(whale, side, channels, rng))
                 for j in range(2)]
    for j in range(N_NEW):
        train.append(dict(image=f"n_{j}.jpg", id="new_whale", subset="validation" if j < 2 else "fit",
                          picture=photo(None, side, channels, rng)))
    test += [dict(image=f"u_{j}.jpg", id="new_whale", picture=photo(None, side, channels, rng)) for j in range(2)]
    test.append(dict(image="dup.jpg", id="w_3", picture=train[3 * PER_ID + 2]["picture"]))
    train, test = pd.DataFrame(train), pd.DataFrame(test)

    paths = {name: folder / name
             for name in ("train.npy", "train.csv", "test.npy", "test.csv", "split.csv", "manifest.csv")}
    for split, table in (("train", train), ("test", test)):
        pictures = np.stack(table["picture"])
        np.save(paths[f"{split}.npy"], pictures.astype(np.float16) if kind == "codes"
                else (np.clip(pictures / 3, 0, 1) * 255).astype(np.uint8)[..., 0])
        index = table[["image"]].assign(id=table["id"] if split == "train" else "", width=side, height=side)
        index.to_csv(paths[f"{split}.csv"], index=False)
    train.assign(truth=train["id"])[["image", "id", "subset", "truth"]].to_csv(paths["split.csv"], index=False)
    same_bytes = {"dup.jpg": "w_3_2.jpg", "w_2_0.jpg": "w_2_1.jpg"}
    manifest = pd.concat([train[["image", "id"]].assign(split="train"), test[["image"]].assign(split="test", id="")])
    manifest["content_hash"] = [same_bytes.get(image, image) for image in manifest["image"]]
    manifest["phash"] = [hash_hex(rng) for _ in range(len(manifest))]
    manifest.to_csv(paths["manifest.csv"], index=False)
    return paths, dict(zip(test["image"], test["id"]))


def baseline_map5(split_csv):
    """new_whale, then the commonest fit ids: the floor a model must beat."""
    split = pd.read_csv(split_csv, dtype=str)
    fallback = most_frequent_ids(split.loc[split["subset"] == "fit", "id"], 5)
    truths = split.loc[split["subset"] == "validation", "truth"].tolist()
    return map_at_5([rank_answers([], fallback)] * len(truths), truths)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The head of a ResNet50 with random weights (whose features, unlike MobileNetV2's or VGG19's
    at random, do not vanish) trained on 32x32x3 codes of six easy individuals; without
    augmentation, which random features do not see through in so few steps."""
    folder = tmp_path_factory.mktemp("classifier")
    paths, test_truth = stage_inputs(folder)
    out = {name: folder / name for name in ("model.keras", "labels.json", "history.csv")}
    # Classes unweighted, as this run was tuned with (config.yaml weighs them inversely); new_whale left
    # out, as the labels asserted below expect.
    settings = ClassifierSettings.defaults(backbone="resnet50", weights=None, input="codes", input_size=None,
                                           head_epochs=4, head_learning_rate=1e-3, fine_tune_epochs=0, batch_size=4,
                                           dropout=0.1, class_weights="none", new_whale="exclude", augment=False,
                                           seed=0)
    model = clf.train_classifier(paths["train.npy"], paths["train.csv"], paths["split.csv"], out["model.keras"],
                                 out["labels.json"], out["history.csv"], folder / "backup", settings)
    return folder, paths, out, model, test_truth


def test_the_head_learns_to_beat_the_baseline(trained):
    folder, paths, out, _, _ = trained
    history = pd.read_csv(out["history.csv"])
    assert history["epoch"].tolist() == [0, 1, 2, 3] and set(history["phase"]) == {"head"}
    assert {"loss", "accuracy", "val_map5", "val_new_whale_threshold"} <= set(history.columns)
    assert history["val_map5"].max() > baseline_map5(paths["split.csv"]) + 0.2
    assert not (folder / "backup").exists()


def test_saved_model_loads_in_safe_mode_with_its_labels_and_code_scale(trained):
    _, paths, out, model, _ = trained
    labels = json.loads(out["labels.json"].read_text())
    assert clf.load_labels(out["labels.json"]) == labels["classes"] == [f"w_{i}" for i in range(N_IDS)]
    assert labels["backbone"] == "resnet50" and labels["input"] == "codes" and len(labels["scale"]) == 3
    loaded = clf.load_classifier(out["model.keras"])
    assert loaded.get_layer("to_pixels").scale == labels["scale"]
    assert [layer.name for layer in loaded.layers] == ["input", "to_pixels", "preprocess", "base", "pool", "dropout",
                                                       "probabilities"]
    expected = clf.predict_probabilities(model, paths["test.npy"], None, batch_size=8)
    assert expected.shape == (len(np.load(paths["test.npy"])), N_IDS)
    np.testing.assert_allclose(clf.predict_probabilities(loaded, paths["test.npy"], [4, 0, 2], batch_size=8),
                               expected[[4, 0, 2]], atol=1e-5)  # in the order asked for


def test_predictions_rank_duplicates_first_and_beat_the_baseline(trained):
    _, paths, out, _, test_truth = trained
    found = clf.identify(out["model.keras"], out["labels.json"], paths["train.npy"], paths["train.csv"],
                         paths["test.npy"], paths["test.csv"], paths["split.csv"], paths["manifest.csv"],
                         phash_distances=[0, 4], thresholds=ClassifierSettings.defaults().thresholds, batch_size=8)
    validation, test, curve, chosen = found.validation, found.test, found.curve, found.chosen
    split = pd.read_csv(paths["split.csv"]).set_index("image")
    assert validation["image"].tolist() == split.index[split["subset"] == "validation"].tolist()
    assert test["image"].tolist() == pd.read_csv(paths["test.csv"])["image"].tolist()
    for answers in (validation, test):
        check_predictions(answers["image"].tolist(), answers["answers"].tolist())
    truths = split.loc[validation["image"], "truth"].tolist()
    assert curve.loc[curve["chosen"], "threshold"].item() == chosen
    assert sorted(set(curve["max_distance"])) == [0, 4]
    assert map_at_5(validation["answers"].tolist(), truths) == curve["map5"].max() > baseline_map5(paths["split.csv"])
    answers = dict(zip(test["image"], test["answers"]))
    assert answers["dup.jpg"][0] == "w_3"  # the same bytes as a train photo of w_3
    assert dict(zip(validation["image"], validation["answers"]))["w_2_0.jpg"][0] == "w_2"
    assert map_at_5(list(answers.values()), [test_truth[i] for i in answers]) > 0.5


def test_training_interrupted_in_the_head_phase_resumes_with_fine_tuning(tmp_path):
    """Grey images (16x16, resized to 32 in the model), new_whale as a class, effective-number
    class weights and flips: killed after the head's epoch, the rerun keeps the head and
    trains only the fine-tuning epoch."""
    paths, _ = stage_inputs(tmp_path, side=16, kind="images")
    started = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            started.append(epoch)

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt  # after the epoch's backup, as a kill would land

    settings = ClassifierSettings.defaults(backbone="vgg19", weights="none", input="images", input_size=32,
                                           head_epochs=1, fine_tune_epochs=1, fine_tune_layers=3, batch_size=16,
                                           class_weights="effective", effective_beta=0.9, new_whale="class",
                                           augment=True, flip=True, seed=1)

    def train(*callbacks):
        return clf.train_classifier(paths["train.npy"], paths["train.csv"], paths["split.csv"], tmp_path / "m.keras",
                                    tmp_path / "labels.json", tmp_path / "history.csv", tmp_path / "backup",
                                    settings, callbacks=[Record(), *callbacks])

    with pytest.raises(KeyboardInterrupt):
        train(Kill())
    assert started == [0] and (tmp_path / "backup").is_dir() and not (tmp_path / "m.keras").exists()
    started.clear()
    model = train()
    assert started == [1]
    history = pd.read_csv(tmp_path / "history.csv")
    assert history["epoch"].tolist() == [0, 1] and history["phase"].tolist() == ["head", "fine_tune"]
    assert "new_whale" in clf.load_labels(tmp_path / "labels.json")
    loaded = clf.load_classifier(tmp_path / "m.keras")
    assert loaded.input.shape == (None, 16, 16, 1) and loaded.get_layer("resize").output.shape == (None, 32, 32, 3)
    assert "flip" in [layer.name for layer in loaded.get_layer("augmentation").layers]
    base = model.get_layer("base")
    assert [layer.name for layer in base.layers if layer.trainable] == ["block5_conv3", "block5_conv4", "block5_pool"]
    assert not (tmp_path / "backup").exists()


# Grey 16x16 images resized to 32 for a VGG19 without weights, the head and fine-tuning epochs
# from argv (see conftest.PAUSING_WORKER). VGG19 rather than MobileNetV2: its plain stack of
# convolutions compiles (XLA, once per phase and process) in a fraction of the time, and its
# random features still tell epochs apart, so the best epoch is a real choice.
TRAINING = """
from whaleid.methods.classifier import train_classifier
from whaleid.settings import ClassifierSettings
head_epochs, fine_tune_epochs = map(int, arguments)
settings = ClassifierSettings.defaults(backbone="vgg19", weights=None, input="images", input_size=32,
                                       head_epochs=head_epochs, fine_tune_epochs=fine_tune_epochs, fine_tune_layers=3,
                                       batch_size=16, augment=False, mixed_precision=False, seed=0)
train_classifier(folder / "train.npy", folder / "train.csv", folder / "split.csv", folder / "model.keras",
                 folder / "labels.json", folder / "history.csv", folder / "backup", settings, callbacks=[Pause()])
"""


def started_by_phase(log_text, head_epochs, fine_tune_epochs):
    """The epochs whose start the classifier logged: the head's (counted out of `head_epochs`)
    and fine-tuning's (counted out of all the epochs)."""
    return (started_epochs(log_text, "whaleid.methods.classifier", head_epochs),
            started_epochs(log_text, "whaleid.methods.classifier", head_epochs + fine_tune_epochs))


def test_training_killed_in_either_phase_resumes_from_the_last_finished_epoch(tmp_path):
    # Two head epochs and two of fine-tuning (0..3), killed in the middle of each phase in turn.
    stage_inputs(tmp_path, side=16, kind="images")
    killed_in_the_head_phase = kill_after_epoch(TRAINING, tmp_path, 0, 2, 2)
    assert started_by_phase(killed_in_the_head_phase, 2, 2) == ([0], [])
    assert (tmp_path / "backup").is_dir() and not (tmp_path / "model.keras").exists()

    # The head phase resumed after its finished epoch, and fine-tuning started at its own first.
    killed_while_fine_tuning = kill_after_epoch(TRAINING, tmp_path, 2, 2, 2)
    assert started_by_phase(killed_while_fine_tuning, 2, 2) == ([1], [2])
    assert (tmp_path / "backup").is_dir() and not (tmp_path / "model.keras").exists()

    # Neither the finished epochs nor the finished head phase were redone.
    log_text = run_to_the_end(TRAINING, tmp_path, 2, 2)
    assert started_by_phase(log_text, 2, 2) == ([], [3])
    history = pd.read_csv(tmp_path / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2, 3]
    assert history["phase"].tolist() == ["head", "head", "fine_tune", "fine_tune"]
    # the best epoch is chosen over all four, those before the kills included
    best = int(re.search(r"best epoch (\d+)", log_text).group(1))
    assert history.loc[best, "val_map5"] == history["val_map5"].max()
    assert not (tmp_path / "backup").exists()
    assert clf.load_classifier(tmp_path / "model.keras").input.shape == (None, 16, 16, 1)


def test_fine_tuning_unfreezes_the_top_of_the_base_but_not_its_batch_normalisation():
    model = clf.build_classifier((32, 32, 3), 5, backbone="mobilenetv2", weights=None, scale=[1, 1, 1],
                                 input_size=None, dropout=0.5, augment=True, flip=False, seed=0)
    base = model.get_layer("base")
    clf.freeze_base(model)
    assert not base.trainable_weights and model.get_layer("probabilities").trainable
    clf.unfreeze_top(model, 10)
    trainable = [layer for layer in base.layers if layer.trainable]
    assert {layer.name for layer in trainable} == {layer.name for layer in base.layers[-10:]
                                                   if not isinstance(layer, keras.layers.BatchNormalization)}
    assert len(trainable) < 10 and base.trainable_weights


def test_weights_load_from_a_local_file(tmp_path):
    keras.utils.set_random_seed(1)
    saved = build_backbone("mobilenetv2", None, (32, 32, 3))
    saved.save_weights(tmp_path / "base.weights.h5")
    keras.utils.set_random_seed(2)  # other random weights, unless loaded
    loaded = build_backbone("mobilenetv2", tmp_path / "base.weights.h5", (32, 32, 3))
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), saved.get_weights()))
    with pytest.raises(FileNotFoundError, match="missing.weights.h5"):
        build_backbone("mobilenetv2", tmp_path / "missing.weights.h5", (32, 32, 3))


def test_missing_imagenet_weights_offline_say_which_file_goes_where(offline):
    with pytest.raises(MissingWeightsError) as caught:
        build_backbone("vgg19", "imagenet", (32, 32, 3))
    message = str(caught.value)
    assert f"named vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5, in {offline}/" in message
    assert ("download https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
            "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5") in message
    assert "$KERAS_HOME/models/" in message and "~/.keras/models/" in message
    assert not list(offline.iterdir())  # no partial download left behind


def test_imagenet_weights_placed_in_the_keras_folder_are_used_offline(offline):
    keras.utils.set_random_seed(3)
    staged = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(40, 40, 3))
    spec = imagenet_weights("mobilenetv2", 40)
    assert spec.file_name == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"  # as Keras picks it
    offline.mkdir(parents=True)
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group
    with h5py.File(offline / spec.file_name, "w") as file:  # the format of the downloaded files
        save_weights_to_hdf5_group(file, staged)
    loaded = build_backbone("mobilenetv2", "imagenet", (40, 40, 3))
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), staged.get_weights()))


def test_imagenet_file_names_follow_keras_applications():
    assert imagenet_weights("resnet50", 224).file_name == "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert imagenet_weights("mobilenetv2", 128).file_name.endswith("_1.0_128_no_top.h5")
    with pytest.raises(ValueError, match="vgg19, resnet50, mobilenetv2"):
        imagenet_weights("vgg16", 224)


def test_class_weight_formulas():
    counts = [1, 2, 4]
    # beta belongs to "effective" only: the other methods give the same weights whatever it is
    np.testing.assert_allclose(clf.class_weights(counts, "none", beta=0.5), [1, 1, 1])
    # 1/n = 1, 1/2, 1/4; mean 7/12
    np.testing.assert_allclose(clf.class_weights(counts, "inverse", beta=0.5), [12 / 7, 6 / 7, 3 / 7])
    # beta 0.5: E_n = (1 - 0.5^n) / 0.5 = 1, 1.5, 1.875; 1/E_n = 1, 2/3, 8/15; mean 11/15
    np.testing.assert_allclose(clf.class_weights(counts, "effective", beta=0.5), [15 / 11, 10 / 11, 8 / 11])
    np.testing.assert_allclose(clf.class_weights(counts, "effective", beta=0.0), [1, 1, 1])
    with pytest.raises(ValueError, match="none, inverse, effective"):
        clf.class_weights(counts, "balanced", beta=0.5)


IDS = ["a", "b", "c", "d", "e"]
# Confident and right; unsure (truth new_whale); second choice at 0.45 but right; right at 0.55.
PROBABILITIES = np.array([[0.90, 0.04, 0.03, 0.02, 0.01],
                          [0.50, 0.20, 0.10, 0.10, 0.10],
                          [0.10, 0.45, 0.25, 0.10, 0.10],
                          [0.55, 0.30, 0.05, 0.05, 0.05]])
TRUTHS = ["a", "new_whale", "b", "a"]


def ranked(probabilities, class_ids, threshold):
    """The classifier's five answers at `threshold`: its candidates, new_whale inserted."""
    return insert_new_whale(clf.rank_candidates(probabilities, class_ids), threshold)


def test_new_whale_goes_where_the_confidence_falls_below_the_threshold():
    assert ranked(PROBABILITIES[1:2], IDS, 0.4) == [["a", "new_whale", "b", "c", "d"]]
    assert ranked(PROBABILITIES[1:2], IDS, 0.6)[0][0] == "new_whale"
    assert ranked(PROBABILITIES[1:2], IDS, 0.0) == [["a", "b", "c", "d", "new_whale"]]
    # new_whale as a class: its own probability (0.2) is the threshold where higher
    with_class = np.array([[0.3, 0.25, 0.2, 0.05, 0.2]])
    assert ranked(with_class, ["a", "b", "c", "d", "new_whale"], 0.0) == [["a", "b", "c", "new_whale", "d"]]


def test_threshold_sweep_picks_the_best_map5():
    # MAP@5 by threshold: 0: (1+1/5+1+1)/4; 0.4: (1+1/2+1+1)/4; 0.6: (1+1+1/2+1/2)/4; 1: (1/2+1+1/2+1/2)/4
    candidates = clf.rank_candidates(PROBABILITIES, IDS)
    best, curve = sweep_new_whale_threshold(candidates, TRUTHS, [0.0, 0.4, 0.6, 1.0])
    assert best == 0.4
    np.testing.assert_allclose(curve["map5"], [0.8, 0.875, 0.75, 0.625])
    assert curve["chosen"].tolist() == [False, True, False, False]
    # A duplicate of a catalogue photo of "a" rescues the unsure one: no need to insert early.
    duplicates = [[], [(-1, "new_whale")], [], []]
    best, _ = sweep_new_whale_threshold(candidates, TRUTHS, [0.0, 0.4, 0.6, 1.0], duplicates)
    assert best == 0.0


def test_duplicates_take_first_place():
    model_answers = ["a", "new_whale", "b", "d", "e"]
    assert duplicates_first([(3, "c"), (-1, "b"), (5, "c")], model_answers) == ["b", "c", "a", "new_whale", "d"]
    assert duplicates_first([], model_answers) == model_answers
    candidates = clf.rank_candidates(PROBABILITIES[:1], IDS)
    assert final_answers(candidates, 0.5, [[(2, "e")]]) == [["e", "a", "new_whale", "b", "c"]]


def test_label_encoding_round_trips(tmp_path):
    clf.save_labels(tmp_path / "labels.json", ["w_b", "NA", "0001"], backbone="vgg19")
    assert clf.load_labels(tmp_path / "labels.json") == ["w_b", "NA", "0001"]


def test_code_scale_takes_each_channel_percentile_to_255():
    codes = np.zeros((4, 10, 10, 3), np.float16)
    codes[..., 0] = np.arange(400).reshape(4, 10, 10) / 100
    codes[..., 1] = 2.0
    codes[0, 0, 0, 2] = 5.0  # a channel almost all zeros: scaled by its maximum
    scale = code_scale(codes, np.arange(4), seed=0, percentile=50)
    np.testing.assert_allclose(scale, [255 / np.percentile(np.arange(400) / 100, 50), 255 / 2, 255 / 5], rtol=1e-3)
    assert code_scale(np.zeros((2, 4, 4, 3)), [0, 1], seed=0) == [1.0, 1.0, 1.0]


def test_augmentation_keeps_the_fill_black_and_is_off_in_prediction():
    grey = np.full((8, 32, 32, 3), 100.0, np.float32)
    augmentation = build_augmentation(clf.AUGMENTATION, seed=0)
    moved = np.asarray(augmentation(grey, training=True))
    assert (moved == 0).mean() > 0.01  # the uncovered border is black, not brightened
    assert moved.max() <= 100 + 0.1 * 255 + 1e-3 and not np.array_equal(moved, grey)
    assert "flip" not in [layer.name for layer in augmentation.layers]
    assert np.array_equal(np.asarray(augmentation(grey, training=False)), grey)


def test_tiny_inputs_without_input_size_are_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="input_size"):
        clf.build_classifier((8, 8, 3), 5, backbone="mobilenetv2", weights=None, scale=[1, 1, 1], input_size=None,
                             dropout=0.5, augment=True, flip=False, seed=0)
    paths, _ = stage_inputs(tmp_path, side=16, kind="images")
    with pytest.raises(ValueError, match="holds 16x16 and input_size is None: set input_size"):
        clf.train_classifier(paths["train.npy"], paths["train.csv"], paths["split.csv"], tmp_path / "m.keras",
                             tmp_path / "labels.json", tmp_path / "history.csv", tmp_path / "backup",
                             ClassifierSettings.defaults(backbone="vgg19", weights=None, input="images",
                                                         input_size=None))
    assert not (tmp_path / "backup").exists()
