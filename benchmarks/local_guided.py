"""What guided matching costs identification, measured side by side on a finished run.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/local_guided.py --results R \
        [--configfile presets/cpu.yaml] [--queries 200]

On the keypoints, weights and split of a run of the workflow (`--results`; the settings from
config.yaml and the `--configfile`s the run was made with), the first `--queries` validation
photos are matched against the fit photos as identification matches them (`match_queries`,
`--jobs` threads): once as it is, and once with guided matching (`geometry.guided_matches`,
the verifier's features guided_matches and guided_foreground) left out, best of `--repeats`.
It prints both times, ms per query, and the ratio.

The last line is `guided_ratio X`: identification's time with guided matching over without.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from run_files import matched_keypoints
from timing import best_seconds

import whaleid.methods.local.catalogue as local_catalogue
from whaleid.identification.search import Queries
from whaleid.methods.local.catalogue import LocalCatalogue, match_queries
from whaleid.methods.local.keypoints import read_keypoints, read_weights
from whaleid.settings import KeypointSettings, MatchSettings


def no_guided_matches(*_args, **_kwargs) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros(0, np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--configfile", nargs="*", default=[], help="config files the run was made with (presets)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    settings = MatchSettings.defaults(*args.configfile)
    image_size = KeypointSettings.defaults(*args.configfile).side
    cache, index, weights_npy = matched_keypoints(args.results, "train")
    keypoints, _ = read_keypoints(cache, index)
    weights = None if weights_npy is None else read_weights(weights_npy, keypoints)
    queries = Queries.read(index, matched_keypoints(args.results, "test")[1], args.results / "validation/split.csv",
                           args.results / "ingest/manifest.csv")
    validation, _ = queries.searches()
    catalogue = LocalCatalogue(validation.catalogue_values(keypoints), np.asarray(validation.catalogue_ids),
                               image_size, settings,
                               None if weights is None else validation.catalogue_values(weights))
    asked = validation.query_values(keypoints, keypoints)[:args.queries]
    asked_weights = None if weights is None else validation.query_values(weights, weights)[:args.queries]

    def identify():
        return match_queries(catalogue, asked, asked_weights, n_jobs=args.jobs)

    guided, pairs = best_seconds(identify, args.repeats)
    local_catalogue.guided_matches, kept = no_guided_matches, local_catalogue.guided_matches
    try:
        plain, plain_pairs = best_seconds(identify, args.repeats)
    finally:
        local_catalogue.guided_matches = kept
    n = len(asked)
    print(f"{n} validation photos against {len(catalogue)} fit photos of {args.results}, {len(pairs)} verified pairs "
          f"({len(plain_pairs)} without guided matching), {args.jobs} jobs, best of {args.repeats}")
    print(f"  without guided matching: {plain:8.2f} s  {1000 * plain / n:8.1f} ms a query")
    print(f"  with guided matching:    {guided:8.2f} s  {1000 * guided / n:8.1f} ms a query "
          f"({pairs['guided_matches'].median():.0f} guided matches a pair, median)")
    print(f"guided_ratio {guided / plain:.4f}")


if __name__ == "__main__":
    main()
