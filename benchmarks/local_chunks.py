"""What splitting the local method's matching into chunks costs and gains, side by side.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/local_chunks.py [--photos 1000] \
        [--chunks 1 4] [--cores 2] [--workdir DIR]

A dataset of `--photos` generated photos, as `benchmarks/scale.py` makes them, is run once
through the local method (`presets/cpu.yaml`, the demo's sizes). Then, for each count of
`--chunks`, the queries' matching and its gathering run again (`local_match`, `local_identify`,
forced) in that many chunks (`--set-scatter local_queries=N`), and it prints per count: the rerun's wall seconds on
`--cores` cores, the CPU seconds of every chunk summed (what a cluster is billed), the longest
chunk's wall seconds (the matching's time where there are cores for every chunk at once:
`--cores 16` holds four 4-thread chunks), the largest chunk's peak memory, and whether the
answers are the same bytes as with the first count. The last line holds the ratios to the first
count: `cpu_ratio=… longest_chunk_ratio=… peak_ratio=… identical=…`.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import pandas as pd
from scale import generate, run_workflow

# What local_identify writes: the answers that must not depend on the chunk count.
ANSWERS = ["local/predictions/validation.csv", "local/predictions/test.csv", "local/new_whale_threshold.csv",
           "local/shortlists/validation.csv", "local/shortlists/test.csv", "local/pairs/validation.csv",
           "local/pairs/test.csv", "local/poolings.csv"]


def chunk_costs(benchmarks: Path, chunks: int) -> dict[str, float]:
    """CPU seconds summed, the longest wall seconds and the largest peak RSS (GB) of the
    local_match jobs of `chunks` chunks, from their benchmark files."""
    tables = [pd.read_csv(path, sep="\t") for path in sorted(benchmarks.glob(f"local_match/*/*-of-{chunks}.tsv"))]
    if not tables:
        raise SystemExit(f"no local_match benchmark of {chunks} chunks under {benchmarks}")
    jobs = pd.concat(tables, ignore_index=True)
    return {"cpu_s": float(jobs["cpu_time"].sum()), "longest_s": float(jobs["s"].max()),
            "peak_gb": float(jobs["max_rss"].max()) / 1024, "jobs": len(jobs)}


def answers_digest(results: Path) -> str:
    digest = hashlib.sha256()
    for name in ANSWERS:
        digest.update(name.encode() + b"\0" + (results / name).read_bytes())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=1000, help="photos in the generated dataset")
    parser.add_argument("--chunks", type=int, nargs="+", default=[1, 4], help="chunk counts, the first the reference")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, help="keep the dataset and run here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        work = (args.workdir or Path(temporary)) / f"n{args.photos}"
        work.mkdir(parents=True, exist_ok=True)
        counts = generate(work / "data", args.photos, seed=0)
        targets = [f"results/{name}" for name in ANSWERS]
        first = run_workflow(work, work / "data", args.cores, targets)
        print(f"{args.photos} photos ({counts['train']} train, {counts['test']} test): the local method's first run "
              f"{first:.0f} s", flush=True)
        rows = []
        for chunks in args.chunks:
            started = time.monotonic()
            # the queries' chunks only: the foreground's and the verifier's stay as they were
            run_workflow(work, work / "data", args.cores, targets, ["--forcerun", "local_match", "local_identify",
                                                                    "--set-scatter", f"local_queries={chunks}"])
            rows.append({"chunks": chunks, "rerun_s": time.monotonic() - started,
                         **chunk_costs(work / "results" / "benchmarks", chunks),
                         "digest": answers_digest(work / "results")})
        table = pd.DataFrame(rows)
        table["identical"] = table["digest"] == table.loc[0, "digest"]
        print(table.drop(columns="digest").to_string(index=False, float_format=lambda value: f"{value:.2f}"))
        last, reference = table.iloc[-1], table.iloc[0]
        print(f"cpu_ratio={last['cpu_s'] / reference['cpu_s']:.2f} "
              f"longest_chunk_ratio={last['longest_s'] / reference['longest_s']:.2f} "
              f"peak_ratio={last['peak_gb'] / reference['peak_gb']:.2f} identical={bool(table['identical'].all())}")


if __name__ == "__main__":
    main()
