"""How right the new individuals a finished run proposed are, where its test truth is known.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/new_individuals.py --results results/whales \
        --data /data/whales

Reads `local/new_individuals.csv` (rule local_new_individuals) and the local method's test
answers of the run `--results`, and `test_truth.csv` of `--data`, which the workflow never reads.
A proposed group is checkable where its photos' truths name known individuals: it is right where
they all name one. A group whose photos are all new_whale in the truth cannot be checked (the
truth does not say whether two new photos are one individual), nor can one photo of a group that
is. Prints the groups by size, how many are checkable and right, the proposed pairs among
checkable photos and how many are of one individual (pair precision), how many of the photos
answered new_whale first have a group-mate of the same known individual among them at all
(what a perfect proposal could link), and how long the stage took (its benchmark file).
"""

from __future__ import annotations

import argparse
from itertools import combinations
from pathlib import Path

import pandas as pd

from whaleid.evaluation.submission import read_predictions
from whaleid.vocabulary import NEW_WHALE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args()
    proposed = pd.read_csv(args.results / "local/new_individuals.csv", dtype={"image": str, "linked_to": str})
    truth = dict(pd.read_csv(args.data / "test_truth.csv", dtype=str).set_index("Image")["Id"])
    answers = read_predictions(args.results / "local/predictions/test.csv")
    answered_new = [image for image, ranked in answers.items() if ranked[0] == NEW_WHALE]
    known_new = pd.Series([truth[image] for image in answered_new])
    linkable = int(known_new[known_new != NEW_WHALE].duplicated(keep=False).sum())
    print(f"test photos answered new_whale first: {len(answered_new)} ({(known_new == NEW_WHALE).sum()} new in the "
          f"truth); of the known ones, {linkable} share their individual with another of them (linkable)")
    if proposed.empty:
        print("nothing proposed")
        return
    proposed["truth"] = proposed["image"].map(truth)
    sizes = proposed.drop_duplicates("group")["size"].value_counts().sort_index()
    print(f"proposed: {len(proposed)} photos in {proposed['group'].nunique()} groups; by size: "
          + ", ".join(f"{size}: {count}" for size, count in sizes.items()))
    kinds = {"one known individual": 0, "several known individuals": 0, "known and new": 0, "all new": 0}
    right_pairs = pairs = 0
    for _, group in proposed.groupby("group"):
        known = group.loc[group["truth"] != NEW_WHALE, "truth"]
        if known.empty:
            kinds["all new"] += 1
        elif len(known) < len(group):
            kinds["known and new"] += 1
        else:
            kinds["one known individual" if known.nunique() == 1 else "several known individuals"] += 1
        for a, b in combinations(known.tolist(), 2):
            pairs += 1
            right_pairs += a == b
    checkable = len(proposed["group"].unique()) - kinds["all new"]
    print("groups: " + ", ".join(f"{kind} {count}" for kind, count in kinds.items()))
    print(f"checkable groups right: {kinds['one known individual']} of {checkable}; pairs of known photos in one "
          f"group of one individual: {right_pairs} of {pairs}")
    linked_right = int(proposed[proposed["truth"] != NEW_WHALE].groupby("group")["truth"]
                       .transform(lambda ids: ids.duplicated(keep=False)).sum())
    print(f"linkable photos linked with a photo of their own individual: {linked_right} of {linkable}")
    benchmark = args.results / "benchmarks/local_new_individuals.tsv"
    if benchmark.is_file():
        print(f"local_new_individuals: {float(pd.read_csv(benchmark, sep=chr(9))['s'].iloc[0]):.0f} s")


if __name__ == "__main__":
    main()
