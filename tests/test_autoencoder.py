import re

import cv2
import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from conftest import kill_after_epoch, run_to_the_end, started_epochs, textured

import whaleid.learning.autoencoder as ae
from whaleid.settings import AutoencoderSettings

SIZE = 32
# Keras converts its variables with np.array(copy=False) when saving weights: its warning, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def make_cache(path, n, size=SIZE, seed=0):
    images = np.stack([textured(size, size, channels=1, seed=seed + i, cell=4) for i in range(n)])
    np.save(path, images)
    return path


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    folder = tmp_path_factory.mktemp("caches")
    return [make_cache(folder / "train.npy", 24), make_cache(folder / "test.npy", 12, seed=100)]


def train(caches, out, **changes):
    """`train_autoencoder` with config.yaml's settings, but one epoch of batches of 8 unless `changes` say."""
    settings = AutoencoderSettings.defaults(**{"epochs": 1, "batch_size": 8, "seed": 0, **changes})
    model = ae.train_autoencoder(caches, out / "ae.keras", out / "history.csv", out / "backup", settings)
    return model


def test_layers_are_named_and_the_code_is_a_quarter_of_the_side():
    model = ae.build_autoencoder(SIZE)
    assert model.input.shape == (None, SIZE, SIZE, 1) and model.output.shape == (None, SIZE, SIZE, 1)
    assert ae.encoder_from(model).output.shape == (None, SIZE // 4, SIZE // 4, 3)
    names = [layer.name for layer in model.layers]
    assert names[:4] == ["image", "enc1_conv", "enc1_bn", "enc1_relu"]
    assert {"enc_pool1", "code", "dec_up1", "dec_up2", "reconstruction"} <= set(names)
    assert len(set(names)) == len(names) == 30
    assert not [n for n in names if re.search(r"conv2d|batch_normalization|activation|_\d+$", n)]


def test_output_stays_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = ae.build_autoencoder(SIZE)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("code").output.dtype == "float16"
    assert model.output.dtype == "float32"


@pytest.mark.parametrize("size", [30, 0, -8, 32.0])
def test_a_size_the_poolings_cannot_halve_twice_is_refused(size):
    with pytest.raises(ValueError, match="multiple of 4"):
        ae.build_autoencoder(size)


def test_loss_falls_on_a_fixed_batch(caches):
    keras.utils.set_random_seed(0)
    model = ae.build_autoencoder(SIZE)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    x = ae.to_model_input(np.load(caches[0])[:8])
    losses = [float(model.train_on_batch(x, x)) for _ in range(15)]
    assert losses[-1] < 0.7 * losses[0]


def test_rows_are_numbered_across_caches_and_split_without_overlap(caches):
    rows = ae.CacheRows(caches)
    assert len(rows) == 36 and rows.size == SIZE
    read = rows.read(np.array([30, 2, 25]))  # returned in row order
    assert np.array_equal(read, np.stack([np.load(caches[0])[2], np.load(caches[1])[1], np.load(caches[1])[6]]))
    train_rows, validation_rows = ae.split_rows(36, 0.25, seed=1)
    assert len(validation_rows) == 9 and not set(train_rows) & set(validation_rows)
    assert sorted([*train_rows, *validation_rows]) == list(range(36))
    assert np.array_equal(ae.split_rows(36, 0.25, seed=1)[1], validation_rows)


def test_dataset_streams_every_row_once_an_epoch_as_input_and_target(caches):
    dataset = ae.make_dataset(caches, np.arange(36), 8, shuffle=True, augment=False)
    epochs = [[(x.numpy(), y.numpy()) for x, y in dataset] for _ in range(2)]
    for batches in epochs:
        assert [len(x) for x, _ in batches] == [8, 8, 8, 8, 4]
        assert all(np.array_equal(x, y) and x.dtype == np.float32 and x.shape[1:] == (SIZE, SIZE, 1)
                   for x, y in batches)
        seen = np.concatenate([x for x, _ in batches])[..., 0]
        expected = ae.to_model_input(ae.CacheRows(caches).read(np.arange(36)))[..., 0]
        assert sorted(map(bytes, seen)) == sorted(map(bytes, expected))
    assert not np.array_equal(epochs[0][0][0], epochs[1][0][0])  # reshuffled


def test_augmentation_moves_images_and_fills_with_zeros(caches):
    plain = next(iter(ae.make_dataset(caches, np.arange(8), 8, shuffle=False, augment=False)))[0].numpy()
    moved = next(iter(ae.make_dataset(caches, np.arange(8), 8, shuffle=False, augment=True)))[0].numpy()
    assert moved.shape == plain.shape and not np.allclose(moved, plain)
    assert (moved == 0).mean() > (plain == 0).mean()  # the uncovered border is black


def augmented(images, monkeypatch, degrees, shift, flip=False, seed=0):
    monkeypatch.setattr(ae, "ROTATION_DEGREES", degrees)
    monkeypatch.setattr(ae, "SHIFT_FRACTION", shift)
    batches = tf.data.Dataset.from_tensors(images)
    return next(iter(ae.augment_batches(batches, augment=True, flip=flip, seed=seed)))[0].numpy()[..., 0]


def test_augmentation_rotates_about_the_centre_and_shifts_within_bounds(monkeypatch):
    dots = np.zeros((16, 17, 17), np.uint8)
    dots[:, 8, 8] = 255
    assert np.array_equal(augmented(dots, monkeypatch, 0.0, 0.0), dots / 255)  # no-op when both are 0
    rotated = augmented(dots, monkeypatch, 15.0, 0.0)
    assert (rotated[:, 8, 8] > 0.99).all()  # the centre does not move
    shifted = augmented(dots, monkeypatch, 0.0, 0.15)
    peaks = np.array([np.unravel_index(image.argmax(), image.shape) for image in shifted])
    offsets = np.abs(peaks - 8)
    assert offsets.max() <= 0.15 * 17 + 1 and offsets.max() >= 1


def test_flip_mirrors_some_images_and_only_when_asked(caches, monkeypatch):
    images = np.load(caches[0])[:16]
    expected = ae.to_model_input(images)[..., 0]
    assert np.array_equal(augmented(images, monkeypatch, 0.0, 0.0, flip=False), expected)
    flipped = augmented(images, monkeypatch, 0.0, 0.0, flip=True)
    kinds = ["same" if np.array_equal(f, e) else "mirror" if np.array_equal(f, e[:, ::-1]) else "other"
             for f, e in zip(flipped, expected)]
    assert set(kinds) == {"same", "mirror"}


def test_one_epoch_trains_saves_and_leaves_no_backup(caches, tmp_path):
    (tmp_path / "backup").mkdir()  # a leftover from other settings: discarded, not resumed
    (tmp_path / "backup" / "key.json").write_text('{"key": "other"}')
    model = train(caches, tmp_path, validation_fraction=0.25)
    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history["epoch"]) == [0] and {"loss", "val_loss"} <= set(history.columns)
    assert not (tmp_path / "backup").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ae.keras", "history.csv"]
    loaded = ae.load_autoencoder(tmp_path / "ae.keras")
    x = ae.to_model_input(np.load(caches[1])[:4])
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)

    ae.save_reconstruction_png(loaded, np.load(caches[1])[:3], tmp_path / "recon.png", per_row=2)
    picture = cv2.imread(str(tmp_path / "recon.png"))
    gap = 2
    assert picture.shape == (2 * SIZE + gap, 2 * 3 * SIZE + gap, 3)


