"""The metric-learning method's model: its layers, its sampling, training and the catalogue additions."""

import math
import re

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import encode, kill_after_epoch, run_to_the_end, started_epochs, textured
from test_classifier import baseline_map5, stage_inputs

from whaleid.learning.pretrained import MissingWeightsError
from whaleid.methods.metric_learning import additions, model
from whaleid.methods.metric_learning.retrieval import rank_catalogue
from whaleid.settings import CPU_PRESET, MetricLearningSettings

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def unit(angle):
    return [math.cos(angle), math.sin(angle)]


def test_arcface_widens_the_true_class_angle_by_the_margin_and_keeps_the_nearest_sub_centre():
    layer = model.SubCenterArcFace(n_classes=2, sub_centers=2, margin=0.3, scale=10.0)
    layer.build([(None, 2), (None,)])
    # class 0's sub-centres lie 0.5 and 1.0 rad from the embedding, class 1's 1.2 and 2.0 rad
    centres = np.array([unit(0.5), unit(1.0), unit(1.2), unit(2.0)], np.float32).T
    layer.centres.assign(centres * 3.0)  # their length must not matter
    embedding = np.array([[2.0, 0.0]], np.float32)
    as_class_0 = keras.ops.convert_to_numpy(layer([embedding, np.array([0])]))
    np.testing.assert_allclose(as_class_0, [[10 * math.cos(0.5 + 0.3), 10 * math.cos(1.2)]], rtol=1e-5)
    as_class_1 = keras.ops.convert_to_numpy(layer([embedding, np.array([1])]))
    np.testing.assert_allclose(as_class_1, [[10 * math.cos(0.5), 10 * math.cos(1.2 + 0.3)]], rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.cosines(embedding)), [[math.cos(0.5), math.cos(1.2)]],
                               rtol=1e-5)


def test_arcface_past_pi_minus_the_margin_penalises_linearly_instead_of_rewarding():
    layer = model.SubCenterArcFace(n_classes=1, sub_centers=1, margin=0.5, scale=1.0)
    layer.build([(None, 2), (None,)])
    layer.centres.assign(np.array([unit(3.0)], np.float32).T)  # 3.0 rad > pi - 0.5
    logit = float(keras.ops.convert_to_numpy(layer([np.array([[1.0, 0.0]], np.float32), np.array([0])]))[0, 0])
    assert logit == pytest.approx(math.cos(3.0) - 0.5 * math.sin(0.5), rel=1e-5)
    assert logit < math.cos(3.0)  # cos(3.0 + 0.5) would be larger: a reward for being far


def test_gem_pooling_is_the_mean_at_p_1_and_near_the_maximum_at_large_p():
    x = np.random.default_rng(0).random((2, 4, 4, 3)).astype(np.float32)
    mean = keras.ops.convert_to_numpy(model.GeneralizedMeanPooling(p=1.0)(x))
    np.testing.assert_allclose(mean, x.mean(axis=(1, 2)), rtol=1e-5)
    near_max = keras.ops.convert_to_numpy(model.GeneralizedMeanPooling(p=60.0)(x))
    np.testing.assert_allclose(near_max, x.max(axis=(1, 2)), rtol=0.06)
    assert (near_max <= x.max(axis=(1, 2)) + 1e-6).all()


def test_sampling_balances_individuals_by_the_power():
    labels = np.array([0] * 9 + [1])
    as_they_come = model.sampling_probabilities(labels, 0.0)
    np.testing.assert_allclose(as_they_come, np.full(10, 0.1))
    equal = model.sampling_probabilities(labels, 1.0)
    assert equal[labels == 0].sum() == pytest.approx(0.5) and equal[9] == pytest.approx(0.5)
    half = model.sampling_probabilities(labels, 0.5)
    assert half[labels == 0].sum() / half[9] == pytest.approx(3.0)  # sqrt(9) : sqrt(1)
    with pytest.raises(ValueError, match="balance_power"):
        model.sampling_probabilities(labels, 1.5)


def test_flipped_photos_become_new_identities_only_when_asked():
    labels_by_row = np.array([0, -1, 1, 0])
    rows, labels, flipped = model.training_examples(labels_by_row, 2, flip_as_new_identity=False)
    assert rows.tolist() == [0, 2, 3] and labels.tolist() == [0, 1, 0] and not flipped.any()
    rows, labels, flipped = model.training_examples(labels_by_row, 2, flip_as_new_identity=True)
    assert rows.tolist() == [0, 2, 3, 0, 2, 3]
    assert labels.tolist() == [0, 1, 0, 2, 3, 2] and flipped.tolist() == [False] * 3 + [True] * 3


