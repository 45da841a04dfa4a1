"""What each verified pair of photos measures (`VERIFIED_COLUMNS`), and what it is worth beside
the query's other pairs (`with_query_context`): the statistics the verifier reads. pandas only.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

# What `LocalCatalogue.verify` measures of each pair it checks. photo: the catalogue photo's
# position among the catalogue's photos; individual: its individual's position in the
# catalogue's individuals; shortlist_rank: where voting put the individual.
VERIFIED_COLUMNS = {
    "photo": np.int64, "individual": np.int64, "shortlist_rank": np.int64,
    "individual_votes": np.float64, "photo_votes": np.float64,
    # ratio-test matches, and those RANSAC kept
    "matches": np.int64, "inliers": np.int64,
    # the inliers, each weighed by how likely both its keypoints lie on the animal
    "foreground_inliers": np.float64,
    # the inliers' nearest-to-second-nearest distance ratios (10%, 50%, 90% quantiles; 1 if none)
    "ratio_q10": np.float64, "ratio_q50": np.float64, "ratio_q90": np.float64,
    # the share of each photo's square the inliers' convex hull covers
    "query_cover": np.float64, "photo_cover": np.float64,
    # matches found along the fitted transform (`geometry.guided_matches`), and weighed as inliers are
    "guided_matches": np.int64, "guided_foreground": np.float64,
    # the fitted transform (NaN where none was found)
    "scale": np.float64, "rotation": np.float64,
    "query_keypoints": np.int64, "photo_keypoints": np.int64,
}
# Those of them measured from the two photos' keypoints alone, the same whatever voting said:
# a pair checked once need not be checked again (`LocalCatalogue.verify`'s `checked_before`).
PAIR_COLUMNS = tuple(list(VERIFIED_COLUMNS)[list(VERIFIED_COLUMNS).index("matches"):])


def checked_before(pairs: pd.DataFrame, queries: np.ndarray, photo_position: Mapping) -> list[dict]:
    """Of each of `queries` (numbers), its pairs in `pairs` (``query``, ``photo`` and
    `PAIR_COLUMNS`) by the catalogue position of their photo (`photo_position`: from what
    ``photo`` holds, its name, to its position; photos it lacks are left out):
    `catalogue.match_queries`' `checked_before`."""
    queries = np.asarray(queries).tolist()
    known = pairs[pairs["query"].isin(queries) & pairs["photo"].isin(photo_position)]
    found = {query: {} for query in queries}
    values = zip(*(known[column].tolist() for column in PAIR_COLUMNS))
    for query, photo, measured in zip(known["query"].tolist(), known["photo"].tolist(), values):
        found[query][photo_position[photo]] = measured
    return [found[query] for query in queries]


def with_query_context(pairs: pd.DataFrame) -> pd.DataFrame:
    """`pairs` (one row a verified pair, with a ``query`` column) with what each pair is worth
    beside the query's other pairs: ``inlier_share`` (inliers over matches),
    ``foreground_share`` (foreground inliers over inliers), ``individual_vote_share`` and
    ``photo_vote_share`` (its votes over the query's most), ``inlier_gap`` (its foreground
    inliers less the most of any other individual's photo for that query: a clear winner has a
    large one) and ``log_scale`` (|log| of the transform's scale)."""
    pairs = pairs.copy()
    pairs["inlier_share"] = pairs["inliers"] / pairs["matches"].clip(lower=1)
    pairs["foreground_share"] = pairs["foreground_inliers"] / pairs["inliers"].clip(lower=1)
    by_query = pairs.groupby("query", sort=False)
    for kind in ("individual", "photo"):
        most = by_query[f"{kind}_votes"].transform("max").to_numpy()
        pairs[f"{kind}_vote_share"] = np.divide(pairs[f"{kind}_votes"], most, out=np.zeros(len(pairs)),
                                                where=most > 0)
    inliers = "foreground_inliers"
    best_of_individual = pairs.groupby(["query", "individual"], sort=False)[inliers].transform("max")
    # the best and second-best individual of each query by (foreground) inliers
    per_individual = pairs.groupby(["query", "individual"], sort=False)[inliers].max().reset_index()
    ranked = per_individual.sort_values(["query", inliers], ascending=[True, False])
    first = ranked.groupby("query").nth(0).set_index("query")[inliers]
    second = ranked.groupby("query").nth(1).set_index("query")[inliers]
    first_of_query = pairs["query"].map(first).to_numpy()
    second_of_query = pairs["query"].map(second).fillna(0).to_numpy()
    best_other = np.where(best_of_individual.to_numpy() == first_of_query, second_of_query, first_of_query)
    pairs["inlier_gap"] = pairs[inliers] - best_other
    scale = pairs["scale"].to_numpy(np.float64)
    # a degenerate fit (scale 0) is as good as none: missing, as the trees take it
    pairs["log_scale"] = np.abs(np.log(np.where(scale > 0, scale, np.nan)))
    return pairs
