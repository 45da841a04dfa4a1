"""Retrieval speed: `metric_learning.retrieval.rank_catalogue` on random embeddings, and against a naive reference.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/metric_learning_retrieval.py \
        [--catalogue 100000] [--queries 2000]

Random unit embeddings stand in for a model's (the speed does not depend on what they mean);
each catalogue photo belongs to one of `--individuals` ids drawn uniformly, so individuals have
from one to a dozen or so photos. It prints, for aggregate "max" and "mean_top_k":
(a) seconds and queries/s of rank_catalogue at the full size (best of `--repeats`), and
(b) at a smaller size, rank_catalogue against a naive reference (the full similarity matrix,
then one numpy pass per individual over its columns), side by side with the ratio; the two
must give the same candidates. The last line is `speedup_vs_naive_max X speedup_vs_naive_mean_top_k Y`.
"""

from __future__ import annotations

import argparse

import numpy as np
from timing import best_seconds

from whaleid.identification.candidates import N_CANDIDATES
from whaleid.methods.metric_learning.retrieval import normalise, rank_catalogue


def random_catalogue(n_photos: int, n_individuals: int, n_queries: int, dimension: int, seed: int
                     ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Unit catalogue embeddings, their ids (uniformly drawn among `n_individuals`) and unit queries."""
    rng = np.random.default_rng(seed)
    catalogue = normalise(rng.standard_normal((n_photos, dimension), dtype=np.float32))
    names = np.array([f"w_{i:06d}" for i in range(n_individuals)])
    ids = names[rng.integers(0, n_individuals, n_photos)].tolist()
    queries = normalise(rng.standard_normal((n_queries, dimension), dtype=np.float32))
    return catalogue, ids, queries


def naive_rank(query: np.ndarray, catalogue: np.ndarray, ids: list[str], aggregate: str, top_k: int
               ) -> list[list[str]]:
    """The four best individuals per query the obvious way: every similarity at once, then a
    loop over the individuals (sorted, so that a stable sort breaks ties by id as rank_catalogue does)."""
    similarities = normalise(query) @ normalise(catalogue).T
    individuals, individual_of_photo = np.unique(np.asarray(ids), return_inverse=True)
    # each individual's columns found once, so that the loop times the scoring, not a search
    photos_of = np.split(np.argsort(individual_of_photo, kind="stable"),
                         np.cumsum(np.bincount(individual_of_photo))[:-1])
    k = 1 if aggregate == "max" else top_k
    scores = np.empty((len(query), len(individuals)), np.float32)
    for column, photos in enumerate(photos_of):
        own = np.sort(similarities[:, photos], axis=1)[:, ::-1]
        scores[:, column] = own[:, :k].mean(axis=1)
    best = np.argsort(-scores, axis=1, kind="stable")[:, :N_CANDIDATES]
    return individuals[best].tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogue", type=int, default=100_000, help="catalogue photos")
    parser.add_argument("--individuals", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--dimension", type=int, default=128)
    parser.add_argument("--top-k", type=int, default=3, help="k of mean_top_k")
    parser.add_argument("--block-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shrink", type=int, default=10,
                        help="the naive comparison's catalogue, individuals and queries are this many times fewer")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    aggregates = {"max": 1, "mean_top_k": args.top_k}

    catalogue, ids, queries = random_catalogue(args.catalogue, args.individuals, args.queries, args.dimension,
                                               args.seed)
    print(f"rank_catalogue: catalogue {args.catalogue} x {args.dimension} ({len(set(ids))} individuals), "
          f"{args.queries} queries, block {args.block_size}")
    print(f"  {'aggregate':<18} {'seconds':>8} {'queries/s':>10}")
    for aggregate, k in aggregates.items():
        seconds, _ = best_seconds(lambda aggregate=aggregate, k=k: rank_catalogue(
            queries, catalogue, ids, aggregate=aggregate, top_k=k, block_size=args.block_size), args.repeats)
        label = aggregate if aggregate == "max" else f"{aggregate} (k={k})"
        print(f"  {label:<18} {seconds:8.2f} {args.queries / seconds:10.0f}")

    small = (args.catalogue // args.shrink, args.individuals // args.shrink, args.queries // args.shrink)
    catalogue, ids, queries = random_catalogue(*small, args.dimension, args.seed + 1)
    print(f"against the naive reference: catalogue {small[0]} x {args.dimension} ({len(set(ids))} individuals), "
          f"{small[2]} queries")
    print(f"  {'aggregate':<18} {'rank_catalogue s':>16} {'naive s':>8} {'speedup':>8}")
    speedups = {}
    for aggregate, k in aggregates.items():
        fast, candidates = best_seconds(lambda aggregate=aggregate, k=k: rank_catalogue(
            queries, catalogue, ids, aggregate=aggregate, top_k=k, block_size=args.block_size), args.repeats)
        slow, reference = best_seconds(
            lambda aggregate=aggregate, k=k: naive_rank(queries, catalogue, ids, aggregate, k), 1)
        if candidates.ids != reference:
            raise AssertionError(f"rank_catalogue and the naive reference disagree for {aggregate}")
        speedups[aggregate] = slow / fast
        label = aggregate if aggregate == "max" else f"{aggregate} (k={k})"
        print(f"  {label:<18} {fast:16.3f} {slow:8.2f} {slow / fast:7.1f}x")
    print(f"speedup_vs_naive_max {speedups['max']:.1f} speedup_vs_naive_mean_top_k {speedups['mean_top_k']:.1f}")


if __name__ == "__main__":
    main()
