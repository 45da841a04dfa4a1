"""What the workflow costs as the catalogue grows: every stage's wall time, CPU time and peak memory
at each of `--sizes` photos, and their growth.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/scale.py [--sizes 1000 4000] \
        [--workdir DIR] [--cores 2]

For each size N, a dataset of N generated photos (the demo generator, sea photos at the demo's
1,050 pixels): train and test as on Kaggle's playground (9,850 to 15,610: 39% train), 8% of the
train photos new_whale, and the named ones about 2.1 a known individual with Kaggle's skew (the
generator's long tail: half the individuals with one photo, a few with many). The workflow of this
checkout runs on it with `presets/cpu.yaml`, the demo's sizes (`presets/demo.yaml`) and `methods:
[baseline, local]`, on `--cores` cores, and each stage's cost is read from Snakemake's benchmark
files (`<results>/benchmarks/`; a stage run once per split is summed over them, its memory the
largest).

It prints, per stage, its wall seconds, CPU seconds and peak RSS at every size, the growth
exponents k of each between the two largest sizes (time ∝ N^k), and its peak RSS projected to the
playground's 25,460 photos by its own exponent; then the whole run's wall time;
the last line is `max_exponent=… projected_25k_h=… peak_rss_gb=… projected_25k_peak_rss_gb=…`:
the largest stage exponent, the wall hours projected to the playground's 25,460 photos (each
stage's time at the largest size grown by its own exponent), the largest peak memory measured,
and that projected the same way.

The datasets and runs are kept under `--workdir` (default: a temporary folder, removed after):
a dataset already there is used again, and a run already there resumes (Snakemake reruns what
changed). The stages' benchmark files are what is measured, so a run must start from an empty
results folder to measure every stage: delete `--workdir`'s `n<N>/results` to measure again.
The whole run's wall time is that of the run that made the results (`n<N>/workflow_wall_s.txt`).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import yaml

from whaleid.demo.dataset import generate_demo_dataset

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
# Kaggle's whale-categorization-playground: 9,850 train and 15,610 test photos; of the train
# photos 810 new_whale, the rest of 4,250 individuals.
PLAYGROUND_PHOTOS = 25_460
TRAIN_SHARE = 9_850 / 25_460
NEW_WHALE_SHARE = 810 / 9_850
PHOTOS_PER_INDIVIDUAL = (9_850 - 810) / 4_250


def generate(folder: Path, n_photos: int, seed: int) -> dict:
    """A dataset of `n_photos` in the playground's proportions, in `folder` (left as it is if there)."""
    n_train = round(TRAIN_SHARE * n_photos)
    n_individuals = max(1, round(n_train * (1 - NEW_WHALE_SHARE) / PHOTOS_PER_INDIVIDUAL))
    if (folder / "test_truth.csv").exists():
        return {"train": n_train, "test": n_photos - n_train, "individuals": n_individuals, "generated_s": 0.0}
    started = time.monotonic()
    generate_demo_dataset(folder, n_individuals=n_individuals, n_train_images=n_train,
                          n_test_images=n_photos - n_train, new_whale_train_fraction=NEW_WHALE_SHARE, seed=seed)
    return {"train": n_train, "test": n_photos - n_train, "individuals": n_individuals,
            "generated_s": time.monotonic() - started}


