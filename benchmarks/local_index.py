"""What the compressed descriptor index (`local.compress_above`) saves and costs, side by side on a finished run.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/local_index.py --results results/whales \
        --data /data/whales [--configfile presets/cpu.yaml] [--queries 0]

On the keypoints, split and foreground weights of a run of the workflow (`--results`, with the
local method), the test search's catalogue (every train photo of a known individual) is built
twice, each in a process of its own: with inverted lists that hold every descriptor whole
(IVF-Flat) and with the compressed lists (IVF-SQ8, 8 bits a component), whatever the catalogue's
size. For each: the build's seconds, the index's bytes, the process's peak memory, and the
shortlist of every test query (the first `--queries`, 0: all) by voting, as `local_match` makes
it before its geometric check. Then, with `test_truth.csv` of `--data`: how often each shortlist
holds the query's individual (known test photos), and how often the two shortlists agree. The
geometric check reads the exact descriptors either way; what the compression changes in MAP@5
is the workflow's to say (`local.compress_above: 0` forces it).

The last line is `bytes_ratio … peak_rss_ratio … recall_flat … recall_compressed … same_shortlist …`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

KINDS = {"flat": None, "compressed": 0}


def shortlists_of(results: Path, configfiles: list[str], kind: str, queries: int, threads: int, out: Path) -> dict:
    """In this process: the test catalogue built with the index `kind`, every query's shortlist
    written to `out` (.npy, ids), and the build's figures."""
    import faiss

    import whaleid.methods.local.catalogue as local_catalogue
    from whaleid.identification.search import Queries
    from whaleid.methods.local.keypoints import read_keypoints, read_weights
    from whaleid.settings import KeypointSettings, MatchSettings

    faiss.omp_set_num_threads(threads)
    # inverted lists either way, as a catalogue of the size users have would get
    local_catalogue.EXACT_SEARCH_BELOW = 0
    settings = replace(MatchSettings.defaults(*configfiles), compress_above=KINDS[kind])
    image_size = KeypointSettings.defaults(*configfiles).side
    keypoints = results / "local" / "keypoints"
    train, _ = read_keypoints(keypoints / "train.npy", keypoints / "train.csv")
    test, _ = read_keypoints(keypoints / "test.npy", keypoints / "test.csv")
    weighed = (results / "local/foreground/train.npy").exists()
    train_weights = read_weights(results / "local/foreground/train.npy", train) if weighed else None
    test_weights = read_weights(results / "local/foreground/test.npy", test) if weighed else None
    searched = Queries.read(keypoints / "train.csv", keypoints / "test.csv", results / "validation/split.csv",
                            results / "ingest/manifest.csv").searches()[1]
    started = time.perf_counter()
    catalogue = local_catalogue.LocalCatalogue(
        searched.catalogue_values(train, test), np.asarray(searched.catalogue_ids), image_size, settings,
        None if train_weights is None else searched.catalogue_values(train_weights, test_weights))
    build = time.perf_counter() - started
    n = len(searched.queries) if not queries else min(queries, len(searched.queries))
    rows = searched.query_values(train, test, slice(0, n))
    weights = None if test_weights is None else searched.query_values(train_weights, test_weights, slice(0, n))
    started, shortlists = time.perf_counter(), []
    for start in range(0, n, settings.query_block):
        queries = local_catalogue.query_keypoints(
            rows[start:start + settings.query_block],
            None if weights is None else weights[start:start + settings.query_block])
        votes = catalogue.block_votes([d for _, d, _ in queries], [w for _, _, w in queries])
        shortlists += [catalogue.individuals[catalogue.shortlist(*vote)] for vote in votes]
    voting = time.perf_counter() - started
    table = np.full((n, settings.shortlist), "", dtype=object)
    for row, shortlist in enumerate(shortlists):
        table[row, :len(shortlist)] = shortlist
    np.save(out, table.astype(str))
    # before the index is serialised to be measured, which copies it
    peak_rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {"kind": kind, "descriptors": int(catalogue.index.ntotal), "build_s": build, "voting_s": voting,
            "index_bytes": int(faiss.serialize_index(catalogue.index).nbytes), "peak_rss_gb": peak_rss_gb,
            "images": searched.queries["image"].iloc[:n].tolist(), "individuals": catalogue.individuals.tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--data", type=Path, help="the dataset's folder, for test_truth.csv")
    parser.add_argument("--configfile", nargs="*", default=[], help="config files the run was made with (presets)")
    parser.add_argument("--queries", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", choices=list(KINDS), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(shortlists_of(args.results, args.configfile, args.one, args.queries, args.threads,
                                       args.out)))
        return

    measured, shortlists = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for kind in KINDS:
            out = Path(folder) / f"{kind}.npy"
            child = subprocess.run([sys.executable, __file__, "--one", kind, "--out", str(out), "--results",
                                    str(args.results), "--queries", str(args.queries), "--threads",
                                    str(args.threads), "--configfile", *args.configfile],
                                   check=True, capture_output=True, text=True)
            measured[kind] = json.loads(child.stdout.strip().splitlines()[-1])
            shortlists[kind] = np.load(out)
    for kind, figures in measured.items():
        print(f"{kind:<10} descriptors {figures['descriptors']:>9,}  index {figures['index_bytes'] / 2**20:8.1f} MiB"
              f"  build {figures['build_s']:6.1f} s  voting {figures['voting_s']:6.1f} s"
              f"  peak RSS {figures['peak_rss_gb']:.2f} GB")
    flat, compressed = shortlists["flat"], shortlists["compressed"]
    same = float(np.mean([set(a) == set(b) for a, b in zip(flat, compressed)]))
    same_first = float(np.mean(flat[:, 0] == compressed[:, 0]))
    recall = {kind: float("nan") for kind in KINDS}
    if args.data is not None and (args.data / "test_truth.csv").exists():
        truth = pd.read_csv(args.data / "test_truth.csv", dtype=str).set_index("Image")["Id"]
        ids = truth.reindex(measured["flat"]["images"]).to_numpy()
        catalogued = set(measured["flat"]["individuals"])
        known = np.array([i in catalogued for i in ids])
        for kind, table in shortlists.items():
            recall[kind] = float(np.mean([i in row for i, row in zip(ids[known], table[known])]))
        print(f"known test photos {known.sum()}: true individual shortlisted {recall['flat']:.4f} (flat), "
              f"{recall['compressed']:.4f} (compressed)")
    print(f"same shortlist {same:.4f}, same first {same_first:.4f} of {len(flat)} queries")
    print(f"bytes_ratio {measured['compressed']['index_bytes'] / measured['flat']['index_bytes']:.3f} "
          f"peak_rss_ratio {measured['compressed']['peak_rss_gb'] / measured['flat']['peak_rss_gb']:.3f} "
          f"build_ratio {measured['compressed']['build_s'] / measured['flat']['build_s']:.3f} "
          f"voting_ratio {measured['compressed']['voting_s'] / measured['flat']['voting_s']:.3f} "
          f"recall_flat {recall['flat']:.4f} recall_compressed {recall['compressed']:.4f} same_shortlist {same:.4f}")


if __name__ == "__main__":
    main()
