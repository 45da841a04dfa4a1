"""Items linked in pairs, grouped: the connected components of the links (single linkage: two
items join through a third linked to both). The encounters found from the photos' capture times
(`whaleid.data.encounters`) and the new individuals proposed from a survey
(`whaleid.methods.local.new_individuals`) are such groups. numpy.
"""

from __future__ import annotations

import numpy as np


def linked_groups(n: int, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Each of `n` items' group (a number from 0, in the order of each group's first item), where
    each link joins item `first[k]` and item `second[k]`: the connected components."""
    parent = np.arange(n)

    def root(item: int) -> int:
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    for a, b in zip(np.asarray(first, np.int64).tolist(), np.asarray(second, np.int64).tolist()):
        if not (0 <= a < n and 0 <= b < n):
            raise ValueError(f"a link of items {a} and {b}, of {n}")
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([root(item) for item in range(n)], np.int64)
    return np.unique(roots, return_inverse=True)[1].astype(np.int64)
