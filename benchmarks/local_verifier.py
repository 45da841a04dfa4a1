"""What the local method's verifier costs beside the matching it judges, measured side by side on a finished run.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/local_verifier.py [--results results] [--queries 100]

On the keypoints, split and verifier of a run of the workflow (`--results`, made with
`local.scoring: verifier`; its `config.yaml`-section settings are read from that run's
`local/verifier` and the config files given with `--configfile`, as the run had them): the first
`--queries` validation photos are matched against the fit photos (`match_queries`, as
`local_identify` does it, `--jobs` threads), then their pairs are scored by the verifier and pooled
(`Verifier.probability`, `individual_scores`, the individual calibration). It prints both times
and the ratio, the verifier's share of identification. And, from the run's benchmark files, the
wall time of training the verifier (rule `local_verifier`, once per dataset and setting) against
that of identification (rule `local_identify`).

The last line is `verifier_share X training_share Y`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from run_files import matched_keypoints
from timing import best_seconds

from whaleid.identification.search import Queries
from whaleid.methods.local.catalogue import LocalCatalogue, match_queries
from whaleid.methods.local.keypoints import read_keypoints
from whaleid.methods.local.pooling import individual_scores
from whaleid.methods.local.verifier import Verifier
from whaleid.settings import KeypointSettings, MatchSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--configfile", nargs="*", default=[], help="config files the run was made with (presets)")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    results = args.results
    settings = MatchSettings.defaults(*args.configfile)
    image_size = KeypointSettings.defaults(*args.configfile).side
    keypoints, _ = read_keypoints(*matched_keypoints(results, "train")[:2])
    queries = Queries.read(results / "local/keypoints/train.csv", results / "local/keypoints/test.csv",
                           results / "validation/split.csv", results / "ingest/manifest.csv")
    validation, _ = queries.searches()
    catalogue = LocalCatalogue(validation.catalogue_values(keypoints), np.asarray(validation.catalogue_ids),
                               image_size, settings)
    asked = validation.query_values(keypoints, keypoints)[:args.queries]
    verifier = Verifier.load(results / "local/verifier/model.joblib")

    matching, pairs = best_seconds(lambda: match_queries(catalogue, asked, n_jobs=args.jobs), args.repeats)

    def judge() -> pd.DataFrame:
        scored = individual_scores(pairs.assign(probability=verifier.probability(pairs)), "verifier", "max")
        return scored.assign(probability=verifier.individuals["max"](scored["score"]))

    judging, _ = best_seconds(judge, args.repeats)
    share = judging / matching
    print(f"{len(asked)} validation photos against {len(catalogue)} fit photos, {len(pairs)} verified pairs, "
          f"{args.jobs} jobs")
    print(f"  matching (shortlist and geometric check): {matching:8.2f} s")
    print(f"  verifier (trees, calibration, pooling):   {judging:8.2f} s   {share:.1%} of matching")
    walls = {rule: float(pd.read_csv(results / "benchmarks" / f"{rule}.tsv", sep="\t")["s"].iloc[-1])
             for rule in ("local_verifier", "local_identify")}
    training = walls["local_verifier"] / walls["local_identify"]
    print(f"  the run's rules: local_verifier {walls['local_verifier']:.0f} s, local_identify "
          f"{walls['local_identify']:.0f} s: training {training:.0%} of identification, once per dataset and setting")
    print(f"verifier_share {share:.4f} training_share {training:.4f}")


if __name__ == "__main__":
    main()