def test_balanced_batches_draw_individuals_equally_and_mirror_the_flipped(tmp_path):
    # row r holds a ramp rising left to right, plus r: a mirrored one falls
    images = (np.arange(8)[None, None, :] * 10 + np.arange(20)[:, None, None] + np.zeros((1, 8, 1))).astype(np.uint8)
    np.save(tmp_path / "a.npy", images)
    labels_by_row = np.array([0] * 18 + [1, 2])
    rows, labels, flipped = model.training_examples(labels_by_row, 3, flip_as_new_identity=True)
    batches = model.balanced_batches(tmp_path / "a.npy", rows, labels, flipped, 30, balance_power=1.0, seed=1)
    seen = []
    for (x, label), target in batches.take(40):
        x, label = x.numpy(), label.numpy()
        assert (label == target.numpy()).all()
        row = x[:, 0, :, 0].min(axis=1).astype(int)  # the smallest pixel of a ramp is its row number
        assert (labels_by_row[row] == label % 3).all()  # each photo comes with its own label
        rising = x[:, 0, -1, 0] > x[:, 0, 0, 0]
        assert (rising == (label < 3)).all()  # mirrored exactly when its class is a flipped one
        seen += label.tolist()
    shares = np.bincount(np.asarray(seen) % 3, minlength=3) / len(seen)
    np.testing.assert_allclose(shares, [1 / 3] * 3, atol=0.05)  # 18 photos or 1: drawn alike
    again = next(iter(model.balanced_batches(tmp_path / "a.npy", rows, labels, flipped, 30, 1.0, seed=1)))
    first = next(iter(batches))
    np.testing.assert_array_equal(again[1].numpy(), first[1].numpy())  # reproducible for a seed
    # a training's stream ends with its last epoch, and holds the endless stream's first batches
    counted = [label.numpy() for _, label in model.balanced_batches(tmp_path / "a.npy", rows, labels, flipped, 30,
                                                                     1.0, seed=1, n_batches=3)]
    assert len(counted) == 3
    for one, other in zip(counted, [label.numpy() for _, label in batches.take(3)], strict=True):
        np.testing.assert_array_equal(one, other)


# What build_embedder took by default before its settings came from config.yaml: the tests of
# the layers below say what they need and leave the rest as it was.
EMBEDDER = dict(backbone="compact", weights=None, scale=(1.0,), input_size=None, width=32, embedding_size=128,
                dropout=0.2, augment=True, seed=0)


def small_settings(**changes) -> MetricLearningSettings:
    """The CPU's settings (presets/cpu.yaml over config.yaml: the compact network), at the scale of
    these tests: 32x32 photos at their own size (the preset's input_size 96 would only make them
    slower), float32, and the margin (0.3 radians) and learning rate (1e-3) these tests were
    written for, unless `changes` say otherwise."""
    return MetricLearningSettings.defaults(CPU_PRESET, **{"input_size": None, "mixed_precision": False,
                                                          "margin": 0.3, "learning_rate": 1e-3, **changes})


