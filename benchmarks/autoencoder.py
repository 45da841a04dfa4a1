"""What the streaming input costs the autoencoder: memory-mapped cache against arrays in memory.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/autoencoder.py [--size 128] [--images 384]

Writes a synthetic preprocess cache (smooth random pictures, uint8 (N, S, S)) to a temporary
folder and trains and encodes with the same model two ways:
(a) pipeline: training through `make_dataset` streaming from the memory-mapped cache with
    augmentation, as the training rule runs it; encoding with `encode_cache` (memory-mapped
    rows in, resumable float16 array out);
(b) memory: the cache loaded into memory first; training through `from_tensor_slices` and the
    same `augment_batches` (cast, augmentation); encoding with `encode_images` on the array,
    in chunks of the same size.
Only the source of the images differs.

Speeds come from one process that alternates the two, epoch by epoch (a fit of one epoch
each, after a warm-up epoch each that traces the graphs), so both see the same machine: on
a shared machine other load comes and goes and only ever slows an epoch down. Printed: the
best epoch (and the median) of each. The cache was just written, so it sits in the page
cache, as a cache that fits in memory does after its first epoch.

Peak memory (ru_maxrss) comes from two more processes, each running one variant alone. At
the default size the cache (6 MiB) is lost in TensorFlow's own footprint; at the real one
(896x896, 25,000 images: 20 GB) only the pipeline fits in memory at all.

The last line is `ratio R`: pipeline / memory training images/s (best epochs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

SEED = 0
ENCODE_CHUNK = 64  # encode_cache's default


def synthetic_cache(path: Path, n: int, size: int) -> None:
    rng = np.random.default_rng(SEED)
    cache = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, size, size))
    for i in range(n):
        small = rng.integers(0, 256, (max(2, size // 16),) * 2, dtype=np.uint8)
        cache[i] = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    cache.flush()


def peak_memory_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(variants: list[str], cache_path: Path, batch_size: int, rounds: int) -> dict:
    """Runs in a child process: per variant, the images/s of each timed round of training and
    encoding, and the process's peak memory."""
    import keras
    import tensorflow as tf

    from whaleid.learning import autoencoder as ae

    keras.utils.set_random_seed(SEED)
    n, size = np.load(cache_path, mmap_mode="r").shape[:2]
    datasets = {}
    if "pipeline" in variants:
        datasets["pipeline"] = ae.make_dataset([cache_path], np.arange(n), batch_size, shuffle=True, augment=True,
                                               seed=SEED)
    if "memory" in variants:
        images = np.load(cache_path)
        batches = (tf.data.Dataset.from_tensor_slices(images)
                   .shuffle(len(images), seed=SEED, reshuffle_each_iteration=True)
                   .batch(batch_size))
        datasets["memory"] = ae.augment_batches(batches, augment=True, seed=SEED)
    model = ae.build_autoencoder(int(size))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    encoder = ae.encoder_from(model)

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self.start

    def train_rate(variant: str) -> float:
        timer = EpochTimer()
        model.fit(datasets[variant], epochs=1, verbose=0, shuffle=False, callbacks=[timer])
        return n / timer.seconds

    def encode_rate(variant: str) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            if variant == "pipeline":
                ae.encode_cache(encoder, cache_path, Path(tmp) / "codes.npy", batch_size=batch_size,
                                chunk_size=ENCODE_CHUNK)
            else:
                for first in range(0, n, ENCODE_CHUNK):
                    ae.encode_images(encoder, images[first:first + ENCODE_CHUNK], batch_size)
            return n / (time.perf_counter() - start)

    for variant in variants:  # warm-up: traces the graphs and fills the page cache
        train_rate(variant)
        encode_rate(variant)
    results = {variant: {"train": [], "encode": []} for variant in variants}
    for round_ in range(rounds):
        for variant in variants if round_ % 2 == 0 else variants[::-1]:
            results[variant]["train"].append(train_rate(variant))
            results[variant]["encode"].append(encode_rate(variant))
    return {"rates": results, "peak_mib": peak_memory_mib()}


def run_child(variants: list[str], cache_path: Path, batch_size: int, rounds: int) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, __file__, "--child", ",".join(variants), "--cache", str(cache_path),
                           "--batch-size", str(batch_size), "--rounds", str(rounds)],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"{'+'.join(variants)} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128, help="image side (a multiple of 4)")
    parser.add_argument("--images", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=6, help="timed epochs of each variant, alternating")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child.split(","), args.cache, args.batch_size, args.rounds)))
        return

    variants = ["pipeline", "memory"]
    with tempfile.TemporaryDirectory() as tmp:
        cache_path = Path(tmp) / "train.npy"
        synthetic_cache(cache_path, args.images, args.size)
        print(f"{args.images} synthetic images {args.size}x{args.size}, batch {args.batch_size}, "
              f"{args.rounds} timed epoch(s) of each variant, {os.cpu_count()} CPU threads")
        rates = run_child(variants, cache_path, args.batch_size, args.rounds)["rates"]
        peaks = {variant: run_child([variant], cache_path, args.batch_size, 1)["peak_mib"] for variant in variants}
    for variant in variants:
        train, encode = rates[variant]["train"], rates[variant]["encode"]
        print(f"  {variant:<9} train {max(train):7.1f} images/s (median {np.median(train):6.1f})   "
              f"encode {max(encode):7.1f} images/s (median {np.median(encode):6.1f})   "
              f"peak memory {peaks[variant]:6.0f} MiB")
    pipeline, memory = rates["pipeline"], rates["memory"]
    print(f"encode ratio {max(pipeline['encode']) / max(memory['encode']):.2f}")
    print(f"ratio {max(pipeline['train']) / max(memory['train']):.2f}")


if __name__ == "__main__":
    main()