def test_same_seed_gives_the_same_codes(caches, tmp_path):
    images = np.load(caches[1])
    codes = []
    for run in range(2):
        model = train(caches, tmp_path / str(run), epochs=2, seed=3, validation_fraction=0)
        codes.append(ae.encode_images(ae.encoder_from(model), images, batch_size=4))
    assert np.array_equal(codes[0], codes[1])
    keras.utils.set_random_seed(3)
    untrained = ae.encode_images(ae.encoder_from(ae.build_autoencoder(SIZE)), images, batch_size=4)
    assert not np.allclose(codes[0], untrained, atol=1e-2)  # the runs did learn something


# Four epochs (see conftest.PAUSING_WORKER); the caches are its further arguments.
TRAINING = """
from whaleid.learning.autoencoder import train_autoencoder
from whaleid.settings import AutoencoderSettings
train_autoencoder(arguments, folder / "ae.keras", folder / "history.csv", folder / "backup",
                  AutoencoderSettings.defaults(epochs=4, batch_size=8, validation_fraction=0.2, seed=0),
                  callbacks=[Pause()])
"""


def test_training_killed_mid_run_resumes_from_the_last_finished_epoch(caches, tmp_path):
    killed_log = kill_after_epoch(TRAINING, tmp_path, 1, *caches, timeout=120)
    assert started_epochs(killed_log, "whaleid.learning.autoencoder", 4) == [0, 1]
    assert (tmp_path / "backup").is_dir() and not (tmp_path / "ae.keras").exists()

    log_text = run_to_the_end(TRAINING, tmp_path, *caches, timeout=120)
    assert started_epochs(log_text, "whaleid.learning.autoencoder", 4) == [2, 3]  # the finished epochs were not redone
    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history["epoch"]) == [0, 1, 2, 3]
    assert not (tmp_path / "backup").exists()
    ae.load_autoencoder(tmp_path / "ae.keras")


def test_encoded_cache_matches_predict_and_resumes(caches, tmp_path, monkeypatch):
    keras.utils.set_random_seed(0)
    encoder = ae.encoder_from(ae.build_autoencoder(SIZE))
    out = tmp_path / "codes.npy"

    def stop(done, total):
        if done:  # the first call, with nothing done, only says where the job starts
            raise KeyboardInterrupt  # as if killed once the first chunk is recorded

    with pytest.raises(KeyboardInterrupt):
        ae.encode_cache(encoder, caches[0], out, batch_size=4, chunk_size=8, progress=stop)
    assert not out.exists()

    encoded_rows = []
    real = ae.encode_images
    monkeypatch.setattr(ae, "encode_images", lambda enc, images, bs: encoded_rows.append(len(images))
                        or real(enc, images, bs))
    ae.encode_cache(encoder, caches[0], out, batch_size=4, chunk_size=8)
    assert encoded_rows == [8, 8]  # rows 8..23 only: the first chunk was kept

    codes = np.load(out, mmap_mode="r")
    assert codes.shape == (24, SIZE // 4, SIZE // 4, 3) and codes.dtype == np.float16
    expected = encoder.predict(ae.to_model_input(np.load(caches[0])), batch_size=4, verbose=0)
    np.testing.assert_array_equal(codes, expected.astype(np.float16))
    assert not list(tmp_path.glob("*.partial.*"))


def test_encoder_for_another_size_is_refused(caches, tmp_path):
    encoder = ae.encoder_from(ae.build_autoencoder(64))
    with pytest.raises(ValueError, match="32x32"):
        ae.encode_cache(encoder, caches[0], tmp_path / "codes.npy", batch_size=4, chunk_size=8)


def test_unknown_optimizer_is_named(caches, tmp_path):
    with pytest.raises(ValueError, match="adam, published"):
        train(caches, tmp_path, optimizer="sgd")
