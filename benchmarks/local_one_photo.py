"""How keypoint and matching settings serve test photos of individuals with one catalogue photo, side by side.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/local_one_photo.py --results R --data D \
        [--configfile presets/cpu.yaml] [--one-photo 250] [--others 150] [--strangers 30] \
        --variant "" --variant image_size=224 --variant shortlist=25 ...

On a finished run (`--results`: its preprocessed squares and validation split) of a data folder
whose test truth is known (`--data`: test_truth.csv, which the workflow never reads; reported
here, never chosen on), `--one-photo` test photos of individuals with one catalogue photo and
`--others` of individuals with more (drawn with a fixed seed) are matched against all of the
known train photos, once per `--variant` (settings over config.yaml and the `--configfile`s:
``key=value,key=value`` of the local section; an empty one is the config as it is). Each
variant's keypoints are found again for every photo of the run (`keypoints.build_keypoint_cache`,
as rule local_keypoints_chunk finds them, into a temporary folder),
every keypoint weighing 1 (no foreground model), and matched as `catalogue.match_queries`
matches: votes, shortlist, verification. For each it prints, for the one-photo queries: how often voting shortlists the
true individual, how often it comes first by its verified inliers and by its guided matches (the
verifier's strongest features) among the shortlisted, the median guided matches of the true and
the best wrong individual where the true one was verified; the same top-1 for the others; and
the seconds spent finding keypoints (of all the run's photos) and matching, the last line a variant's matching time over
the first's.

With `--strangers N`, each one-photo query is also checked against its true photo and one photo
of each of N other individuals, all drawn at random, with no voting in the way
(`LocalCatalogue.verify` on those N+1, the variant's ratio and transform): the share whose true
photo has more inliers, and more guided matches, than the best of the strangers', and the
medians of both. Against 30 strangers instead of the whole catalogue, it says whether the pair's
evidence is there at all, which no shortlist can add.

Measured in issue 28 (right whales, presets/cpu.yaml): keypoints on the 224-pixel squares as they
are against the same squares enlarged to 448 (config.yaml's image_size), and with --strangers 30
how often either gives a one-photo query's true photo more evidence than 30 strangers' (README,
"The evidence, not the shortlist, is what is missing").
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from whaleid.methods.local.catalogue import LocalCatalogue, match_queries, query_keypoints
from whaleid.methods.local.keypoints import build_keypoint_cache, read_keypoint_cache
from whaleid.settings import KeypointSettings, MatchSettings
from whaleid.vocabulary import NEW_WHALE


def parse_variant(text: str) -> dict:
    """``key=value,key=value`` as a dict, each value read as YAML (numbers, true, null)."""
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    return {key.strip(): yaml.safe_load(value) for key, value in pairs}


def with_variant(settings, variant: dict):
    """`settings` (a settings dataclass) with those of `variant`'s keys that are its fields."""
    return replace(settings, **{key: value for key, value in variant.items()
                                if key in type(settings).__dataclass_fields__})


def one_photo_figures(pairs: pd.DataFrame, truths: np.ndarray, photos: np.ndarray) -> dict:
    """From the verified `pairs` of the queries (`match_queries`' table; query i's individual
    `truths[i]`, with `photos[i]` catalogue photos): for the one-photo queries, the share whose
    individual was shortlisted, ranked first by its best photo's inliers and by its guided matches,
    and the median guided matches of the true and the best wrong individual where the true one was
    verified; for the others, the share ranked first by guided matches."""
    best = pairs.groupby(["query", "id"])[["inliers", "guided_matches"]].max().reset_index()
    best["true"] = best["id"].to_numpy() == truths[best["query"].to_numpy()]
    table = pd.DataFrame({"photos": photos})
    table["listed"] = best.groupby("query")["true"].any().reindex(table.index, fill_value=False)
    for column in ("inliers", "guided_matches"):
        top = best.loc[best.groupby("query")[column].idxmax()]
        first = top["true"].to_numpy() & (top[column].to_numpy() > 0)
        table[f"first_{column}"] = pd.Series(first, top["query"].to_numpy()).reindex(table.index, fill_value=False)
    table["true_guided"] = best[best["true"]].set_index("query")["guided_matches"].reindex(table.index)
    table["wrong_guided"] = best[~best["true"]].groupby("query")["guided_matches"].max().reindex(table.index)
    lone, many = table[table["photos"] == 1], table[table["photos"] > 1]
    verified = lone[lone["listed"]]
    return {"one_photo_shortlisted": round(float(lone["listed"].mean()), 3),
            "one_photo_first_by_inliers": round(float(lone["first_inliers"].mean()), 3),
            "one_photo_first_by_guided": round(float(lone["first_guided_matches"].mean()), 3),
            "true_guided_median": float(verified["true_guided"].median()),
            "best_wrong_guided_median": float(verified["wrong_guided"].median()),
            "others_first_by_guided": round(float(many["first_guided_matches"].mean()), 3)}


