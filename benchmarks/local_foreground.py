"""What the local method's foreground weighting (`local.foreground: learned`) costs a photo, beside keypoint extraction.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/local_foreground.py [--train 60] [--test 20]

A scene demo dataset (`--train` and `--test` photos of animals before shared shores, long side
`--photo-side`) is rendered. Then, one job each, timed side by side (best of `--repeats`), per
photo:

- extraction: keypoints of each photo at `--max-side` (`photo_at_max_side`,
  `extract_photo_features`), what every photo costs before any matching;
- learning: the foreground's labels (`keypoint_labels`: each fit photo matched against its own
  individual's and the likeliest other individuals' photos) and the trees fitted, per fit photo,
  once per dataset;
- weighing: every keypoint of each photo given its weight (`ForegroundModel.weights`);
- matching: each test photo voted and verified against the train photos (`match_queries`),
  without weights and with them.

It prints seconds a photo and each one's ratio to extraction. Settings are config.yaml's.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from timing import best_seconds

from whaleid.demo.dataset import generate_demo_dataset
from whaleid.methods.local.catalogue import LocalCatalogue, match_queries
from whaleid.methods.local.foreground import ForegroundModel, keypoint_features, keypoint_labels
from whaleid.methods.local.keypoints import photo_feature_rows
from whaleid.settings import ForegroundSettings, KeypointSettings, MatchSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=60)
    parser.add_argument("--test", type=int, default=20)
    parser.add_argument("--photo-side", type=int, default=1600, help="long side of the photos rendered")
    parser.add_argument("--max-side", type=int, default=1024, help="local.max_side")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    keypoint_settings = KeypointSettings.defaults(max_side=args.max_side)
    matching, foreground = MatchSettings.defaults(), ForegroundSettings.defaults()

    with tempfile.TemporaryDirectory() as folder:
        demo = Path(folder) / "scenes"
        generate_demo_dataset(demo, n_individuals=max(2, args.train // 5), n_train_images=args.train,
                              n_test_images=args.test, max_side=args.photo_side, scene_sites=3,
                              duplicate_test_fraction=0.0, seed=0)
        train, test = pd.read_csv(demo / "train.csv"), pd.read_csv(demo / "test_truth.csv")
        paths = {split: [demo / split / image for image in table["Image"]]
                 for split, table in (("train", train), ("test", test))}

        def extract(split):
            return photo_feature_rows(paths[split], [(0, 0)] * len(paths[split]), keypoint_settings)

        cv2.setNumThreads(1)  # one job, as each of the rules' workers runs
        timed = {}
        timed["extraction"] = best_seconds(lambda: extract("train"), args.repeats)
        train_keypoints, test_keypoints = timed["extraction"][1], extract("test")

        def learn():
            labels = keypoint_labels(train_keypoints, train["Id"], train["Image"], image_size=args.max_side,
                                     settings=matching, foreground=foreground)
            label = labels.labels()
            photo, slot = np.nonzero(label >= 0)
            rows = train_keypoints[photo, slot]
            return ForegroundModel.fit(keypoint_features(rows["xy"], rows["descriptor"], args.max_side),
                                       label[photo, slot] == 1, args.max_side, foreground.seed)

        timed["learning"] = best_seconds(learn, args.repeats)
        model = timed["learning"][1]
        timed["weighing"] = best_seconds(lambda: model.weights(train_keypoints), args.repeats)
        train_weights, test_weights = timed["weighing"][1], model.weights(test_keypoints)
        known = (train["Id"] != "new_whale").to_numpy()

        def matched(weighed: bool):
            catalogue = LocalCatalogue(train_keypoints[known], train["Id"][known], args.max_side, matching,
                                       train_weights[known] if weighed else None)
            return match_queries(catalogue, test_keypoints, test_weights if weighed else None)

        timed["matching, unweighted"] = best_seconds(lambda: matched(False), args.repeats)
        timed["matching, weighted"] = best_seconds(lambda: matched(True), args.repeats)

    per_photo = {name: seconds / (args.test if name.startswith("matching") else args.train)
                 for name, (seconds, _) in timed.items()}
    print(f"{args.train} train and {args.test} test scene photos, long side {args.photo_side} px, keypoints at "
          f"max_side {args.max_side}")
    print(f"  {'step':<24} {'s a photo':>10} {'x extraction':>13}")
    for name, seconds in per_photo.items():
        print(f"  {name:<24} {seconds:10.4f} {seconds / per_photo['extraction']:13.2f}")
    print(f"  weighted / unweighted matching: "
          f"{per_photo['matching, weighted'] / per_photo['matching, unweighted']:.2f}x the time")


if __name__ == "__main__":
    main()