def test_test_time_views_average_without_flipping():
    embedder = model.build_embedder((32, 32, 1), **{**EMBEDDER, "width": 4, "embedding_size": 8, "augment": False})
    images = (textured(32, 32, 1, seed=2)[None]).astype(np.uint8)
    one = model.embed_rows(embedder, images, batch_size=32, views=1)
    direct = embedder.predict(images[..., None].astype(np.float32), verbose=0)
    np.testing.assert_allclose(one, direct / np.linalg.norm(direct, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
    several = model.embed_rows(embedder, images, batch_size=32, views=4)
    assert np.linalg.norm(several, axis=1) == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(several, one)
    assert all(zoom > 0 for zoom, _, _ in model.VIEWS)  # a negative zoom would mirror the photo
    with pytest.raises(ValueError, match="views"):
        model.embed_rows(embedder, images, batch_size=32, views=len(model.VIEWS) + 1)


def test_compact_backbone_refuses_pretrained_weights():
    with pytest.raises(ValueError, match="no pre-trained weights"):
        model.build_embedder((32, 32, 1), **{**EMBEDDER, "backbone": "compact", "weights": "imagenet"})


def test_missing_imagenet_weights_offline_say_which_file_goes_where(offline):
    with pytest.raises(MissingWeightsError,
                       match=r"place it, named mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"):
        model.build_embedder((32, 32, 1), **{**EMBEDDER, "backbone": "mobilenetv2", "weights": "imagenet"})


class EpochWeights(keras.callbacks.Callback):
    """Each finished epoch's weights of the training model, by variable path (the embedder's
    layers keep their names when it is saved and loaded): what the saved model is compared to."""

    def __init__(self):
        super().__init__()
        self.by_epoch: dict[int, dict[str, np.ndarray]] = {}

    def on_epoch_end(self, epoch, logs=None):
        self.by_epoch[epoch] = {variable.path: keras.ops.convert_to_numpy(variable) for variable in self.model.weights}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A compact embedding trained briefly on grey 32x32 photos of six easy individuals."""
    folder = tmp_path_factory.mktemp("embedding")
    paths, test_truth = stage_inputs(folder, kind="images")
    out = {name: folder / name for name in ("model.keras", "history.csv")}
    settings = small_settings(width=8, embedding_size=16, epochs=8, learning_rate=3e-3, warmup_epochs=1,
                              batch_size=8, augment=False,
                              new_whale_thresholds={"start": -0.2, "stop": 1.0, "step": 0.05}, seed=0)
    model.train_embedding(paths["train.npy"], paths["train.csv"], paths["split.csv"], out["model.keras"],
                          out["history.csv"], folder / "backup", settings)
    return {"folder": folder, "paths": paths, "test_truth": test_truth, **out}


@pytest.mark.slow
def test_training_separates_the_individuals_and_beats_the_baseline(trained):
    history = pd.read_csv(trained["history.csv"])
    assert history["epoch"].tolist() == list(range(8))
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    assert history["val_map5"].max() > baseline_map5(trained["paths"]["split.csv"]) + 0.2
    assert not (trained["folder"] / "backup").exists()

    embedder = model.load_embedder(trained["model.keras"])
    split = pd.read_csv(trained["paths"]["split.csv"])
    known = (split["id"] != "new_whale").to_numpy()
    embeddings = model.embed_rows(embedder, np.load(trained["paths"]["train.npy"])[known], batch_size=32, views=1)
    ids = split.loc[known, "id"].to_numpy()
    similarity = embeddings @ embeddings.T
    np.fill_diagonal(similarity, -np.inf)
    # each photo's nearest other photo shows the same individual
    assert np.mean(ids[similarity.argmax(axis=1)] == ids) >= 0.9
    same = ids[:, None] == ids[None, :]
    assert similarity[same & np.isfinite(similarity)].mean() > similarity[~same].mean() + 0.1


def validation_map5(embedder, paths, settings) -> float:
    """The validation MAP@5 of `embedder`, as training scores each epoch: the validation photos
    against the fit photos of known individuals (`ValidationRetrievalMap5`, with the run's settings)."""
    split = pd.read_csv(paths["split.csv"])
    fit = np.flatnonzero(((split["subset"] == "fit") & (split["id"] != "new_whale")).to_numpy())
    validation = np.flatnonzero((split["subset"] == "validation").to_numpy())
    scorer = model.ValidationRetrievalMap5(embedder, paths["train.npy"], fit, split["id"].to_numpy()[fit], validation,
                                           split["truth"].to_numpy()[validation], settings.thresholds,
                                           batch_size=settings.batch_size, aggregate=settings.aggregate,
                                           top_k=settings.top_k)
    logs = {}
    scorer.on_epoch_end(0, logs)
    return logs["val_map5"]


def weights_of(embedder) -> dict[str, np.ndarray]:
    return {variable.path: keras.ops.convert_to_numpy(variable) for variable in embedder.weights}


def with_weights(embedder, weights: dict[str, np.ndarray]):
    """`embedder` given the embedder's share of a training model's `weights` (by variable path)."""
    for variable in embedder.weights:
        variable.assign(weights[variable.path])
    return embedder


class SpoiledLastEpoch(keras.callbacks.Callback):
    """Spoils the last of `epochs`: the projection's weights are zeroed after each of its steps,
    so that every photo gets the same embedding and the epoch scores below the best. A run whose
    score only climbs ends on its best epoch, where the last epoch's weights pass for the best."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs, self.spoiling = epochs, False

    def on_epoch_begin(self, epoch, logs=None):
        self.spoiling = epoch == self.epochs - 1

    def on_train_batch_end(self, batch, logs=None):
        if self.spoiling:
            for variable in self.model.get_layer("projection").weights:
                variable.assign(np.zeros(variable.shape, variable.dtype))


class Killed(Exception):
    """Stands for a kill in the middle of a job."""


@pytest.mark.slow
def test_the_saved_embedder_is_the_best_epoch_and_embeds_arrays_in_resumable_chunks(trained, tmp_path, monkeypatch):
    paths, _ = stage_inputs(tmp_path, kind="images")
    settings = small_settings(width=4, embedding_size=8, epochs=3, batch_size=8, augment=False,
                              new_whale_thresholds={"start": 0.0, "stop": 0.5, "step": 0.5}, seed=0)
    epoch_weights = EpochWeights()
    model.train_embedding(paths["train.npy"], paths["train.csv"], paths["split.csv"], tmp_path / "model.keras",
                          tmp_path / "history.csv", tmp_path / "backup", settings,
                          callbacks=[SpoiledLastEpoch(settings.epochs), epoch_weights])
    history = pd.read_csv(tmp_path / "history.csv")
    best, last = int(history["val_map5"].idxmax()), len(history) - 1  # ties keep the earlier epoch
    assert history["val_map5"].iloc[last] < history["val_map5"].iloc[best]
    saved = model.load_embedder(tmp_path / "model.keras")
    for epoch, expected in ((best, True), (last, False)):
        kept = epoch_weights.by_epoch[epoch]
        same = all(np.array_equal(values, kept[path]) for path, values in weights_of(saved).items())
        assert same == expected, f"the saved weights are {'not ' * expected}those of epoch {epoch}"
    # scored again from the saved file as training scored each epoch: the best epoch's score,
    # which the last epoch's weights, given to the same model, do not reach
    assert validation_map5(saved, paths, settings) == pytest.approx(history["val_map5"].iloc[best], abs=1e-9)
    last_weights = with_weights(model.load_embedder(tmp_path / "model.keras"), epoch_weights.by_epoch[last])
    last_map5 = validation_map5(last_weights, paths, settings)
    assert last_map5 == pytest.approx(history["val_map5"].iloc[last], abs=1e-9)
    assert last_map5 < history["val_map5"].iloc[best]

    embedder = model.load_embedder(trained["model.keras"])
    assert embedder.get_layer("embedding").output.shape[-1] == 16
    test = np.load(trained["paths"]["test.npy"])
    assert len(test) == 15  # three chunks of five
    whole = tmp_path / "whole" / "test.npy"
    model.embed_array(embedder, trained["paths"]["test.npy"], whole, batch_size=4, views=2, chunk_size=5)
    uninterrupted = np.load(whole)

    # a job killed while it embeds its second chunk, then run again
    embed_rows, embedded = model.embed_rows, []

    def killed_after_the_first_chunk(embedder, values, **settings):
        if embedded:
            raise Killed
        embedded.append(len(values))
        return embed_rows(embedder, values, **settings)

    def counted(embedder, values, **settings):
        embedded.append(len(values))
        return embed_rows(embedder, values, **settings)

    out = tmp_path / "resumed" / "test.npy"
    monkeypatch.setattr(model, "embed_rows", killed_after_the_first_chunk)
    with pytest.raises(Killed):
        model.embed_array(embedder, trained["paths"]["test.npy"], out, batch_size=4, views=2, chunk_size=5)
    assert embedded == [5] and not out.exists()
    embedded.clear()
    monkeypatch.setattr(model, "embed_rows", counted)
    progress = []
    model.embed_array(embedder, trained["paths"]["test.npy"], out, batch_size=4, views=2, chunk_size=5,
                      progress=lambda done, total: progress.append((done, total)))
    monkeypatch.undo()
    assert embedded == [5, 5]  # the two chunks left, not the one done before the kill
    assert progress[0] == (5, 15)  # and it says where it starts
    embeddings = np.load(out)
    np.testing.assert_array_equal(embeddings, uninterrupted)

    assert embeddings.shape == (len(test), 16) and embeddings.dtype == np.float32
    np.testing.assert_allclose(embeddings, model.embed_rows(embedder, test, batch_size=32, views=2), atol=1e-5)
    # the catalogue's nearest individual is the right one for most test photos of known whales
    split = pd.read_csv(trained["paths"]["split.csv"])
    known = (split["id"] != "new_whale").to_numpy()
    catalogue = model.embed_rows(embedder, np.load(trained["paths"]["train.npy"])[known], batch_size=32, views=2)
    names = pd.read_csv(trained["paths"]["test.csv"])["image"]
    truths = [trained["test_truth"][n] for n in names]
    first = [ids[0] for ids in rank_catalogue(embeddings, catalogue, split.loc[known, "id"].tolist(),
                                               aggregate="max", top_k=1).ids]
    hits = [f == t for f, t in zip(first, truths) if t != "new_whale"]
    assert np.mean(hits) >= 0.75


@pytest.mark.slow
def test_photos_added_to_the_catalogue_are_checked_and_embedded(trained, tmp_path):
    folder = tmp_path / "new_photos"
    (folder / "train").mkdir(parents=True)
    rows = []
    for i in range(3):
        (folder / "train" / f"p{i}.jpg").write_bytes(encode(textured(48, 64, 3, seed=i)))
        rows.append((f"p{i}.jpg", "w_new"))
    (folder / "train" / "broken.jpg").write_bytes(b"not an image")
    (folder / "train" / "unknown.jpg").write_bytes(encode(textured(48, 64, 3, seed=9)))
    rows += [("broken.jpg", "w_new"), ("unknown.jpg", "new_whale"), ("absent.jpg", "w_new")]
    pd.DataFrame(rows, columns=["Image", "Id"]).to_csv(folder / "train.csv", index=False)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in folder.rglob("*"))

    # named as rule metric_learning_additions names them
    out = {name: tmp_path / "metric_learning" / "additions" / name
           for name in ("squares.npy", "embeddings.npy", "index.csv", "rejected.csv")}
    index = additions.embed_additions(folder / "train.csv", folder / "train", trained["model.keras"],
                                      images_out=out["squares.npy"], embeddings_out=out["embeddings.npy"],
                                      index_out=out["index.csv"], rejected_out=out["rejected.csv"],
                                      input_kind="images", size=32, max_pixels=100_000_000, batch_size=32, views=1,
                                      chunk_size=256, preprocess_chunk_size=64, n_jobs=1)
    assert index["image"].tolist() == ["p0.jpg", "p1.jpg", "p2.jpg"]
    assert pd.read_csv(out["index.csv"]).values.tolist() == [[f"p{i}.jpg", "w_new"] for i in range(3)]
    embeddings = np.load(out["embeddings.npy"])
    assert embeddings.shape == (3, 16) and np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    rejected = pd.read_csv(out["rejected.csv"]).set_index("image")
    assert set(rejected.index) == {"broken.jpg", "unknown.jpg", "absent.jpg"}
    assert rejected.loc["broken.jpg", "row"] == 5 and "broken.jpg" in rejected.loc["broken.jpg", "reason"]
    assert "new_whale" in rejected.loc["unknown.jpg", "reason"]
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.rglob("*")) == before  # read, never written


# Four epochs (see conftest.PAUSING_WORKER) on the stage inputs in its folder; the settings of
# small_settings.
TRAINING = """
from whaleid.methods.metric_learning.model import train_embedding
from whaleid.settings import CPU_PRESET, MetricLearningSettings
settings = MetricLearningSettings.defaults(CPU_PRESET, input_size=None, mixed_precision=False, margin=0.3,
                                           learning_rate=1e-3, width=4, embedding_size=8, epochs=4, batch_size=8,
                                           seed=0, new_whale_thresholds={"start": 0.0, "stop": 0.5, "step": 0.5})
train_embedding(folder / "train.npy", folder / "train.csv", folder / "split.csv", folder / "model.keras",
                folder / "history.csv", folder / "backup", settings, callbacks=[Pause()])
"""


def test_training_killed_mid_run_resumes_from_the_last_finished_epoch(tmp_path):
    stage_inputs(tmp_path, kind="images")
    killed_log = kill_after_epoch(TRAINING, tmp_path, 1)
    assert started_epochs(killed_log, "whaleid.methods.metric_learning.model", 4) == [0, 1]
    assert (tmp_path / "backup").is_dir() and not (tmp_path / "model.keras").exists()

    log_text = run_to_the_end(TRAINING, tmp_path)
    # the rerun started after the last finished epoch: a restart from 0 would write the same history
    assert started_epochs(log_text, "whaleid.methods.metric_learning.model", 4) == [2, 3]
    history = pd.read_csv(tmp_path / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2, 3]
    # the best epoch is chosen over all four, those before the kill included
    best = int(re.search(r"best epoch (\d+)", log_text).group(1))
    assert history.loc[best, "val_map5"] == history["val_map5"].max()
    assert not (tmp_path / "backup").exists()
    model.load_embedder(tmp_path / "model.keras")


def test_too_few_individuals_are_refused_before_training(tmp_path):
    paths, _ = stage_inputs(tmp_path, kind="images")
    split = pd.read_csv(paths["split.csv"])
    split.loc[split["id"] != "w_0", "subset"] = "validation"
    split.to_csv(paths["split.csv"], index=False)
    with pytest.raises(ValueError, match="1 known individuals"):
        model.train_embedding(paths["train.npy"], paths["train.csv"], paths["split.csv"], tmp_path / "m.keras",
                              tmp_path / "h.csv", tmp_path / "backup", small_settings(width=4, epochs=1))
