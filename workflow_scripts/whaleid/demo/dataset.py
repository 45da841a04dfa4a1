"""The demo dataset: synthetic fluke photos in the Kaggle whale-categorization-playground layout.

The dataset imitates the playground's statistics: about half of the known individuals have a
single train image, the rest a long-tailed count; about 8% of train images are ``new_whale``
(individuals seen once and never named); the test set mixes known individuals, individuals
absent from train (truth ``new_whale``) and near-duplicates of train photos; about 11% of images
are exactly 1050x600 and the rest have mixed sizes. With ``scene_sites`` the photos are scenes
(`scenes.render_scene_photo`) at that many sites.

Everything is a pure function of ``seed``: the same call writes byte-identical files.
`make_contact_sheet` draws a few individuals' photos side by side, for the README.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from whaleid.demo.flukes import FlukeShape, FlukeSprite, draw_fluke, sample_individual
from whaleid.demo.scenes import (
    DECOY_SHARE,
    REFERENCE_SIZE,
    SITE_MARGIN,
    PhotoSettings,
    decoy_settings,
    encode_jpeg,
    loose_crop,
    near_duplicate,
    render_photo,
    render_scene_photo,
    render_site,
    sample_photo_settings,
    site_view,
)
from whaleid.io.files import write_bytes
from whaleid.vocabulary import NEW_WHALE

# The share of photos exactly REFERENCE_SIZE, as on Kaggle.
REFERENCE_SIZE_SHARE = 0.11
# Streams of the generator tree below numpy.random.default_rng(seed); each consumer gets
# its own child so adding photos never perturbs the individuals and vice versa.
_STREAM_INDIVIDUAL = 1
_STREAM_PHOTO = 2
_STREAM_DUPLICATE = 3
_STREAM_SITE = 4
_STREAM_DECOY = 5
_STREAM_BACKDROP = 6


# --------------------------------------------------------------------------------------
# Dataset plan
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Photo:
    name: str
    split: str  # "train" or "test"
    individual: int  # index into the dataset's individuals
    label: str  # what the CSV says: a whale id or new_whale
    size: tuple[int, int]  # (width, height); unused for duplicates
    duplicate_of: int = -1  # index of the train photo this test photo re-encodes


def _unique_hex(rng: np.random.Generator, count: int, digits: int, taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        for value in rng.integers(0, 16**digits, count - len(out) + 4):
            name = f"{int(value):0{digits}x}"
            if name not in taken and len(out) < count:
                taken.add(name)
                out.append(name)
    return out


def _sample_image_size(rng: np.random.Generator, max_side: int) -> tuple[int, int]:
    """Kaggle-like mixed sizes (not the reference 1050x600), scaled down when max_side < 1050."""
    top = max(REFERENCE_SIZE[0], max_side)
    kind = rng.random()
    if kind < 0.08:  # portrait
        height = int(rng.integers(400, top + 1))
        width = int(round(height * rng.uniform(0.6, 0.85)))
    elif kind < 0.14:  # square-ish
        width = int(rng.integers(300, top + 1))
        height = int(round(width * rng.uniform(0.9, 1.1)))
    else:
        width = int(rng.integers(300, top + 1)) if rng.random() < 0.55 else REFERENCE_SIZE[0]
        aspect = rng.choice([1.33, 1.5, 1.78, 2.0]) if rng.random() < 0.5 else rng.uniform(1.15, 2.3)
        height = int(round(width / aspect))
    width, height = min(width, top), min(height, top)
    return _fit_max_side((width, height), max_side)


def _fit_max_side(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    factor = min(1.0, max_side / REFERENCE_SIZE[0])
    width, height = size
    width, height = max(16, int(round(width * factor))), max(16, int(round(height * factor)))
    if max(width, height) > max_side:
        k = max_side / max(width, height)
        width, height = max(16, int(round(width * k))), max(16, int(round(height * k)))
    return width, height


def _long_tailed_counts(rng: np.random.Generator, n_individuals: int, n_images: int) -> np.ndarray:
    """Images per known individual: ~half singletons, the rest 2+ with a few frequent ones."""
    # With too few images for half to repeat, more individuals stay singletons.
    n_multi = min(n_individuals - int(round(0.5 * n_individuals)), n_images - n_individuals)
    counts = np.ones(n_individuals, dtype=int)
    if n_multi > 0:
        counts[:n_multi] = 2
        # Log-normal popularity: most repeat a few times, a few are photographed a lot.
        weights = np.exp(rng.normal(0.0, 0.8, n_multi))
        counts[:n_multi] += rng.multinomial(n_images - n_individuals - n_multi, weights / weights.sum())
    return counts[rng.permutation(n_individuals)]


@dataclass
class _Plan:
    ids: list[str]  # one per individual; new_whale extras and unseen ones get internal ids
    photos: list[_Photo]
    n_known: int
    n_unseen_individuals: int


def _plan_dataset(
    rng: np.random.Generator,
    n_individuals: int,
    n_train: int,
    n_test: int,
    new_whale_fraction: float,
    unseen_fraction: float,
    duplicate_fraction: float,
    max_side: int,
) -> _Plan:
    n_new_whale = int(round(new_whale_fraction * n_train))
    n_named = n_train - n_new_whale
    if n_named < n_individuals:
        raise ValueError(
            f"{n_train} train images minus {n_new_whale} new_whale cannot show {n_individuals} individuals"
        )
    n_dup = min(int(round(duplicate_fraction * n_test)), n_named)
    n_unseen = int(round(unseen_fraction * n_test))
    n_seen = n_test - n_dup - n_unseen
    if n_seen < 0:
        raise ValueError("unseen_test_fraction + duplicate_test_fraction must not exceed 1")

    counts = _long_tailed_counts(rng, n_individuals, n_named)
    # Unseen individuals appear once or twice in test.
    unseen_sizes: list[int] = []
    while sum(unseen_sizes) < n_unseen:
        unseen_sizes.append(min(1 + int(rng.random() < 0.3), n_unseen - sum(unseen_sizes)))

    n_total_individuals = n_individuals + n_new_whale + len(unseen_sizes)
    taken: set[str] = set()
    ids = ["w_" + h for h in _unique_hex(rng, n_total_individuals, 7, taken)]
    names = _unique_hex(rng, n_train + n_test, 8, set())
    name_iter = iter(names)

    train: list[tuple[int, str]] = []
    for ind, count in enumerate(counts):
        train += [(ind, ids[ind])] * int(count)
    train += [(n_individuals + k, NEW_WHALE) for k in range(n_new_whale)]
    train = [train[i] for i in rng.permutation(len(train))]

    test: list[tuple[int, str, int]] = []
    singletons = np.flatnonzero(counts == 1)
    multis = np.flatnonzero(counts >= 2)
    multi_weights = np.sqrt(counts[multis]) / np.sqrt(counts[multis]).sum() if multis.size else None
    for _ in range(n_seen):
        # Like the playground: mostly whales with several train photos, some singletons.
        use_singleton = singletons.size > 0 and (multis.size == 0 or rng.random() < 0.2)
        ind = int(rng.choice(singletons)) if use_singleton else int(rng.choice(multis, p=multi_weights))
        test.append((ind, ids[ind], -1))
    first_unseen = n_individuals + n_new_whale
    for k, size in enumerate(unseen_sizes):
        test += [(first_unseen + k, NEW_WHALE, -1)] * size
    named_train = [i for i, (_, label) in enumerate(train) if label != NEW_WHALE]
    for src in rng.choice(named_train, size=n_dup, replace=False):
        test.append((train[int(src)][0], train[int(src)][1], int(src)))
    test = [test[i] for i in rng.permutation(len(test))]

    # Exactly the reference share of rendered photos gets 1050x600 (duplicates inherit theirs).
    entries = [(ind, label, "train", -1) for ind, label in train] + [(i, lab, "test", d) for i, lab, d in test]
    rendered = [k for k, entry in enumerate(entries) if entry[3] < 0]
    n_reference = int(round(REFERENCE_SIZE_SHARE * len(rendered)))
    reference = set(rng.choice(rendered, size=n_reference, replace=False).tolist())
    photos: list[_Photo] = []
    for k, (ind, label, split, dup) in enumerate(entries):
        if dup >= 0:
            size = (0, 0)
        elif k in reference:
            size = _fit_max_side(REFERENCE_SIZE, max_side)
        else:
            size = _sample_image_size(rng, max_side)
        photos.append(_Photo(next(name_iter) + ".jpg", split, ind, label, size, dup))
    return _Plan(ids, photos, n_individuals, len(unseen_sizes))


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def _csv_bytes(rows: list[tuple[str, str]], header: tuple[str, str] = ("Image", "Id")) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


@dataclass
class _Scenes:
    """The sites of a scene dataset (uint8 backdrops, `render_site`) and their decoys (one
    animal in no catalogue per site, drawn once), and which site each photo was taken at."""

    sites: list[np.ndarray]
    decoys: list[tuple[FlukeSprite, FlukeShape]]
    site_of: dict[str, int]

    @classmethod
    def make(cls, seed: int, n_sites: int, max_side: int, px_per_unit: float) -> _Scenes:
        side = int(math.ceil(SITE_MARGIN * max_side))
        sites, decoys = [], []
        for k in range(n_sites):
            sites.append(render_site(_child_rng(seed, _STREAM_BACKDROP, k), side, side))
            decoy = sample_individual(_child_rng(seed, _STREAM_DECOY, k), f"decoy_{k}")
            decoys.append((draw_fluke(decoy, px_per_unit), decoy.shape))
        return cls(sites, decoys, {})

    def photo(self, out: Path, photo: _Photo, site_rng: np.random.Generator, sprite: FlukeSprite,
              settings: PhotoSettings, rng: np.random.Generator, shape: FlukeShape) -> np.ndarray:
        """Render `photo` at a site drawn by `site_rng` and write its mask; the photo."""
        site = int(site_rng.integers(len(self.sites)))
        self.site_of[photo.name] = site
        settings = loose_crop(settings, site_rng)
        background = site_view(self.sites[site], site_rng, settings.width, settings.height)
        decoy = None
        if site_rng.random() < DECOY_SHARE:
            decoy_sprite, decoy_shape = self.decoys[site]
            decoy = (decoy_sprite, decoy_settings(settings, site_rng), decoy_shape)
        image, mask = render_scene_photo(sprite, settings, rng, shape, background, decoy)
        ok, png = cv2.imencode(".png", mask)
        if not ok:
            raise ValueError(f"could not encode the mask of {photo.name}")
        write_bytes(png.tobytes(), out / "masks" / photo.split / (Path(photo.name).stem + ".png"))
        return image


def _child_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, index)))


def generate_demo_dataset(
    out_dir: str | Path,
    *,
    n_individuals: int = 60,
    n_train_images: int = 300,
    n_test_images: int = 150,
    new_whale_train_fraction: float = 0.08,
    unseen_test_fraction: float = 0.3,
    duplicate_test_fraction: float = 0.05,
    difficulty: float = 0.5,
    max_side: int = 1050,
    scene_sites: int = 0,
    seed: int = 0,
    threads: int = 1,
) -> dict:
    """Write a Kaggle-playground-like dataset of fluke photos into ``out_dir``; return counts.

    Files: ``train/*.jpg``, ``test/*.jpg``, ``train.csv``, ``test_truth.csv`` and
    ``sample_submission.csv`` (all ``Image,Id``).  Files already in ``out_dir`` are left alone.

    With ``scene_sites`` > 0 the photos are scenes: each is taken at one of that many sites,
    before the site's shore (`render_site`), which recurs in every photo taken there whoever
    is in front; the fluke is a loose crop (`SCENE_SPAN`), and in `DECOY_SHARE` of the photos
    another animal shows at the edge. What the generator knows is written beside the data, for
    measuring, never for the workflow to read: ``scenes.csv`` (Image, site) and ``masks/<split>/
    <image>.png``, 255 where the animal is (near-duplicates of train photos have none).

    The individuals are drawn on `threads` threads; every photo's randomness is its own
    (seeded by its index), so the files are the same bytes on any number.
    """
    if n_individuals < 1 or n_train_images < 1 or n_test_images < 0:
        raise ValueError("need at least one individual and one train image")
    for name, value in [
        ("new_whale_train_fraction", new_whale_train_fraction),
        ("unseen_test_fraction", unseen_test_fraction),
        ("duplicate_test_fraction", duplicate_test_fraction),
        ("difficulty", difficulty),
    ]:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    if max_side < 32:
        raise ValueError("max_side must be at least 32")
    if scene_sites < 0:
        raise ValueError(f"scene_sites must be 0 (photos at sea) or more, got {scene_sites}")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")

    out = Path(out_dir)
    (out / "train").mkdir(parents=True, exist_ok=True)
    (out / "test").mkdir(parents=True, exist_ok=True)
    plan = _plan_dataset(
        np.random.default_rng(seed),
        n_individuals,
        n_train_images,
        n_test_images,
        new_whale_train_fraction,
        unseen_test_fraction,
        duplicate_test_fraction,
        max_side,
    )

    # One individual at a time so only one sprite is in memory.
    by_individual: dict[int, list[int]] = {}
    for index, photo in enumerate(plan.photos):
        if photo.duplicate_of < 0:
            by_individual.setdefault(photo.individual, []).append(index)
    px_per_unit = float(np.clip(0.32 * max_side, 40.0, 360.0))
    scenes = _Scenes.make(seed, scene_sites, max_side, px_per_unit) if scene_sites else None

    def draw_individual(ind_index: int) -> None:
        individual = sample_individual(_child_rng(seed, _STREAM_INDIVIDUAL, ind_index), plan.ids[ind_index])
        sprite = draw_fluke(individual, px_per_unit)
        for index in by_individual[ind_index]:
            photo = plan.photos[index]
            rng = _child_rng(seed, _STREAM_PHOTO, index)
            settings = sample_photo_settings(rng, photo.size[0], photo.size[1], difficulty)
            if scenes is None:
                image = render_photo(sprite, settings, rng, individual.shape)
            else:
                image = scenes.photo(out, photo, _child_rng(seed, _STREAM_SITE, index), sprite, settings, rng,
                                     individual.shape)
            write_bytes(encode_jpeg(image, settings.jpeg_quality), out / photo.split / photo.name)

    # Threads, not processes: the drawing is NumPy's and OpenCV's, which let go of the GIL, and
    # the scenes' backdrops are shared rather than copied to each worker.
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(draw_individual, sorted(by_individual)))
    if scenes is not None:
        write_bytes(_csv_bytes(sorted(scenes.site_of.items()), header=("Image", "site")), out / "scenes.csv")

    train_photos = [p for p in plan.photos if p.split == "train"]
    for index, photo in enumerate(plan.photos):
        if photo.duplicate_of >= 0:
            source = train_photos[photo.duplicate_of]
            source_bytes = (out / "train" / source.name).read_bytes()
            data = near_duplicate(source_bytes, _child_rng(seed, _STREAM_DUPLICATE, index), max_side)
            write_bytes(data, out / "test" / photo.name)

    test_photos = [p for p in plan.photos if p.split == "test"]
    train_rows = sorted((p.name, p.label) for p in train_photos)
    test_rows = sorted((p.name, p.label) for p in test_photos)
    frequency = Counter(label for _, label in train_rows if label != NEW_WHALE)
    top4 = [i for i, _ in sorted(frequency.items(), key=lambda kv: (-kv[1], kv[0]))[:4]]
    guess = " ".join([NEW_WHALE, *top4])
    write_bytes(_csv_bytes(train_rows), out / "train.csv")
    write_bytes(_csv_bytes(test_rows), out / "test_truth.csv")
    write_bytes(_csv_bytes([(name, guess) for name, _ in test_rows]), out / "sample_submission.csv")

    return {
        "individuals": plan.n_known,
        "train_images": len(train_rows),
        "test_images": len(test_rows),
        "singletons": sum(1 for c in frequency.values() if c == 1),
        "new_whale_train_images": sum(1 for _, label in train_rows if label == NEW_WHALE),
        "unseen_test_images": sum(1 for _, label in test_rows if label == NEW_WHALE),
        "unseen_test_individuals": plan.n_unseen_individuals,
        "duplicate_test_images": sum(1 for p in test_photos if p.duplicate_of >= 0),
    }


# --------------------------------------------------------------------------------------
# Contact sheet
# --------------------------------------------------------------------------------------


def _read_labels(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="") as fh:
        return [(row["Image"], row["Id"]) for row in csv.DictReader(fh)]


def _letterbox(image: np.ndarray, side: int) -> np.ndarray:
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    h, w = image.shape[:2]
    k = side / max(h, w)
    size = (max(1, int(round(w * k))), max(1, int(round(h * k))))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    cell = np.full((side, side, 3), 40, np.uint8)
    y, x = (side - size[1]) // 2, (side - size[0]) // 2
    cell[y : y + size[1], x : x + size[0]] = small
    return cell


def _label_cell(whale: str, n_photos: int, side: int) -> np.ndarray:
    """The row header: the id, scaled to fit the cell, and the photo count under it."""
    cell = np.full((side, side, 3), 245, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = 0.9 * side / cv2.getTextSize(whale, font, 1.0, 1)[0][0]
    left = int(0.05 * side)
    cv2.putText(cell, whale, (left, side // 2), font, scale, (0, 0, 0), max(1, int(scale * 1.5)), cv2.LINE_AA)
    below = side // 2 + int(40 * scale)
    cv2.putText(cell, f"{n_photos} photos", (left, below), font, scale * 0.8, (90, 90, 90), 1, cv2.LINE_AA)
    return cell


def make_contact_sheet(
    data_dir: str | Path,
    out_png: str | Path,
    *,
    n_individuals: int = 4,
    photos_per_individual: int = 4,
    thumb: int = 200,
) -> None:
    """PNG grid of the most photographed individuals: one row each, the id in a first column.

    The sheet is ``rows * thumb`` high and ``(1 + photos_per_individual) * thumb`` wide, where
    ``rows = min(n_individuals, known individuals)`` (one blank row if there are none);
    missing photos leave a dark cell.
    Individuals are ranked by photo count (train + test truth), ties by id.
    """
    data = Path(data_dir)
    photos: dict[str, list[Path]] = {}
    for split, csv_name in [("train", "train.csv"), ("test", "test_truth.csv")]:
        if not (data / csv_name).exists():
            continue
        for image, whale in sorted(_read_labels(data / csv_name)):
            if whale != NEW_WHALE:
                photos.setdefault(whale, []).append(data / split / image)
    ranked = sorted(photos, key=lambda whale: (-len(photos[whale]), whale))[:n_individuals]

    rows = []
    for whale in ranked:
        label = _label_cell(whale, len(photos[whale]), thumb)
        cells = [label]
        for path in photos[whale][:photos_per_individual]:
            cells.append(_letterbox(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), thumb))
        cells += [np.full((thumb, thumb, 3), 40, np.uint8)] * (1 + photos_per_individual - len(cells))
        rows.append(np.hstack(cells))
    sheet = np.vstack(rows) if rows else np.full((thumb, (1 + photos_per_individual) * thumb, 3), 245, np.uint8)
    ok, buf = cv2.imencode(".png", sheet)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(buf.tobytes(), out)