def run_workflow(work: Path, data: Path, cores: int, targets: Sequence[str] = (), options: Sequence[str] = ()
                 ) -> float:
    """Seconds of one workflow run of baseline and local on `data`, results in `work`/results (up
    to `targets`, default all; Snakemake's `options` added)."""
    configfile = work / "scale_config.yaml"
    configfile.write_text(yaml.safe_dump({"data_dir": str(data), "results_dir": "results",
                                          "methods": ["baseline", "local"], "submit": "best"}))
    command = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(work), "--cores", str(cores),
               "--configfile", str(REPO / "presets" / "cpu.yaml"), str(REPO / "presets" / "demo.yaml"),
               str(configfile), *options, *(("--", *targets) if targets else ())]
    started = time.monotonic()
    with open(work / "snakemake.log", "w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        sys.exit(f"the workflow failed at {work}: see {work / 'snakemake.log'}")
    return time.monotonic() - started


def stage_costs(benchmarks: Path) -> pd.DataFrame:
    """Per stage (rule): wall seconds and CPU seconds summed over its jobs, and its largest peak RSS
    (GB), from Snakemake's benchmark files under `benchmarks` (<rule>.tsv or <rule>/<wildcards>.tsv)."""
    rows = []
    for path in sorted(benchmarks.rglob("*.tsv")):
        stage = path.relative_to(benchmarks).parts[0].removesuffix(".tsv")
        table = pd.read_csv(path, sep="\t")
        for _, row in table.iterrows():
            rows.append({"stage": stage, "wall_s": float(row["s"]),
                         "cpu_s": float(pd.to_numeric(row.get("cpu_time"), errors="coerce") or 0.0),
                         "peak_gb": float(pd.to_numeric(row.get("max_rss"), errors="coerce") or 0.0) / 1024})
    if not rows:
        sys.exit(f"no benchmark files under {benchmarks}")
    return pd.DataFrame(rows).groupby("stage").agg(wall_s=("wall_s", "sum"), cpu_s=("cpu_s", "sum"),
                                                   peak_gb=("peak_gb", "max"))


def exponent(small: float, large: float, n_small: int, n_large: int) -> float:
    """k of time ∝ N^k through two measurements (0 where either is too short to tell)."""
    if small <= 0.05 or large <= 0.05:
        return 0.0
    return math.log(large / small) / math.log(n_large / n_small)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000], help="photos per dataset")
    parser.add_argument("--workdir", type=Path, help="keep datasets and runs here (default: a temporary folder)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = sorted(set(args.sizes))
    if len(sizes) < 2:
        parser.error("--sizes needs two sizes or more to fit a growth")
    with tempfile.TemporaryDirectory() as temporary:
        root = args.workdir or Path(temporary)
        costs, totals = {}, {}
        for size in sizes:
            work = root / f"n{size}"
            work.mkdir(parents=True, exist_ok=True)
            counts = generate(work / "data", size, args.seed)
            # A resumed run's own time is not the workflow's: the time of the run that made the
            # results is kept beside them.
            made = work / "workflow_wall_s.txt"
            fresh = not (work / "results" / "benchmarks").exists()
            seconds = run_workflow(work, work / "data", args.cores)
            if fresh:
                made.write_text(f"{seconds}\n")
            totals[size] = float(made.read_text()) if made.exists() else math.nan
            costs[size] = stage_costs(work / "results" / "benchmarks")
            print(f"N={size}: {counts['train']} train photos of {counts['individuals']} individuals, {counts['test']} "
                  f"test; generated in {counts['generated_s']:.0f} s, workflow {totals[size]:.0f} s wall"
                  + ("" if fresh else f" (when its results were made; resumed in {seconds:.0f} s)"), flush=True)
        small, large = sizes[-2], sizes[-1]
        table = pd.concat({size: costs[size] for size in sizes}, axis=1).fillna(0.0)
        print(f"\n{'stage':<28}" + "".join(f"{f'wall_s@{n}':>13}{f'cpu_s@{n}':>12}{f'gb@{n}':>8}" for n in sizes)
              + f"{'k_wall':>8}{'k_cpu':>7}{'k_gb':>6}{'gb@25k':>8}")
        projected_s, projected_gb, exponents = 0.0, 0.0, []
        for stage, row in table.sort_values((large, "wall_s"), ascending=False).iterrows():
            k = exponent(row[(small, "wall_s")], row[(large, "wall_s")], small, large)
            k_cpu = exponent(row[(small, "cpu_s")], row[(large, "cpu_s")], small, large)
            k_gb = exponent(row[(small, "peak_gb")], row[(large, "peak_gb")], small, large)
            exponents.append(k)
            projected_s += row[(large, "wall_s")] * (PLAYGROUND_PHOTOS / large) ** k
            # memory never projected to shrink: a stage's fixed share (Python, its libraries) only grows
            stage_gb = row[(large, "peak_gb")] * (PLAYGROUND_PHOTOS / large) ** max(k_gb, 0)
            projected_gb = max(projected_gb, stage_gb)
            print(f"{stage:<28}" + "".join(f"{row[(n, 'wall_s')]:>13.1f}{row[(n, 'cpu_s')]:>12.1f}"
                                           f"{row[(n, 'peak_gb')]:>8.2f}" for n in sizes)
                  + f"{k:>8.2f}{k_cpu:>7.2f}{k_gb:>6.2f}{stage_gb:>8.2f}")
        run_k = exponent(totals[small], totals[large], small, large)
        print(f"{'whole run (wall)':<28}" + "".join(f"{totals[n]:>13.1f}{'':>12}{'':>8}" for n in sizes)
              + f"{run_k:>8.2f}")
        print(f"max_exponent={max(exponents):.2f} projected_25k_h={projected_s / 3600:.2f} "
              f"peak_rss_gb={table[(large, 'peak_gb')].max():.2f} projected_25k_peak_rss_gb={projected_gb:.1f}")


if __name__ == "__main__":
    main()
