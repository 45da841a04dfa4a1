"""Keypoints at the photo's own resolution (`local.max_side`) against keypoints on the preprocessed square.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/local_max_side.py [--images 24] [--photo-side 3000]

`--images` demo photos are rendered at `--photo-side` pixels on their long side (the size of
the high-resolution photos of animals in scenes whaleid is scored on) and saved as JPEGs. Then,
one job each, timed side by side (best of `--repeats`):

- square: each photo preprocessed to its `--square` square (as rule preprocess does, decoded at
  reduced scale), then its keypoints found on that square resized to `--image-size`
  (`extract_features`); and the keypoints alone, from squares already cached, since the square
  is made once for every method;
- max_side: each photo decoded at reduced scale to a `--max-side` long side and its keypoints
  found there (`photo_at_max_side`, `extract_photo_features`).

It prints photos/s, keypoints a photo and the ratios. `KeypointSettings` are config.yaml's.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
from timing import best_seconds

from whaleid.data.preprocess import preprocess_file
from whaleid.demo.dataset import generate_demo_dataset
from whaleid.methods.local.keypoints import extract_features, extract_photo_features, photo_at_max_side
from whaleid.settings import KeypointSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--photo-side", type=int, default=3000, help="long side of the photos rendered")
    parser.add_argument("--square", type=int, default=896, help="preprocess.size")
    parser.add_argument("--image-size", type=int, default=448, help="local.image_size")
    parser.add_argument("--max-side", type=int, default=1024, help="local.max_side")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    settings = KeypointSettings.defaults(image_size=args.image_size, max_side=args.max_side)

    with tempfile.TemporaryDirectory() as folder:
        demo = Path(folder) / "demo"
        generate_demo_dataset(demo, n_individuals=max(1, args.images // 4), n_train_images=args.images,
                              n_test_images=0, max_side=args.photo_side, seed=0)
        paths = sorted((demo / "train").glob("*.jpg"))
        sizes = [cv2.imread(str(path), cv2.IMREAD_UNCHANGED).shape[1::-1] for path in paths]
        squares = [preprocess_file(path, args.square, width, height) for path, (width, height) in zip(paths, sizes)]

        def from_files_square():
            return [extract_features(preprocess_file(path, args.square, width, height), settings)
                    for path, (width, height) in zip(paths, sizes)]

        def from_cached_squares():
            return [extract_features(square, settings) for square in squares]

        def at_max_side():
            return [extract_photo_features(photo_at_max_side(path, args.max_side, width, height), settings)
                    for path, (width, height) in zip(paths, sizes)]

        cv2.setNumThreads(1)  # one job, as each of the rule's workers runs
        timed = {name: best_seconds(run, args.repeats) for name, run in (
            (f"square {args.square} -> {args.image_size}, from the JPEG", from_files_square),
            (f"square {args.image_size}, from the cached square", from_cached_squares),
            (f"max_side {args.max_side}, from the JPEG", at_max_side))}

    longest = max(max(size) for size in sizes)
    print(f"{len(paths)} demo photos, long side up to {longest} px; {asdict(settings)}")
    print(f"  {'keypoints found on':<44} {'seconds':>8} {'photos/s':>9} {'keypoints a photo':>18}")
    for name, (seconds, found) in timed.items():
        print(f"  {name:<44} {seconds:8.2f} {len(paths) / seconds:9.2f} {np.mean([len(xy) for xy, _ in found]):18.0f}")
    names = list(timed)
    print(f"  max_side / square from the JPEG: {timed[names[2]][0] / timed[names[0]][0]:.2f}x the time; "
          f"max_side / cached square: {timed[names[2]][0] / timed[names[1]][0]:.2f}x")


if __name__ == "__main__":
    main()
