"""How keypoint and matching settings serve test photos of individuals with one catalogue photo, side by side.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/local_one_photo.py --results R --data D \
        [--configfile presets/cpu.yaml] [--one-photo 250] [--others 150] \
        --variant "" --variant image_size=224 --variant shortlist=25 ...

On a finished run (`--results`: its preprocessed squares and validation split) of a data folder
whose test truth is known (`--data`: test_truth.csv, which the workflow never reads; reported
here, never chosen on), `--one-photo` test photos of individuals with one catalogue photo and
`--others` of individuals with more (drawn with a fixed seed) are matched against all of the
known train photos, once per `--variant` (settings over config.yaml and the `--configfile`s:
``key=value,key=value`` of the local section; an empty one is the config as it is). Each
variant's keypoints are found again (`keypoints.feature_rows`, as local_keypoints finds them),
every keypoint weighing 1 (no foreground model), and matched as `catalogue.match_queries`
matches: votes, shortlist, verification. For each it prints, for the one-photo queries: how often voting shortlists the
true individual, how often it comes first by its verified inliers and by its guided matches (the
verifier's strongest features) among the shortlisted, the median guided matches of the true and
the best wrong individual where the true one was verified; the same top-1 for the others; and
the seconds spent finding keypoints and matching, the last line a variant's matching time over
the first's.

Measured in issue 28 (right whales, presets/cpu.yaml): keypoints on the 224-pixel squares as they
are against the same squares enlarged to 448 (config.yaml's image_size).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from joblib import Parallel, delayed

from whaleid.methods.local.catalogue import LocalCatalogue, match_queries
from whaleid.methods.local.keypoints import feature_rows
from whaleid.settings import KeypointSettings, MatchSettings
from whaleid.vocabulary import NEW_WHALE


def parse_variant(text: str) -> dict:
    """``key=value,key=value`` as a dict, each value read as YAML (numbers, true, null)."""
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    return {key.strip(): yaml.safe_load(value) for key, value in pairs}


def keypoint_rows(squares: np.ndarray, rows: np.ndarray, settings: KeypointSettings, n_jobs: int) -> np.ndarray:
    """The keypoint cache rows of the squares at `rows`, as local_keypoints makes them, `n_jobs` at once."""
    parts = np.array_split(rows, 8 * n_jobs)
    return np.concatenate(Parallel(n_jobs=n_jobs)(delayed(feature_rows)(np.asarray(squares[part]), settings)
                                                  for part in parts if len(part)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="the run's data folder, with test_truth.csv")
    parser.add_argument("--configfile", nargs="*", default=["presets/cpu.yaml"])
    parser.add_argument("--one-photo", type=int, default=250)
    parser.add_argument("--others", type=int, default=150)
    parser.add_argument("--variant", action="append", default=None)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    import faiss

    faiss.omp_set_num_threads(args.jobs)
    train_squares = np.load(args.results / "preprocess/train.npy", mmap_mode="r")
    test_squares = np.load(args.results / "preprocess/test.npy", mmap_mode="r")
    train = pd.read_csv(args.results / "preprocess/train.csv", dtype=str)
    test = pd.read_csv(args.results / "preprocess/test.csv", dtype=str)
    truth = pd.read_csv(args.data / "test_truth.csv", dtype=str).set_index("Image")["Id"]
    known_rows = np.flatnonzero((train["id"] != NEW_WHALE).to_numpy())
    photos = train["id"].iloc[known_rows].value_counts()
    test["truth"] = test["image"].map(truth)
    test["photos"] = test["truth"].map(photos).fillna(0).astype(int)
    one = test[test["photos"] == 1].sample(min(args.one_photo, int((test["photos"] == 1).sum())), random_state=1)
    others = test[test["photos"] > 1].sample(min(args.others, int((test["photos"] > 1).sum())), random_state=1)
    queries = pd.concat([one, others])
    catalogue_ids = train["id"].to_numpy()[known_rows]
    first, found = None, {}  # each keypoint setting's keypoints are found once
    for text in args.variant or [""]:
        variant = parse_variant(text)
        keypoint_settings = replace(KeypointSettings.defaults(*args.configfile),
                                    **{k: v for k, v in variant.items() if k in KeypointSettings.__dataclass_fields__})
        match_settings = replace(MatchSettings.defaults(*args.configfile),
                                 **{k: v for k, v in variant.items() if k in MatchSettings.__dataclass_fields__})
        if keypoint_settings.max_side is not None:
            parser.error("max_side variants read the original photos: not measured here")
        if keypoint_settings not in found:
            started = time.perf_counter()
            found[keypoint_settings] = (keypoint_rows(train_squares, known_rows, keypoint_settings, args.jobs),
                                        keypoint_rows(test_squares, queries.index.to_numpy(), keypoint_settings,
                                                      args.jobs), time.perf_counter() - started)
        catalogue_rows, query_rows, found_s = found[keypoint_settings]
        started = time.perf_counter()
        catalogue = LocalCatalogue(catalogue_rows, catalogue_ids, keypoint_settings.side, match_settings)
        pairs = match_queries(catalogue, query_rows, n_jobs=args.jobs)
        matched_s = time.perf_counter() - started
        # voting's rank of the true individual, from the shortlisted individuals' order
        table = []
        for query, (truth_id, n_photos) in enumerate(zip(queries["truth"], queries["photos"])):
            mine = pairs[pairs["query"] == query]
            listed = mine.drop_duplicates("id")["id"].tolist()
            best = mine.groupby("id")[["inliers", "guided_matches"]].max()
            row = {"photos": n_photos, "listed": truth_id in listed}
            for column in ("inliers", "guided_matches"):
                row[f"first_{column}"] = len(best) > 0 and best[column].idxmax() == truth_id and best[column].max() > 0
            row["true_guided"] = best["guided_matches"].get(truth_id, np.nan)
            row["wrong_guided"] = best["guided_matches"].drop(truth_id, errors="ignore").max() if len(best) else np.nan
            table.append(row)
        table = pd.DataFrame(table)
        lone, many = table[table["photos"] == 1], table[table["photos"] > 1]
        verified = lone[lone["listed"]]
        result = {"variant": text or "config", "keypoints": round(float(np.mean([(~np.isnan(r["xy"][:, 0])).sum()
                                                                                  for r in query_rows])), 1),
                  "one_photo_shortlisted": round(float(lone["listed"].mean()), 3),
                  "one_photo_first_by_inliers": round(float(lone["first_inliers"].mean()), 3),
                  "one_photo_first_by_guided": round(float(lone["first_guided_matches"].mean()), 3),
                  "true_guided_median": float(verified["true_guided"].median()),
                  "best_wrong_guided_median": float(verified["wrong_guided"].median()),
                  "others_first_by_guided": round(float(many["first_guided_matches"].mean()), 3),
                  "keypoints_s": round(found_s, 1), "matching_s": round(matched_s, 1)}
        print(json.dumps(result), flush=True)
        first = first or result
        print(f"  against {first['variant']}: matching time ratio {result['matching_s'] / first['matching_s']:.2f}")


if __name__ == "__main__":
    main()
