"""The geometric check of one query photo against one catalogue photo.

The query's descriptors are matched to the photo's (nearest neighbour, Lowe's ratio test:
`ratio_matches`), and RANSAC fits one transform (`similarity`, `affine` or `homography`) to the
matches (`fit_transform`): inliers are matches that agree on where the pattern lies. What they
cover (`hull_share`) and how the transform scales and turns (`scale_and_rotation`) say more
about the pair; `inlier_matches` draws one pair's inliers again for a person to look at.

Descriptors are compared as RootSIFT (`root_sift`: the square root of the L1-normalised SIFT
vector), whose Euclidean distance is the Hellinger kernel, better suited to histograms than
plain SIFT's. numpy and OpenCV.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from whaleid.methods.local.keypoints import unpack
from whaleid.settings import MatchSettings

# A fit needs this many matches to be tried at all (an affine fit needs 3, a homography 4).
MIN_MATCHES = 4


def root_sift(descriptors: np.ndarray) -> np.ndarray:
    """RootSIFT of SIFT `descriptors` (n, 128): the square root of each L1-normalised row, as
    float32 rows of unit L2 length (rows of zeros stay zeros)."""
    x = np.asarray(descriptors, np.float32)
    total = x.sum(axis=1, keepdims=True)
    return np.sqrt(np.divide(x, total, out=np.zeros_like(x), where=total > 0))


def ratio_matches(query_descriptors: np.ndarray, photos_descriptors: Sequence[np.ndarray], ratio: float
                  ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Lowe's ratio-test matches of a query's RootSIFT descriptors to each photo's: for each
    photo, (query rows, photo rows, distance ratios) of the query descriptors whose nearest
    photo descriptor is nearer than `ratio` times the second nearest, and by how much (the
    nearest's distance over the second's: the lower, the more distinctive the match).

    One matrix product against all the photos at once: descriptors are of unit length, so
    distances follow from dot products, and BLAS, unlike a loop of pairwise matchers, keeps every
    core busy and lets other threads run."""
    query = np.asarray(query_descriptors, np.float32)
    found = [(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))] * len(photos_descriptors)
    # photos with fewer than two descriptors have no second nearest to compare with
    usable = [i for i, d in enumerate(photos_descriptors) if len(d) >= 2]
    if len(query) == 0 or not usable:
        return found
    counts = np.array([len(photos_descriptors[i]) for i in usable])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    similarities = query @ np.concatenate([photos_descriptors[i] for i in usable]).astype(np.float32, copy=False).T
    # Each photo's nearest and second nearest, for all photos in a few whole-array passes.
    best = np.maximum.reduceat(similarities, starts, axis=1)
    photo_of_column = np.repeat(np.arange(len(usable)), counts)
    columns = np.where(similarities >= best[:, photo_of_column], np.arange(similarities.shape[1]),
                       similarities.shape[1])
    nearest = np.minimum.reduceat(columns, starts, axis=1)  # the first of equals
    rows = np.arange(len(query))[:, None]
    similarities[rows, nearest] = -np.inf
    second = np.maximum.reduceat(similarities, starts, axis=1)
    # |a - b|^2 = 2 - 2 a.b for unit vectors (RootSIFT); rounding can take it just below 0
    d1, d2 = np.sqrt(np.maximum(2 - 2 * best, 0)), np.sqrt(np.maximum(2 - 2 * second, 0))
    good = d1 < ratio * d2
    for k, photo in enumerate(usable):
        matched = np.flatnonzero(good[:, k])
        found[photo] = (matched, nearest[matched, k] - starts[k], (d1[matched, k] / d2[matched, k]).astype(np.float32))
    return found


