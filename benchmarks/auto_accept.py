"""Whether the review page's auto-accept threshold holds what it states, on a finished run whose test truth is known.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/auto_accept.py --results results/whales \
        --data /data/whales [--configfile presets/cpu.yaml] [--precisions 0.9 0.95 0.98]

On a run of the workflow with the local method and its verifier (`--results`), the review page
of the local method's answers is made (`review_page.write_review`, as rule review_page makes it,
into a temporary folder) at each precision of `--precisions`, twice: its threshold chosen on
validation's answers, as before the fit photos' out-of-fold answers were kept, and on those
answers (`local/verifier/fold_answers.csv`). For each: the threshold, how right the answers it
was chosen on were at or above it and their 90% lower bound, validation's, and how many test
photos it accepted and how many of them were right, by `test_truth.csv` of `--data`, which the
workflow never reads.

The last line is `holds_at_<precision>=yes|no …`: whether the test precision of the threshold
chosen on the fit photos' answers reached the lower bound stated, at each precision.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from whaleid.review.evidence import KeypointFiles
from whaleid.review.review_page import write_review
from whaleid.settings import KeypointSettings, MatchSettings


def review_at(results: Path, configfiles: list[str], precision: float, on_fit_folds: bool, out: Path
              ) -> tuple[object, pd.DataFrame]:
    """The local method's review page at `precision`, into `out`: its `AutoAccept` and queue."""
    local = results / "local"
    keypoints = local / "keypoints"
    accept = write_review(
        method="local", run=str(results), precision=precision, split_csv=results / "validation/split.csv",
        validation_predictions=local / "predictions/validation.csv", test_predictions=local / "predictions/test.csv",
        threshold_curve=local / "new_whale_threshold.csv", train_images=results / "preprocess/train.npy",
        train_images_index=results / "preprocess/train.csv", test_images=results / "preprocess/test.npy",
        test_images_index=results / "preprocess/test.csv", page_out=out / "page.html", queue_out=out / "queue.csv",
        auto_accept_out=out / "auto_accept.csv",
        fold_answers=(local / "verifier/fold_answers.csv", local / "poolings.csv") if on_fit_folds else None,
        keypoints=KeypointFiles(keypoints / "train.npy", keypoints / "train.csv", keypoints / "test.npy",
                                keypoints / "test.csv", KeypointSettings.defaults(*configfiles).side,
                                MatchSettings.defaults(*configfiles)),
        pairs={split: local / f"pairs/{split}.csv" for split in ("validation", "test")},
        scores={split: local / f"shortlists/{split}.csv" for split in ("validation", "test")},
        # the test photos self-training accepted, which verified pairs may show
        pseudo_labels=local / "pseudo_labels.csv" if (local / "pseudo_labels.csv").exists() else None)
    return accept, pd.read_csv(out / "queue.csv", dtype={"answer": str, "image": str})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="the data folder, with test_truth.csv")
    parser.add_argument("--configfile", nargs="*", default=["presets/cpu.yaml"],
                        help="the run's config files over config.yaml, for how it matched")
    parser.add_argument("--precisions", type=float, nargs="+", default=[0.9, 0.95, 0.98])
    args = parser.parse_args()
    if not (args.results / "local/verifier/fold_answers.csv").exists():
        parser.error(f"{args.results}: no local/verifier/fold_answers.csv: a run of the local method with "
                     "local.scoring: verifier is needed")
    truth = pd.read_csv(args.data / "test_truth.csv", dtype=str).set_index("Image")["Id"]
    holds = {}
    print(f"{'asked':>6} {'chosen on':<24} {'threshold':>9} {'there':>17} {'bound':>6} {'validation':>11} "
          f"{'test accepted':>14} {'test right':>11}")
    for precision in args.precisions:
        for on_fit_folds in (False, True):
            with tempfile.TemporaryDirectory() as folder:
                accept, queue = review_at(args.results, args.configfile, precision, on_fit_folds, Path(folder))
            accepted = queue[queue["accepted"]]
            right = int((accepted["answer"].to_numpy() == accepted["image"].map(truth).to_numpy()).sum())
            test_precision = right / len(accepted) if len(accepted) else float("nan")
            there = round(accept.chosen_precision * accept.chosen_accepted) if accept.chosen_accepted else 0
            validation = (round(accept.validation_precision * accept.validation_accepted)
                          if accept.validation_accepted else 0)
            print(f"{precision:>6g} {accept.chosen_on:<24} {accept.threshold:>9.4f} "
                  f"{f'{there} of {accept.chosen_accepted}':>10} {accept.chosen_precision:>6.3f} "
                  f"{accept.lower_bound:>6.3f} {f'{validation} of {accept.validation_accepted}':>11} "
                  f"{f'{len(accepted)} of {len(queue)}':>14} {test_precision:>11.4f}")
            if on_fit_folds:
                holds[precision] = len(accepted) > 0 and test_precision >= accept.lower_bound
    print(" ".join(f"holds_at_{precision:g}={'yes' if held else 'no'}" for precision, held in holds.items()))


if __name__ == "__main__":
    main()
