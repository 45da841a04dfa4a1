"""Local-feature speed: keypoint extraction with 1 and 2 jobs, and verified queries against catalogues.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/local.py [--images 96] \
        [--catalogue-sizes 1000 10000] [--queries 50]

(a) Extraction: `--images` demo fluke photos (rendered into a temporary folder) are squared
as preprocessing does, at `--side`, into a preprocess cache; `local.keypoints.build_keypoint_cache`
runs on it with 1 and with 2 jobs (`KeypointSettings` from config.yaml, `--image-size`), each run into a
fresh output (an existing one would be resumed). It prints images/s side by side, with the ratio.

(b) Queries: `local.catalogue.match_queries` (2 jobs, `MatchSettings` from config.yaml) against a
`LocalCatalogue` of each of the two `--catalogue-sizes`. Both catalogues are made the same way,
so that their difference is the size alone: the keypoints extracted in (a), at most
`--features` a photo, photo i a copy of extracted photo i mod `--images` whose descriptors'
dimensions are reordered (a different "disguise" per copy, so copies do not match each other);
ids are drawn among size/4 individuals. The queries are `--queries` catalogue photos again,
their keypoints moved by a small similarity transform, their descriptors noised and a fifth of
them dropped, so that verification runs on true matches. It prints the catalogue's build time
(RootSIFT, index training and adding), seconds and ms per query, the shortlist step alone (the
descriptor search and votes) and the rest (verification), and how often the first answer is the
source photo's individual.

`--features` (at most this many keypoints a catalogue photo) defaults to 400, about what real
photos yield at the extractor's 500 (demo photos about 430). Building the index is mostly the
inverted lists' k-means (`local.catalogue.LISTS_PER_ROOT`, `TRAIN_PER_LIST`): 66 s for 10,000
such photos (3.7 million descriptors) on 2 cores.

The last line is `query_ms_1k X query_ms_10k Y`: ms per query at the smaller and the larger
catalogue size (1,000 and 10,000 photos by default).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from timing import best_seconds

from whaleid.data.preprocess import preprocess_file
from whaleid.demo.dataset import generate_demo_dataset
from whaleid.identification.candidates import N_CANDIDATES
from whaleid.methods.local.catalogue import LocalCatalogue, match_queries
from whaleid.methods.local.geometry import root_sift
from whaleid.methods.local.keypoints import DESCRIPTOR_SIZE, build_keypoint_cache, unpack
from whaleid.methods.local.pooling import individual_scores
from whaleid.settings import KeypointSettings, MatchSettings

# OpenCV's SIFT descriptor: a 4x4 grid of cells, 8 orientation bins each, cell-major.
GRID, BINS = 4, 8


def demo_squares(folder: Path, n_images: int, side: int, seed: int) -> Path:
    """A preprocess cache (.npy, (n_images, side, side) uint8) of demo photos, written in `folder`."""
    # photos twice the square's side: preprocessing shrinks them anyway, and smaller ones render faster
    generate_demo_dataset(folder / "demo", n_individuals=max(1, n_images // 4), n_train_images=n_images,
                          n_test_images=0, max_side=2 * side, seed=seed)
    paths = sorted((folder / "demo" / "train").glob("*.jpg"))
    cache_path = folder / "squares.npy"
    np.save(cache_path, np.stack([preprocess_file(path, side) for path in paths]))
    return cache_path


def extraction_seconds(cache_path: Path, out_path: Path, settings: KeypointSettings, jobs: int, chunk_size: int
                       ) -> tuple[float, np.ndarray]:
    """Seconds of one `build_keypoint_cache` run into `out_path` (deleted after) and its keypoints."""
    start = time.perf_counter()
    build_keypoint_cache(str(cache_path), str(out_path), settings, n_jobs=jobs, chunk_size=chunk_size)
    seconds = time.perf_counter() - start
    features = np.load(out_path)
    out_path.unlink()
    return seconds, features


def measure_extraction(cache_path: Path, folder: Path, settings: KeypointSettings, chunk_size: int, repeats: int
                       ) -> np.ndarray:
    """Print images/s of build_keypoint_cache with 1 and 2 jobs; return the keypoints it found."""
    squares = np.load(cache_path, mmap_mode="r")
    n_images = len(squares)
    # start the worker pool on two photos, so that no timed run pays for it
    np.save(folder / "warm_squares.npy", squares[:2])
    extraction_seconds(folder / "warm_squares.npy", folder / "warm.npy", settings, 2, 1)
    best = {1: float("inf"), 2: float("inf")}
    for repeat in range(repeats):
        for jobs in best:
            seconds, features = extraction_seconds(cache_path, folder / f"features_{jobs}_{repeat}.npy", settings,
                                                   jobs, chunk_size)
            best[jobs] = min(best[jobs], seconds)
    found = (~np.isnan(features["xy"][:, :, 0])).sum(axis=1)
    print(f"extraction: {n_images} demo photos as {settings.image_size}x{settings.image_size} squares, "
          f"chunks of {chunk_size}, {asdict(settings)}")
    print(f"  keypoints a photo: mean {found.mean():.0f}, min {found.min()}, max {found.max()}")
    print(f"  {'jobs':<6} {'seconds':>8} {'images/s':>9}")
    for jobs, seconds in best.items():
        print(f"  {jobs:<6} {seconds:8.2f} {n_images / seconds:9.1f}")
    print(f"  2 jobs / 1 job: {best[1] / best[2]:.2f}x")
    return features


def descriptor_disguises(n_disguises: int, rng: np.random.Generator) -> np.ndarray:
    """`n_disguises` reorderings (n_disguises, 128) of the SIFT dimensions, the first the identity:
    cells swapped among the centre, edge and corner cells of the grid, orientation bins rotated."""
    # Swapping only like cells keeps SIFT's centre-weighted layout, so the copies' descriptors
    # are spread like real ones, yet a copy's descriptors are far from its original's.
    inner = np.isin(np.arange(GRID), (1, 2))
    cells = np.arange(GRID * GRID).reshape(GRID, GRID)
    centre, corners = cells[np.ix_(inner, inner)].ravel(), cells[np.ix_(~inner, ~inner)].ravel()
    edges = np.setdiff1d(cells, np.r_[centre, corners])
    orders = np.empty((n_disguises, DESCRIPTOR_SIZE), np.intp)
    orders[0] = np.arange(DESCRIPTOR_SIZE)
    for order in orders[1:]:
        cell_from = np.arange(GRID * GRID)
        for group in (centre, edges, corners):
            cell_from[group] = rng.permutation(group)
        bin_from = np.roll(np.arange(BINS), rng.integers(BINS))
        order[:] = (cell_from[:, None] * BINS + bin_from[None, :]).ravel()
    return orders


def catalogue_features(extracted: np.ndarray, n_photos: int, max_features: int, rng: np.random.Generator
                       ) -> np.ndarray:
    """`n_photos` keypoint records: photo i is extracted photo i mod len(extracted), its strongest
    `max_features` keypoints, the descriptors in disguise i // len(extracted)."""
    slots = extracted[:, :max_features]
    copies = -(-n_photos // len(slots))
    features = np.tile(slots, (copies, 1))[:n_photos]
    for copy, order in enumerate(descriptor_disguises(copies, rng)):
        rows = slice(copy * len(slots), (copy + 1) * len(slots))
        features["descriptor"][rows] = features["descriptor"][rows][:, :, order]
    return features


def catalogue_ids(n_photos: int, rng: np.random.Generator) -> np.ndarray:
    """Each photo's individual among n_photos/4 (at least the answers' four), every one with a photo."""
    n_individuals = max(N_CANDIDATES, n_photos // 4)
    individual = np.r_[np.arange(n_individuals), rng.integers(0, n_individuals, n_photos - n_individuals)]
    return np.array([f"w_{i:06d}" for i in range(n_individuals)])[rng.permutation(individual)]


def perturbed_queries(catalogue: np.ndarray, n_queries: int, image_size: int, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray]:
    """New photos of `n_queries` catalogue photos (records, and the catalogue rows they copy):
    keypoints rotated up to 10 degrees, scaled up to 10% and shifted up to 5% of the side,
    descriptors noised by up to 8 levels, a fifth of the keypoints dropped."""
    sources = rng.choice(len(catalogue), n_queries, replace=False)
    queries = catalogue[sources].copy()
    centre = image_size / 2
    for query in queries:
        angle, scale = np.deg2rad(rng.uniform(-10, 10)), rng.uniform(0.9, 1.1)
        rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        query["xy"] = (query["xy"] - centre) @ rotation.T + centre + rng.uniform(-0.05, 0.05, 2) * image_size
        noise = rng.integers(-8, 9, query["descriptor"].shape)
        query["descriptor"] = np.clip(query["descriptor"].astype(np.int16) + noise, 0, 255)
        query["xy"][rng.random(len(query)) < 0.2] = np.nan
        query["descriptor"][np.isnan(query["xy"][:, 0])] = 0
    return queries, sources


def shortlist_votes(catalogue: LocalCatalogue, query_features: np.ndarray) -> None:
    """match_queries's first step alone: one descriptor search a block of queries, then the votes."""
    k = min(catalogue.settings.neighbours, len(catalogue.photo_of_descriptor) - 1)
    block = catalogue.settings.query_block
    for start in range(0, len(query_features), block):
        descriptors = [root_sift(unpack(row)[1]) for row in query_features[start:start + block]]
        distances, neighbours = catalogue.index.search(np.concatenate(descriptors), k + 1)
        bounds = np.cumsum([0, *map(len, descriptors)])
        for first, last in zip(bounds[:-1], bounds[1:]):
            catalogue.votes(distances[first:last], neighbours[first:last])


def index_label(index) -> str:
    """"IVF lists/nprobe" for inverted lists, "exact" for a flat index."""
    return f"IVF {index.nlist}/{index.nprobe}" if hasattr(index, "nlist") else "exact"


def measure_queries(extracted: np.ndarray, n_photos: int, args: argparse.Namespace, image_size: int
                    ) -> dict[str, float]:
    """Build one catalogue of `n_photos`, time its queries; print one table row, return the figures."""
    rng = np.random.default_rng(args.seed + n_photos)
    features = catalogue_features(extracted, n_photos, args.features, rng)
    ids = catalogue_ids(n_photos, rng)
    queries, sources = perturbed_queries(features, min(args.queries, n_photos), image_size, rng)
    start = time.perf_counter()
    catalogue = LocalCatalogue(features, ids, image_size, MatchSettings.defaults())
    build = time.perf_counter() - start
    seconds, pairs = best_seconds(lambda: match_queries(catalogue, queries, n_jobs=args.jobs), args.repeats)
    shortlists = individual_scores(pairs, "inliers")
    shortlist, _ = best_seconds(lambda: shortlist_votes(catalogue, queries), args.repeats)
    first = pd.Series(shortlists.loc[shortlists["rank"] == 0, "id"].to_numpy(),
                      index=shortlists.loc[shortlists["rank"] == 0, "query"].to_numpy())
    right = int((first.reindex(range(len(queries))).to_numpy() == ids[sources]).sum())
    n_queries = len(queries)
    figures = {"photos": n_photos, "descriptors": len(catalogue.photo_of_descriptor), "build": build,
               "ms": 1000 * seconds / n_queries, "shortlist_ms": 1000 * shortlist / n_queries,
               "verify_ms": 1000 * max(0.0, seconds - shortlist) / n_queries}
    print(f"  {n_photos:>7} {figures['descriptors']:>11} {index_label(catalogue.index):>12} {build:8.1f} "
          f"{seconds:8.2f} {figures['ms']:9.2f} {n_queries / seconds:9.1f} {figures['shortlist_ms']:12.2f} "
          f"{figures['verify_ms']:10.2f} {right:>4}/{n_queries}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=96, help="demo photos extracted")
    parser.add_argument("--side", type=int, default=448, help="side of the preprocessed squares")
    parser.add_argument("--image-size", type=int, default=KeypointSettings.defaults().image_size,
                        help="KeypointSettings.image_size: side keypoints are found at")
    # 16: 96 photos make 6 chunks, 3 for each of 2 jobs (the default 64 would give them 64 and 32)
    parser.add_argument("--chunk-size", type=int, default=16, help="photos per build_keypoint_cache chunk")
    parser.add_argument("--catalogue-sizes", type=int, nargs=2, default=[1_000, 10_000], metavar=("SMALL", "LARGE"),
                        help="catalogue photos")
    parser.add_argument("--features", type=int, default=400, help="at most this many keypoints a catalogue photo")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2, help="match_queries's n_jobs")
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs of each timed step; the best counts (this VM's speed swings)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if min(args.catalogue_sizes) < N_CANDIDATES or args.images < 1 or args.queries < 1:
        parser.error(f"need at least one image and one query, and catalogues of at least {N_CANDIDATES} photos")
    settings = KeypointSettings.defaults(image_size=args.image_size)

    with tempfile.TemporaryDirectory() as tmp:
        cache_path = demo_squares(Path(tmp), args.images, args.side, args.seed)
        extracted = measure_extraction(cache_path, Path(tmp), settings, args.chunk_size, args.repeats)
    # the 1-job runs set OpenCV to one thread in this process; a matching job starts with its default
    cv2.setNumThreads(-1)

    small, large = sorted(args.catalogue_sizes)
    print(f"queries: {min(args.queries, small)} per catalogue, match_queries with {args.jobs} jobs, "
          f"{asdict(MatchSettings.defaults())}")
    print(f"  catalogue photo i: extracted photo i mod {len(extracted)}, at most {args.features} keypoints, "
          f"descriptors in disguise i // {len(extracted)}; ids among photos/4 individuals; index: IVF lists/nprobe")
    print(f"  {'photos':>7} {'descriptors':>11} {'index':>12} {'build s':>8} {'query s':>8} {'ms/query':>9} "
          f"{'queries/s':>9} {'shortlist ms':>12} {'verify ms':>10} {'top-1 right':>11}")
    figures = [measure_queries(extracted, n_photos, args, settings.image_size) for n_photos in (small, large)]
    growth = {key: figures[1][key] / figures[0][key] for key in ("descriptors", "ms", "shortlist_ms", "build")}
    verify = figures[1]["verify_ms"] / figures[0]["verify_ms"] if figures[0]["verify_ms"] else float("nan")
    print(f"  {large} / {small} photos: descriptors {growth['descriptors']:.1f}x, per query {growth['ms']:.2f}x "
          f"(shortlist {growth['shortlist_ms']:.2f}x, verification {verify:.2f}x), build {growth['build']:.1f}x")
    print(f"query_ms_1k {figures[0]['ms']:.2f} query_ms_10k {figures[1]['ms']:.2f}")


if __name__ == "__main__":
    main()
