"""Whether OpenCV's AVX-512 kernels change what the workflow computes, and what holding them off costs.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/opencv_isa.py \
        [--data ../shared/data/right_whale] [--photos 200]

OpenCV picks some kernels at run time by what the processor offers (`cv2.getCPUFeaturesLine()`;
AVX512-SKX where it has AVX-512), and `OPENCV_CPU_DISABLE` holds it to those below. This runs the
same stages on the same photos (the first `--photos` of `--data`'s train/: each preprocessed to a
224-pixel square, its pHash, SIFT keypoints as presets/cpu.yaml finds them) in two processes side
by side, OpenCV as it dispatches and held off AVX-512 (`whaleid.reproducibility`), and prints for
each stage whether the two agree to the byte, how many photos differ, and the seconds and their ratio. On a
processor without AVX-512 both processes compute the same thing, and it says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from whaleid.reproducibility import OPENCV_HELD

WORKER = """
import json, sys, time
from pathlib import Path
import numpy as np, cv2
from whaleid.data.images import perceptual_hash, read_gray
from whaleid.data.preprocess import preprocess_file
from whaleid.methods.local.keypoints import feature_rows
from whaleid.settings import KeypointSettings
photos, out = [Path(p) for p in json.loads(sys.argv[1])], Path(sys.argv[2])
seconds = {}
start = time.perf_counter()
squares = np.stack([preprocess_file(p, 224) for p in photos])
seconds["preprocess"] = time.perf_counter() - start
start = time.perf_counter()
hashes = [perceptual_hash(read_gray(p.read_bytes())) for p in photos]
seconds["phash"] = time.perf_counter() - start
start = time.perf_counter()
rows = feature_rows(squares, KeypointSettings.defaults(sys.argv[3]))
seconds["keypoints"] = time.perf_counter() - start
np.save(out / "preprocess.npy", squares)
np.save(out / "phash.npy", np.array(hashes))
np.save(out / "keypoints.npy", rows)
(out / "seconds.json").write_text(json.dumps({"seconds": seconds, "cpu": cv2.getCPUFeaturesLine()}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/right_whale")
    parser.add_argument("--photos", type=int, default=200)
    args = parser.parse_args()
    photos = sorted(str(p) for p in (args.data / "train").iterdir())[:args.photos]
    preset = Path(__file__).resolve().parents[1] / "presets/cpu.yaml"
    runs = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, extra in (("dispatched", {}), ("held", OPENCV_HELD)):
            out = Path(folder) / name
            out.mkdir()
            env = {**os.environ, **extra}
            if not extra:
                env.pop("OPENCV_CPU_DISABLE", None)
            subprocess.run([sys.executable, "-c", WORKER, json.dumps(photos), str(out), str(preset)], env=env,
                           check=True)
            runs[name] = (out, json.loads((out / "seconds.json").read_text()))
        (dispatched, first), (held, second) = runs["dispatched"], runs["held"]
        print(f"OpenCV's CPU features: {first['cpu']} (held: {second['cpu']}); {len(photos)} photos of {args.data}")
        for stage in ("preprocess", "phash", "keypoints"):
            a, b = np.load(dispatched / f"{stage}.npy"), np.load(held / f"{stage}.npy")
            differ = sum(x.tobytes() != y.tobytes() for x, y in zip(a, b))
            took, slower = first["seconds"][stage], second["seconds"][stage]
            print(f"{stage:>10}: {'same bytes' if not differ else f'{differ} photos differ'}; "
                  f"{took:.2f} s dispatched, {slower:.2f} s held (ratio {slower / took:.2f})")


if __name__ == "__main__":
    main()
