"""How much of the keypoints' weight lies on the animal, before and after foreground weighting, on a finished scene run.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/local_foreground_share.py \
        --results results/scenes --data resources/demo_scenes --side 448

Reads the run's keypoints that were matched (`local/keypoints`, or `local/kept` where
`local.detected_per_kept` kept those on the animal of more found), their weights
(`local/foreground` or `local/kept`, from `local.foreground: learned`) and the masks the demo
generator writes beside a scene dataset (`masks/<split>/<image>.png`, 255 where the animal is,
which the workflow never reads). For
fit, validation and test photos apart it prints the share of keypoints on the animal (every
keypoint weighing 1), the share of their weight on it, and how often an animal keypoint
outweighs a background one (rank AUC). `--side`: the side of the square the run's keypoint
positions are in (`local.image_size`, or `local.max_side` where set). Not in `make benchmark`:
it needs a finished run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from run_files import matched_keypoints

from whaleid.methods.local.keypoints import read_keypoints, read_weights


def on_animal(mask: np.ndarray, xy: np.ndarray, side: int) -> np.ndarray:
    """Whether each keypoint (positions in the `side` square that centres the photo) lies on the mask."""
    height, width = mask.shape
    long_side = max(height, width)
    photo_xy = xy * long_side / side - [(long_side - width) / 2, (long_side - height) / 2]
    x = np.clip(np.round(photo_xy[:, 0]).astype(int), 0, width - 1)
    y = np.clip(np.round(photo_xy[:, 1]).astype(int), 0, height - 1)
    return mask[y, x] > 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--side", type=int, required=True)
    args = parser.parse_args()
    subset = pd.read_csv(args.results / "validation" / "split.csv").set_index("image")["subset"]
    print(f"{args.results}: keypoints on the animal (masks of {args.data})")
    print(f"  {'photos':<11} {'keypoints':>10} {'share on animal':>16} {'share of weight':>16} {'rank AUC':>9}")
    for split in ("train", "test"):
        cache, cache_index, weights_npy = matched_keypoints(args.results, split)
        keypoints, index = read_keypoints(cache, cache_index)
        weights = read_weights(weights_npy, keypoints)
        groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for row, weight, image in zip(keypoints, weights, index["image"]):
            used = np.isfinite(row["xy"][:, 0])
            mask = cv2.imread(str(args.data / "masks" / split / (Path(image).stem + ".png")), cv2.IMREAD_GRAYSCALE)
            if mask is None:
                continue  # a near-duplicate has no mask
            group = subset.get(image, "fit") if split == "train" else "test"
            groups.setdefault(group, []).append((on_animal(mask, row["xy"][used], args.side), weight[used]))
        for group, found in groups.items():
            animal = np.concatenate([a for a, _ in found])
            weight = np.concatenate([w for _, w in found])
            auc = rank_auc(weight[animal], weight[~animal])
            print(f"  {group:<11} {len(animal):10d} {animal.mean():16.3f} {weight[animal].sum() / weight.sum():16.3f} "
                  f"{auc:9.3f}")


def rank_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a random positive outranks a random negative), ties counting half."""
    if not len(positive) or not len(negative):
        return float("nan")
    ranks = pd.Series(np.concatenate([positive, negative])).rank().to_numpy()
    return float((ranks[:len(positive)].sum() - len(positive) * (len(positive) + 1) / 2)
                 / (len(positive) * len(negative)))


if __name__ == "__main__":
    main()
