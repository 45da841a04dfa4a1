"""The local method's keypoints: SIFT keypoints and their descriptors of each photo, cached per split.

The `local` method identifies a photo the way HotSpotter and other photo-identification tools
do: by matching the distinctive spots of its pattern to those of catalogue photos, and
checking that the matches agree on one geometric transform (`geometry`). That needs no
training and works from a single catalogue photo.

Keypoints are found on the preprocessed squares (greyscale, zero-padded to a centred square),
resized to `image_size`; or, where `max_side` is set, on the original photos decoded with their
long side at most `max_side` (`photo_at_max_side`), for photos whose pattern is finer than a
square of the preprocessing's size keeps: a 3,000-pixel photo of a striped flank is not matched
at 448 pixels, upsampled from an 896-pixel square. Either way positions are given in one square
frame, the photo centred as preprocessing centres it, so all photos' positions compare.
Keypoints near the padding (or the photo's edge) are dropped: the edge between photo and
padding is the strongest corner in the image and belongs to no whale. Where `upright`, every
keypoint's orientation is set to 0 before its descriptor is computed, which makes descriptors
more distinctive when photos share an orientation, as catalogue photos of flukes and heads
roughly do; the geometric check still allows the rotation left. Keypoints common to many
individuals (water, glare) are dealt with when matching, which weighs each match by how much
closer it is than the photo's unrelated neighbours (LNBNN), and by how likely both keypoints
lie on the animal (`foreground`).

The cache of a split is one .npy array of records (N photos, `detected` slots), each slot
the keypoint's position (`xy`, pixels of the square of side `KeypointSettings.side`; NaN in
unused slots) and its SIFT descriptor (`descriptor`, 128 uint8). Row i is row i of the
preprocess cache (or of its index, `preprocess.cache_index`, where the photos are read), whose
index names it. Built in chunks in parallel, and a killed job resumes (`arrays.fill_in_chunks`);
a split's photos may be shared out among jobs (`rows`), their caches then joined in order
(`join_keypoint_caches`).

**A budget spent on the animal.** Where `detected_per_kept` is above 1, more keypoints are found
than are matched, and each photo keeps the `n_features` the foreground model finds likeliest on
the animal (`keep_on_animal`); that model learns from the `n_features` strongest of each fit
photo (`foreground`), which are what a cache of `n_features` would have held. In a large photo of
an animal in a scene, the strongest keypoints are mostly on grass, bush and rock: a larger frame
spends the same budget on more of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from whaleid.data.images import jpeg_reduction, read_gray, shrink_to, stretch_contrast
from whaleid.io.arrays import fill_in_chunks, write_rows
from whaleid.io.files import atomic_output
from whaleid.io.tables import read_table
from whaleid.settings import KeypointSettings

DESCRIPTOR_SIZE = 128


def feature_dtype() -> np.dtype:
    """One keypoint slot of the cache: its position and its SIFT descriptor."""
    return np.dtype([("xy", np.float32, (2,)), ("descriptor", np.uint8, (DESCRIPTOR_SIZE,))])


def content_mask(square: np.ndarray, border: float) -> np.ndarray:
    """255 where keypoints may lie in a preprocessed `square`: inside the photo, away from
    the zero padding and the edges by `border` of the side; 0 elsewhere. The photo is the
    bounding box of the rows and columns that are not all zero (preprocessing pads with zeros)."""
    mask = np.zeros(square.shape, np.uint8)
    rows = np.flatnonzero(square.max(axis=1) > 0)
    columns = np.flatnonzero(square.max(axis=0) > 0)
    if not len(rows) or not len(columns):
        return mask
    margin = int(round(border * square.shape[0]))
    top, bottom = rows[0] + margin, rows[-1] - margin
    left, right = columns[0] + margin, columns[-1] - margin
    if top <= bottom and left <= right:
        mask[top:bottom + 1, left:right + 1] = 255
    return mask


def _sift_features(image: np.ndarray, mask: np.ndarray, settings: KeypointSettings) -> tuple[np.ndarray, np.ndarray]:
    """The `settings.detected` strongest SIFT keypoints of `image` where `mask` allows:
    positions (n, 2) float32 in its pixels, descriptors (n, 128) uint8, strongest first."""
    # All of them first: OpenCV keeps its `nfeatures` strongest before it applies the mask, so
    # the padding's edge, masked out, would use up the budget.
    sift = cv2.SIFT_create(nfeatures=0, contrastThreshold=settings.contrast_threshold)
    keypoints = sorted(sift.detect(image, mask), key=lambda k: -k.response)
    if settings.upright and keypoints:
        # A point found at two orientations is one point once upright: its strongest copy stays.
        _, first = np.unique(np.array([k.pt for k in keypoints], np.float32), axis=0, return_index=True)
        keypoints = [keypoints[i] for i in np.sort(first)]
    keypoints = keypoints[:settings.detected]
    if settings.upright:
        for keypoint in keypoints:
            keypoint.angle = 0.0
    if not keypoints:
        return np.zeros((0, 2), np.float32), np.zeros((0, DESCRIPTOR_SIZE), np.uint8)
    keypoints, descriptors = sift.compute(image, keypoints)
    xy = np.array([k.pt for k in keypoints], np.float32).reshape(-1, 2)
    # OpenCV's SIFT descriptors are whole numbers 0..255 held as float32.
    return xy, np.clip(np.rint(descriptors), 0, 255).astype(np.uint8)


def extract_features(square: np.ndarray, settings: KeypointSettings) -> tuple[np.ndarray, np.ndarray]:
    """The keypoints of one preprocessed greyscale `square` (uint8, side x side): positions
    (n, 2) float32 in pixels of the `settings.image_size` square, and SIFT descriptors
    (n, 128) uint8, strongest first, n <= `settings.detected`."""
    image = np.asarray(square)
    if image.ndim != 2 or image.shape[0] != image.shape[1] or image.dtype != np.uint8:
        raise ValueError(f"expected a square greyscale uint8 image, got shape {image.shape} {image.dtype}")
    size = settings.image_size
    if image.shape[0] != size:
        shrink = image.shape[0] > size
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return _sift_features(image, content_mask(image, settings.border), settings)


def photo_at_max_side(path: str | Path, max_side: int, width: int = 0, height: int = 0) -> np.ndarray:
    """One original photo as the local method reads it where `max_side` is set: greyscale, its
    long side shrunk to `max_side` (never enlarged), contrast stretched as preprocessing
    stretches. `width` and `height` (the manifest's) let a large JPEG be decoded at reduced
    scale, which is several times faster than decoding it whole."""
    reduction = jpeg_reduction(width, height, max_side) if width and height else 1
    return stretch_contrast(shrink_to(read_gray(Path(path).read_bytes(), reduction), max_side))


def extract_photo_features(photo: np.ndarray, settings: KeypointSettings) -> tuple[np.ndarray, np.ndarray]:
    """The keypoints of one greyscale `photo` (uint8, any shape, `photo_at_max_side`), found on
    it as it is, away from its edges by `settings.border` of its long side: positions (n, 2)
    float32 in pixels of the `settings.max_side` square that centres the photo as preprocessing
    does (so they compare with every other photo's, whatever its shape and resolution), and
    SIFT descriptors (n, 128) uint8, strongest first, n <= `settings.detected`."""
    image = np.asarray(photo)
    if image.ndim != 2 or image.dtype != np.uint8 or not image.size:
        raise ValueError(f"expected a greyscale uint8 photo, got shape {image.shape} {image.dtype}")
    if settings.max_side is None:
        raise ValueError("keypoints of the original photo need max_side")
    height, width = image.shape
    long_side = max(height, width)
    mask = np.zeros(image.shape, np.uint8)
    margin = int(round(settings.border * long_side))
    mask[margin:height - margin, margin:width - margin] = 255
    xy, descriptors = _sift_features(image, mask, settings)
    # into the square of the long side, the photo centred, then scaled to max_side
    offset = np.array([(long_side - width) / 2, (long_side - height) / 2], np.float32)
    return ((xy + offset) * (settings.max_side / long_side)).astype(np.float32), descriptors


def _records(found: Sequence[tuple[np.ndarray, np.ndarray]], slots: int) -> np.ndarray:
    """Cache rows of each photo's (positions, descriptors): (N, slots) records
    (`feature_dtype`), unused slots with NaN positions and zero descriptors."""
    rows = np.zeros((len(found), slots), feature_dtype())
    rows["xy"] = np.nan
    for row, (xy, descriptors) in zip(rows, found):
        row["xy"][:len(xy)] = xy
        row["descriptor"][:len(xy)] = descriptors
    return rows


def feature_rows(squares: np.ndarray, settings: KeypointSettings) -> np.ndarray:
    """The cache rows of `squares` (N, side, side): (N, `settings.detected`) records
    (`feature_dtype`), unused slots with NaN positions and zero descriptors."""
    return _records([extract_features(square, settings) for square in squares], settings.detected)


def photo_feature_rows(paths: Sequence[str | Path], sizes: Sequence[tuple[int, int]], settings: KeypointSettings
                       ) -> np.ndarray:
    """The cache rows of the original photos at `paths` (`sizes`: each one's width and height,
    or zeros), found at `settings.max_side` (`extract_photo_features`)."""
    return _records([extract_photo_features(photo_at_max_side(path, settings.max_side, width, height), settings)
                     for path, (width, height) in zip(paths, sizes)], settings.detected)


def unpack(row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One photo's (positions (n, 2), descriptors (n, 128) uint8) from its cache row."""
    used = ~np.isnan(row["xy"][:, 0])
    return row["xy"][used], row["descriptor"][used]


def unpack_weights(row: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """One photo's keypoint weights (n,) float32 from its cache row and its row of weights
    (None: every keypoint weighs 1), in `unpack`'s order."""
    used = ~np.isnan(row["xy"][:, 0])
    if weights is None:
        return np.ones(int(used.sum()), np.float32)
    return np.asarray(weights, np.float32)[used]


def _fill_chunk(cache_path: str, settings: KeypointSettings, first: int, partial_path: str, start: int,
                stop: int) -> None:
    # One OpenCV thread per worker: joblib already keeps every core busy. Put back after, for
    # with one job this runs in the caller's process.
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        squares = np.load(cache_path, mmap_mode="r")[first + start:first + stop]
        write_rows(partial_path, start, feature_rows(squares, settings))
    finally:
        cv2.setNumThreads(threads)


def build_keypoint_cache(cache_path: str, out_path: str, settings: KeypointSettings, *, n_jobs: int, chunk_size: int,
                         rows: range | None = None, progress=None) -> None:
    """The keypoints of the squares `rows` (default all) of the preprocess cache at `cache_path`
    (.npy, (N, side, side) uint8) into `out_path` (.npy, (len(rows), detected) records),
    `n_jobs` chunks at a time. `progress(done, total)` is called as chunks finish. Resumes after
    a kill, unless the squares were rebuilt since (`arrays.fill_in_chunks`)."""
    squares = np.load(cache_path, mmap_mode="r")
    if squares.ndim != 3 or squares.shape[1] != squares.shape[2] or squares.dtype != np.uint8:
        raise ValueError(f"{cache_path}: expected preprocessed squares (N, side, side) uint8, got shape "
                         f"{squares.shape} {squares.dtype}")
    rows = range(len(squares)) if rows is None else rows
    if rows.step != 1 or not 0 <= rows.start <= rows.stop <= len(squares):
        raise ValueError(f"{cache_path}: rows {rows.start} to {rows.stop} of a cache of {len(squares)} squares")
    fill_in_chunks(out_path, (len(rows), settings.detected), feature_dtype(), chunk_size, inputs=[cache_path],
                   settings={**asdict(settings), "rows": [rows.start, rows.stop]},
                   fill_chunk=partial(_fill_chunk, str(cache_path), settings, rows.start),
                   n_jobs=n_jobs, progress=progress)


def _fill_photo_chunk(paths: list[str], sizes: list[tuple[int, int]], settings: KeypointSettings, partial_path: str,
                      start: int, stop: int) -> None:
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        write_rows(partial_path, start, photo_feature_rows(paths[start:stop], sizes[start:stop], settings))
    finally:
        cv2.setNumThreads(threads)


def build_photo_keypoint_cache(paths: Sequence[str | Path], out_path: str, settings: KeypointSettings, *,
                               sizes: Sequence[tuple[int, int]] | None = None, n_jobs: int, chunk_size: int,
                               progress=None) -> None:
    """The keypoints of the original photos at `paths`, in order, found at `settings.max_side`
    (`photo_feature_rows`; `sizes`: each one's width and height from the manifest, to decode
    large JPEGs at reduced scale), into `out_path` (.npy, (N, detected) records), `n_jobs`
    chunks at a time. Resumes after a kill, unless a photo or a setting changed since
    (`arrays.fill_in_chunks`)."""
    if settings.max_side is None:
        raise ValueError("keypoints of the original photos need max_side")
    paths = [str(path) for path in paths]
    sizes = [(int(w), int(h)) for w, h in sizes] if sizes is not None else [(0, 0)] * len(paths)
    fill_in_chunks(out_path, (len(paths), settings.detected), feature_dtype(), chunk_size, inputs=paths,
                   settings={**asdict(settings), "sizes": sizes},
                   fill_chunk=partial(_fill_photo_chunk, paths, sizes, settings), n_jobs=n_jobs, progress=progress)


def join_keypoint_caches(parts: Sequence[str | Path], out_path: str | Path) -> int:
    """The keypoint caches of consecutive chunks of a split's photos (`parts`, in order) written
    one after another as the split's cache at `out_path`, a part at a time; the photos it holds."""
    caches = [read_keypoint_cache(str(part)) for part in parts]
    slots = {cache.shape[1] for cache in caches}
    if len(slots) > 1:
        raise ValueError(f"keypoint caches of {sorted(slots)} slots to join: {', '.join(map(str, parts))} were made "
                         "with different n_features; rerun local_keypoints_chunk")
    n_photos = sum(len(cache) for cache in caches)
    with atomic_output(out_path) as partial_path:
        joined = np.lib.format.open_memmap(partial_path, mode="w+", dtype=feature_dtype(),
                                           shape=(n_photos, slots.pop() if slots else 0))
        start = 0
        for cache in caches:
            joined[start:start + len(cache)] = cache
            start += len(cache)
        joined.flush()
        del joined
    return n_photos


def read_keypoint_cache(path: str) -> np.ndarray:
    """A split's keypoint cache (N, n_features) records, memory-mapped, its layout checked."""
    features = np.load(path, mmap_mode="r")
    if features.dtype != feature_dtype() or features.ndim != 2:
        raise ValueError(f"{path}: expected keypoint records (photos, slots) of {feature_dtype()}, got shape "
                         f"{features.shape} {features.dtype}")
    return features


def read_keypoints(keypoints_npy: str | Path, index_csv: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """A split's keypoint records (memory-mapped) and their index (row i names photo i)."""
    keypoints = read_keypoint_cache(str(keypoints_npy))
    index = read_table(index_csv)
    if len(keypoints) != len(index):
        raise ValueError(f"{keypoints_npy} holds keypoints of {len(keypoints)} photos, but {index_csv} lists "
                         f"{len(index)}: expected one row per photo")
    return keypoints, index


def read_weights(weights_npy: str | Path, keypoints: np.ndarray) -> np.ndarray:
    """A split's keypoint weights (`foreground`), (photos, slots) float32, checked against its
    keypoint cache."""
    weights = np.load(weights_npy, mmap_mode="r")
    if weights.shape != keypoints.shape:
        raise ValueError(f"{weights_npy}: keypoint weights of shape {weights.shape} for keypoints of "
                         f"{keypoints.shape}: made from another keypoint cache; rerun local_foreground")
    return weights


def keep_on_animal(keypoints: np.ndarray, weights: np.ndarray, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Of each photo's keypoint records `keypoints` (photos, slots) and their weights (same shape:
    P(on the animal), `foreground`), the `n_features` of highest weight (of equal weights the
    stronger), still strongest first: (records, weights), (photos, n_features); unused slots
    stay NaN-positioned, weight 0, last."""
    keypoints, weights = np.asarray(keypoints), np.asarray(weights, np.float32)
    if keypoints.shape != weights.shape:
        raise ValueError(f"keypoints of shape {keypoints.shape} and weights of {weights.shape}")
    used = ~np.isnan(keypoints["xy"][..., 0])
    slots = np.broadcast_to(np.arange(keypoints.shape[1]), keypoints.shape)
    # used first, then by weight, then strongest first; the kept put back in the order found
    order = np.lexsort((slots, -np.where(used, weights, 0), ~used), axis=1)[:, :n_features]
    kept = np.sort(order, axis=1)
    records = np.take_along_axis(keypoints, kept, axis=1)
    kept_used = np.take_along_axis(used, kept, axis=1)
    kept_weights = np.where(kept_used, np.take_along_axis(weights, kept, axis=1), 0).astype(np.float32)
    if records.shape[1] < n_features:  # fewer slots than kept: the rest unused
        pad = np.zeros((len(records), n_features - records.shape[1]), feature_dtype())
        pad["xy"] = np.nan
        records = np.concatenate([records, pad], axis=1)
        kept_weights = np.concatenate([kept_weights, np.zeros(pad.shape, np.float32)], axis=1)
    return records, kept_weights


def write_kept_keypoints(keypoints_npy: str | Path, weights_npy: str | Path, n_features: int,
                         keypoints_out: str | Path, weights_out: str | Path, chunk_size: int = 1024) -> int:
    """`keep_on_animal` of the keypoint cache at `keypoints_npy` with its weights at
    `weights_npy`, a chunk of photos at a time, written as a keypoint cache at `keypoints_out`
    with its weights at `weights_out`; the photos written."""
    keypoints = read_keypoint_cache(str(keypoints_npy))
    weights = read_weights(weights_npy, keypoints)
    with atomic_output(keypoints_out) as records_partial, atomic_output(weights_out) as weights_partial:
        records = np.lib.format.open_memmap(records_partial, mode="w+", dtype=feature_dtype(),
                                            shape=(len(keypoints), n_features))
        kept_weights = np.lib.format.open_memmap(weights_partial, mode="w+", dtype=np.float32,
                                                 shape=(len(keypoints), n_features))
        for start in range(0, len(keypoints), chunk_size):
            stop = start + chunk_size
            records[start:stop], kept_weights[start:stop] = keep_on_animal(keypoints[start:stop],
                                                                           weights[start:stop], n_features)
        records.flush()
        kept_weights.flush()
        del records, kept_weights
    return len(keypoints)