def against_strangers(catalogue_rows: np.ndarray, catalogue_ids: np.ndarray, query_rows: np.ndarray,
                      truths: np.ndarray, strangers: int, image_size: int, settings: MatchSettings,
                      rng: np.random.Generator) -> dict:
    """Each query (a row of `query_rows`, its individual `truths[i]`, which has one photo among
    `catalogue_rows`) checked against its true photo and a photo of each of `strangers` other
    individuals, drawn by `rng`: the share whose true photo has more inliers (and more guided
    matches) than every stranger's, and the medians of the true photo's and of the best stranger's."""
    checked = replace(settings, shortlist=strangers + 1, shortlist_by="individual", photos_per_individual=1)
    true, best_wrong = [], []
    for row, individual in zip(query_rows, truths):
        own = np.flatnonzero(catalogue_ids == individual)
        others = rng.choice(np.unique(catalogue_ids[catalogue_ids != individual]), strangers, replace=False)
        rows = np.r_[own, [rng.choice(np.flatnonzero(catalogue_ids == other)) for other in others]]
        catalogue = LocalCatalogue(catalogue_rows[rows], catalogue_ids[rows], image_size, checked)
        xy, descriptors, weights = query_keypoints(row[None])[0]
        if not len(xy):
            true.append((0, 0))
            best_wrong.append((0, 0))
            continue
        # every individual shortlisted: the true one and each stranger's one photo
        pairs = catalogue.verify(xy, descriptors, np.ones(len(catalogue.individuals)), np.ones(len(catalogue)), weights)
        is_true = catalogue.individuals[pairs["individual"]] == individual
        found = [(int(pairs["inliers"][mask].max(initial=0)), int(pairs["guided_matches"][mask].max(initial=0)))
                 for mask in (is_true, ~is_true)]
        true.append(found[0])
        best_wrong.append(found[1])
    true, best_wrong = np.array(true).reshape(-1, 2), np.array(best_wrong).reshape(-1, 2)
    return {f"true_beats_{strangers}_strangers_by_inliers": round(float(np.mean(true[:, 0] > best_wrong[:, 0])), 3),
            f"true_beats_{strangers}_strangers_by_guided": round(float(np.mean(true[:, 1] > best_wrong[:, 1])), 3),
            "strangers_check_true_inliers_median": float(np.median(true[:, 0])),
            "strangers_check_best_stranger_inliers_median": float(np.median(best_wrong[:, 0])),
            "strangers_check_true_guided_median": float(np.median(true[:, 1])),
            "strangers_check_best_stranger_guided_median": float(np.median(best_wrong[:, 1]))}


def keypoint_caches(results: Path, settings: KeypointSettings, folder: Path, n_jobs: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The train and test keypoint caches of the run's preprocessed squares for `settings`, made
    into `folder` as rule local_keypoints_chunk makes them (`build_keypoint_cache`)."""
    caches = []
    for split in ("train", "test"):
        out = folder / f"{split}.npy"
        build_keypoint_cache(str(results / f"preprocess/{split}.npy"), str(out), settings, n_jobs=n_jobs,
                             chunk_size=64)  # a resume checkpoint every 64 photos: the keypoints do not depend on it
        caches.append(read_keypoint_cache(str(out)))
    return caches[0], caches[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="the run's data folder, with test_truth.csv")
    parser.add_argument("--configfile", nargs="*", default=["presets/cpu.yaml"])
    parser.add_argument("--one-photo", type=int, default=250)
    parser.add_argument("--others", type=int, default=150)
    parser.add_argument("--variant", action="append", default=None)
    parser.add_argument("--strangers", type=int, default=0,
                        help="also check each one-photo query against its true photo and this many others'")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    import faiss

    faiss.omp_set_num_threads(args.jobs)
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
    # every setting's keypoint caches, gone when it ends, however it ends
    with tempfile.TemporaryDirectory(prefix="local_one_photo_") as scratch:
        for text in args.variant or [""]:
            variant = parse_variant(text)
            keypoint_settings = with_variant(KeypointSettings.defaults(*args.configfile), variant)
            match_settings = with_variant(MatchSettings.defaults(*args.configfile), variant)
            if keypoint_settings.max_side is not None:
                parser.error("max_side variants read the original photos: not measured here")
            if keypoint_settings not in found:
                started = time.perf_counter()
                train_keypoints, test_keypoints = keypoint_caches(args.results, keypoint_settings,
                                                                  Path(scratch) / f"setting{len(found)}", args.jobs)
                found[keypoint_settings] = (train_keypoints[known_rows], test_keypoints[queries.index.to_numpy()],
                                            time.perf_counter() - started)
            catalogue_rows, query_rows, found_s = found[keypoint_settings]
            started = time.perf_counter()
            catalogue = LocalCatalogue(catalogue_rows, catalogue_ids, keypoint_settings.side, match_settings)
            pairs = match_queries(catalogue, query_rows, n_jobs=args.jobs)
            matched_s = time.perf_counter() - started
            result = {"variant": text or "config",
                      "keypoints": round(float(np.mean([(~np.isnan(row["xy"][:, 0])).sum() for row in query_rows])), 1),
                      **one_photo_figures(pairs, queries["truth"].to_numpy(), queries["photos"].to_numpy()),
                      "keypoints_s": round(found_s, 1), "matching_s": round(matched_s, 1)}
            if args.strangers:
                # the same strangers for every variant
                result.update(against_strangers(catalogue_rows, catalogue_ids, query_rows[:len(one)],
                                                one["truth"].to_numpy(), args.strangers, keypoint_settings.side,
                                                match_settings, np.random.default_rng(0)))
            print(json.dumps(result), flush=True)
            first = first or result
            print(f"  against {first['variant']}: matching time ratio {result['matching_s'] / first['matching_s']:.2f}")

if __name__ == "__main__":
    main()
