"""A simulated reviewer: MAP@5 as a person goes down a finished run's review page, photo by photo.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/review_simulation.py \
        --configfile presets/cpu.yaml presets/demo.yaml --steps 0 15 30 60 90

Runs in the working folder of a finished run (whose `review/queue.csv` and the data folder's
`test_truth.csv` it reads). For each step N, the first N photos of the review queue (least sure
first, as the page shows them) are decided as a person who knows the truth would decide them:
a known individual is confirmed, any other photo is a new individual (the truth cannot say which
new photos are of one animal, so each is its own). Those decisions are fed back
(`review.decisions`), the page's method answers again from the grown catalogue (only its
stages run), and its test MAP@5 is printed:

- over every test photo (`<method>/scores.csv`, where a review's new individuals count as
  new_whale, as test truth calls them);
- over the photos not reviewed, before and after: what the grown catalogue did for the rest,
  apart from the reviewed photos, which are answered right by their own decision. "Before" is
  the run without decisions scored on the same photos: the least sure are reviewed first, so the
  rest score higher even with nothing fed back.

The first step must be 0 (the run as it is).

At the end the run is put back as it was (no decisions). Not in `make benchmark`: it needs a
finished run and reruns its identification stages once per step.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from whaleid.evaluation.metrics import map_at_5
from whaleid.review.decisions import new_individual_id
from whaleid.vocabulary import NEW_WHALE

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def config_of(configfiles: list[str], overrides: dict) -> dict:
    """The config Snakemake would see: config.yaml, then each of `configfiles`, then `overrides`."""
    def merged(base: dict, layer: dict) -> dict:
        out = dict(base)
        for key, value in layer.items():
            out[key] = merged(out.get(key, {}), value) if isinstance(value, dict) else value
        return out

    config: dict = {}
    for path in ["config.yaml", *configfiles]:
        config = merged(config, yaml.safe_load(Path(path).read_text()) or {})
    return merged(config, overrides)


def decisions_of(images: list[str], truth: dict[str, str]) -> pd.DataFrame:
    """How a person who knows `truth` decides `images`."""
    rows = [(image, "new", new_individual_id(image)) if truth[image] == NEW_WHALE
            else (image, "confirmed", truth[image]) for image in images]
    return pd.DataFrame(rows, columns=["Image", "decision", "Id"]).assign(by="person")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", nargs="*", default=[], help="the run's config files, as it was run")
    parser.add_argument("--steps", nargs="+", type=int, required=True, help="photos reviewed at each step")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/review_simulation"))
    args = parser.parse_args()
    if args.steps[0] != 0:
        parser.error("the first step must be 0: the answers before any review")
    config = config_of(args.configfile, {})
    results, data = Path(config["results_dir"]), Path(config["data_dir"])
    queue = pd.read_csv(results / "review" / "queue.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(data / "test_truth.csv", dtype=str, keep_default_na=False)
    truth = dict(zip(truth["Image"], truth["Id"]))
    args.out.mkdir(parents=True, exist_ok=True)
    method = pd.read_csv(results / "review" / "auto_accept.csv")["method"].iloc[0]
    targets = [f"{results}/{method}/submission.csv", f"{results}/{method}/scores.csv"]
    rows, before = [], None
    for step in [*args.steps, 0]:
        reviewed = queue["image"].head(step).tolist()
        overrides = {}
        if reviewed:
            decisions = args.out / f"decisions_{step}.csv"
            decisions_of(reviewed, truth).to_csv(decisions, index=False)
            overrides = {"review": {"decisions": str(decisions.resolve())}}
        extra = args.out / "review.yaml"
        extra.write_text(yaml.safe_dump(overrides or {"review": {"decisions": None}}))
        subprocess.run([SNAKEMAKE, "--cores", str(args.cores), "--configfile", *args.configfile, str(extra), "--",
                        *targets], check=True, capture_output=True, text=True)
        if len(rows) == len(args.steps):
            break  # the run is put back
        scores = pd.read_csv(results / method / "scores.csv").set_index(["method", "split"])
        submission = pd.read_csv(results / method / "submission.csv", dtype=str)
        answers = dict(zip(submission["Image"], submission["Id"].str.split()))
        rest = [image for image in truth if image not in set(reviewed)]
        new_ids = {new_individual_id(image) for image in reviewed if truth[image] == NEW_WHALE}
        before = before if step else answers
        rest_map5, rest_before = (
            (map_at_5([[NEW_WHALE if i in new_ids else i for i in given[image]] for image in rest],
                      [truth[image] for image in rest]) if rest else float("nan")) for given in (answers, before))
        rows.append({"reviewed": step, "share": step / len(queue), "map5": scores.loc[(method, "test"), "map5"],
                     "map5_not_reviewed_before": rest_before, "map5_not_reviewed": rest_map5,
                     "not_reviewed": len(rest)})
        print(f"{step:>5} reviewed ({step / len(queue):.0%}): {method} test MAP@5 {rows[-1]['map5']:.4f}; over the "
              f"{len(rest)} not reviewed {rest_before:.4f} before, {rest_map5:.4f} after", flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "curve.csv", index=False)
    print(table.to_string(index=False))
    plot(table, method, args.out / "curve.png")


def plot(table: pd.DataFrame, method: str, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    axes.plot(table["reviewed"], table["map5"], "o-", label="every test photo")
    axes.plot(table["reviewed"], table["map5_not_reviewed"], "s-", label="the photos not reviewed")
    axes.plot(table["reviewed"], table["map5_not_reviewed_before"], "s--", color="grey",
              label="the same photos, nothing fed back")
    axes.set(xlabel="test photos reviewed (least sure first)", ylabel="test MAP@5",
             title=f"A simulated reviewer: {method}")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(png)
    plt.close(figure)


if __name__ == "__main__":
    main()
