"""What self-training gives and costs the local method, measured side by side on a finished run.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/local_self_training.py --results R \
        --data D [--configfile presets/cpu.yaml] [--rounds 0 1 2] [--precision 0.98] [--check-again]

On a finished run of the workflow with the local method and its verifier (`--results`; the
settings from config.yaml and the `--configfile`s the run was made with, its data folder
`--data`), the local method's identification (`identify`: the verified pairs of local_match,
the verifier and its out-of-fold answers) is run again for each number of self-training
`--rounds` (0: none), `--jobs` threads, one after another. For each it prints the seconds, the
answers self-training accepted and, of the test photos (the data folder's test_truth.csv, only
reported), how many of them were right; MAP@5 of validation and test, the known test photos
ranked first, those of individuals with one catalogue photo ranked first, and the new ones
answered new_whale first.

The last line is `self_training_ratio X`: the time of the last rounds over the time without,
added to local_match's test time as the run's benchmark recorded it (its identification per query).

With `--check-again`, the last rounds are run once more checking every pair of the queries matched
again, as self-training did before it kept the pairs it had checked (`checked_before`): it prints
both times, their ratio, and whether the two gave the same pairs and answers.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from run_files import matched_keypoints

from whaleid.evaluation.metrics import map_at_5
from whaleid.identification.fold_threshold import read_fold_answers
from whaleid.io.files import read_columns
from whaleid.io.tables import read_table
from whaleid.methods.local.identify import SelfTraining, identify, keypoint_matcher
from whaleid.methods.local.verifier import Verifier
from whaleid.settings import CONFIG_YAML, KeypointSettings, MatchSettings, threshold_grid
from whaleid.vocabulary import NEW_WHALE


def load_config(*configfiles: str | Path) -> dict:
    """config.yaml with the `configfiles` merged over it, key by key, as Snakemake merges them."""
    def merged(base, update):
        return {**base, **{key: merged(base.get(key, {}), value) if isinstance(value, dict) else value
                           for key, value in update.items()}}

    config = yaml.safe_load(CONFIG_YAML.read_text())
    for path in configfiles:
        config = merged(config, yaml.safe_load(Path(path).read_text()) or {})
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="the run's data folder (its test_truth.csv)")
    parser.add_argument("--configfile", nargs="*", default=[], help="config files the run was made with (presets)")
    parser.add_argument("--rounds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--precision", type=float, default=None, help="default: the config's")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--check-again", action="store_true",
                        help="also run the last rounds checking every pair again, and compare")
    args = parser.parse_args()
    config = load_config(*args.configfile)
    precision = config["self_training"]["precision"] if args.precision is None else args.precision
    r = args.results
    settings = MatchSettings.defaults(*args.configfile)
    train, train_index, train_weights = matched_keypoints(r, "train")
    test, test_index, test_weights = matched_keypoints(r, "test")
    verifier = Verifier.load(r / "local/verifier/model.joblib")
    pairs = {search: [read_columns(path) for path in sorted((r / "local/matches" / search).glob("*.npz"))]
             for search in ("validation", "test")}
    matcher = keypoint_matcher((train, train_index), (test, test_index), settings=settings,
                               image_size=KeypointSettings.defaults(*args.configfile).side, verifier=verifier,
                               n_jobs=args.jobs, weights=None if train_weights is None else (train_weights,
                                                                                           test_weights))
    truth = read_table(args.data / "test_truth.csv").set_index("Image")["Id"]
    catalogue = read_table(args.data / "train.csv")
    photos = catalogue.loc[catalogue["Id"] != NEW_WHALE, "Id"].value_counts()
    split = read_table(r / "validation/split.csv").set_index("image")["truth"]
    seconds = {}

    def identified(rounds: int, matching):
        return identify(pairs, train_index, test_index, r / "validation/split.csv", r / "ingest/manifest.csv",
                        scoring="verifier", verifier=verifier, phash_distances=config["baseline"][
                            "phash_max_distance_candidates"],
                        thresholds=threshold_grid(**config["local"]["new_whale_probabilities"]),
                        threshold_on=config["local"]["new_whale_threshold_on"],
                        fold_answers=read_fold_answers(r / "local/verifier/fold_answers.csv"),
                        self_training=SelfTraining(rounds, precision, matching) if rounds else None)

    for rounds in args.rounds:
        started = time.perf_counter()
        found = identified(rounds, matcher)
        seconds[rounds] = time.perf_counter() - started
        answers = found.test.assign(truth=found.test["image"].map(truth)).dropna(subset=["truth"])
        first = answers["answers"].str[0]
        new = (answers["truth"] == NEW_WHALE).to_numpy()
        one = (answers["truth"].map(photos).fillna(0) == 1).to_numpy()
        labels = found.pseudo_labels["test"]
        right = (labels["id"] == labels["image"].map(truth)).groupby(labels["round"]).agg(["sum", "size"])
        validation = found.validation["image"].map(split).tolist()
        print(f"rounds {rounds} at precision {precision}: {seconds[rounds]:.0f} s; test answers accepted, right, by "
              f"round: {', '.join(f'{row.sum} of {row.size}' for row in right.itertuples()) or 'none'}")
        print(f"  MAP@5 validation {map_at_5(found.validation['answers'].tolist(), validation):.4f} test "
              f"{map_at_5(answers['answers'].tolist(), answers['truth'].tolist()):.4f}; ranked first: known "
              f"{np.mean(first[~new] == answers['truth'][~new]):.3f}, of one catalogue photo "
              f"{np.mean(first[one] == answers['truth'][one]):.3f}; new whales answered new_whale first "
              f"{np.mean(first[new] == NEW_WHALE):.3f}")
    if args.check_again and args.rounds[-1]:
        def checking_every_pair(search):
            match = matcher(search)
            return lambda added, ids, queries, before: match(added, ids, queries)

        started = time.perf_counter()
        again = identified(args.rounds[-1], checking_every_pair)
        checked_s = time.perf_counter() - started
        same_pairs = all(again.pairs[split].equals(found.pairs[split]) for split in found.pairs)
        same_answers = again.test.equals(found.test) and again.validation.equals(found.validation)
        print(f"rounds {args.rounds[-1]} checking every pair again: {checked_s:.0f} s; keeping the pairs checked "
              f"before: {seconds[args.rounds[-1]]:.0f} s ({seconds[args.rounds[-1]] / checked_s:.2f} of it); the same "
              f"pairs: {'yes' if same_pairs else 'NO'}, the same answers: {'yes' if same_answers else 'NO'}")
    benchmark = pd.concat([pd.read_csv(path, sep="\t") for path in (r / "benchmarks/local_match/test").glob("*.tsv")])
    matching = float(benchmark["s"].sum())
    last = args.rounds[-1]
    if 0 in seconds and last:
        print(f"local_match of the test photos took {matching:.0f} s in the run")
        print(f"self_training_ratio {(matching + seconds[last] - seconds[0]) / matching:.4f}")


if __name__ == "__main__":
    main()