def fit_transform(source: np.ndarray, target: np.ndarray, settings: MatchSettings, image_size: int
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Which matched positions (`source` in the query to `target` in a photo, pixels) agree on
    one `settings.transform`, by RANSAC: a boolean mask, and the transform (2x3, or 3x3 for a
    homography; None where there were too few matches for a fit or none was found)."""
    none = np.zeros(len(source), bool), None
    if len(source) < MIN_MATCHES:
        return none
    source, target = np.asarray(source, np.float32), np.asarray(target, np.float32)
    tolerance = settings.reprojection_error * image_size
    if settings.transform == "homography":
        matrix, inliers = cv2.findHomography(source, target, cv2.RANSAC, tolerance, maxIters=settings.ransac_iterations)
    elif settings.transform == "affine":
        matrix, inliers = cv2.estimateAffine2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=tolerance,
                                               maxIters=settings.ransac_iterations)
    else:
        matrix, inliers = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC,
                                                      ransacReprojThreshold=tolerance,
                                                      maxIters=settings.ransac_iterations)
    if inliers is None or matrix is None:
        return none
    return inliers.ravel().astype(bool), matrix


def guided_matches(query_xy: np.ndarray, query_descriptors: np.ndarray, photo_xy: np.ndarray,
                   photo_descriptors: np.ndarray, matrix: np.ndarray | None, radius: float, ratio: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """More matches of one pair along its fitted transform (guided matching): every query
    keypoint (positions `query_xy`, RootSIFT `query_descriptors`) is carried by `matrix` into
    the photo, and matched to the nearest photo descriptor within `radius` pixels of where it
    lands, if that is nearer than `ratio` times the nearest descriptor anywhere else in the
    photo; each photo keypoint is taken once, by its nearest. (query rows, photo rows); none
    where there is no transform.

    Lowe's test compares a match with the photo's second-nearest descriptor anywhere, which is
    often beside the true one: another keypoint of the same spot at a nearby scale, or the
    next callosity of a pattern. A true correspondence then fails the test against its own
    neighbour. Once a transform says where the pattern lies, a match need only be nearer than
    everything outside the window. On the right whales' fit photos asked
    out of fold, the true pair had more of them than the best wrong pair for 80% of the queries
    whose true photo was verified, against 70% by inliers (ratio 0.9, radius as RANSAC's)."""
    none = np.zeros(0, np.int64), np.zeros(0, np.int64)
    if matrix is None or len(query_xy) == 0 or len(photo_xy) == 0:
        return none
    matrix = np.asarray(matrix, np.float64)
    query_xy, photo_xy = np.asarray(query_xy, np.float64), np.asarray(photo_xy, np.float64)
    if matrix.shape[0] == 3:
        landed = cv2.perspectiveTransform(query_xy[None], matrix)[0]
    else:
        landed = query_xy @ matrix[:, :2].T + matrix[:, 2]
    similarity = np.asarray(query_descriptors, np.float32) @ np.asarray(photo_descriptors, np.float32).T
    nearest = similarity.argmax(axis=1)
    # Only a keypoint whose nearest descriptor in the whole photo lies in its window can be
    # nearer than `ratio` (<= 1) times everything outside it: the windows of those few are
    # all that is looked at (8 times faster than every window, on 500 keypoints a photo).
    candidates = np.flatnonzero(((landed - photo_xy[nearest]) ** 2).sum(axis=1) < radius ** 2)
    inside = ((landed[candidates, None, :] - photo_xy[None]) ** 2).sum(axis=-1) < radius ** 2
    outside = np.where(inside, -np.inf, similarity[candidates]).max(axis=1, initial=-np.inf)
    # distances of unit vectors (RootSIFT); inf where the window holds every photo keypoint
    near = np.sqrt(np.maximum(2 - 2 * similarity[candidates, nearest[candidates]], 0))
    elsewhere = np.sqrt(np.maximum(2 - 2 * outside, 0))
    passed = near < ratio * elsewhere
    found = candidates[passed][np.argsort(near[passed], kind="stable")]
    # one to one: a photo keypoint goes to the query keypoint nearest it in descriptor
    _, first = np.unique(nearest[found], return_index=True)
    found = np.sort(found[first])
    return found, nearest[found]


def fit_inliers(source: np.ndarray, target: np.ndarray, settings: MatchSettings, image_size: int) -> int:
    """How many matched positions agree on one transform (`fit_transform`); 0 where there are
    too few for a fit."""
    return int(fit_transform(source, target, settings, image_size)[0].sum())


def hull_share(points: np.ndarray, image_size: int) -> float:
    """The share of the `image_size` square that the convex hull of `points` covers: inliers
    spread over the whole pattern say more than as many bunched in one spot."""
    if len(points) < 3:
        return 0.0
    return float(cv2.contourArea(cv2.convexHull(np.asarray(points, np.float32)))) / image_size ** 2


def scale_and_rotation(matrix: np.ndarray | None) -> tuple[float, float]:
    """How much a fitted transform scales (the square root of its linear part's determinant)
    and turns (degrees); NaN where there is none. A homography is read at its linear part."""
    if matrix is None:
        return math.nan, math.nan
    linear = np.asarray(matrix, np.float64)[:2, :2]
    if matrix.shape[0] == 3 and matrix[2, 2]:
        linear = linear / matrix[2, 2]
    return math.sqrt(abs(np.linalg.det(linear))), math.degrees(math.atan2(linear[1, 0], linear[0, 0]))


def inlier_matches(query: np.ndarray, photo: np.ndarray, settings: MatchSettings, image_size: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Where the inliers of one (query, catalogue photo) pair lie, found as
    `LocalCatalogue.verify` finds them (`query`, `photo`: their keypoint cache rows): the
    query's and the photo's positions (n, 2), pixels of the `image_size` square, inlier i of
    one matched to inlier i of the other. What a person looks at to believe a match."""
    (query_xy, query_descriptors), (photo_xy, photo_descriptors) = unpack(query), unpack(photo)
    (query_rows, photo_rows, _), = ratio_matches(root_sift(query_descriptors), [root_sift(photo_descriptors)],
                                                 settings.ratio)
    inlier, _ = fit_transform(query_xy[query_rows], photo_xy[photo_rows], settings, image_size)
    return query_xy[query_rows][inlier], photo_xy[photo_rows][inlier]
