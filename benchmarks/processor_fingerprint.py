"""Where two machines part: the digests of what whaleid's stages compute, to compare between machines.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/processor_fingerprint.py > $(hostname).txt
    # the same on the other machine, then
    diff machine_a.txt machine_b.txt

The same config gives the same files, to the byte, on one machine; across two x86 processors the
demo's TensorFlow models came out different (README, "Same config, same data, same answers"). Each
line here is one computation on fixed inputs, held as a run holds it (`reproducible`: OpenCV off
AVX-512, oneDNN to AVX2, presets/cpu.yaml's 4 TensorFlow threads), and the SHA-256 of its result's
bytes, from the smallest kernels to a few training steps of the demo's metric-learning network.
The first line that differs is where the two processors first compute something else; the lines
starting with # describe the processor (its caches: TensorFlow's matrix products are cut into
blocks by Eigen from the cache sizes the processor reports) and are not results.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import numpy as np

from whaleid.io.files import sha256_hex
from whaleid.reproducibility import held_environment


def digest(array) -> str:
    return sha256_hex(np.ascontiguousarray(np.asarray(array)).tobytes())[:16]


def processor_lines() -> list[str]:
    lines = [f"# machine: {platform.machine()}, {os.cpu_count()} cores"]
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        lines.append(f"# processor: {names[0] if names else 'unknown'}")
    caches = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(caches.glob("index*")):
        kind = (index / "type").read_text().strip()
        lines.append(f"# cache L{(index / 'level').read_text().strip()} {kind}: {(index / 'size').read_text().strip()}")
    return lines


def numpy_lines(rng: np.random.Generator) -> list[str]:
    a = rng.standard_normal((256, 4096), dtype=np.float32)
    b = rng.standard_normal((4096, 64), dtype=np.float32)
    return [f"numpy matmul 256x4096 @ 4096x64 float32: {digest(a @ b)}",
            f"numpy sum of 1e6 float32: {digest(np.sum(rng.standard_normal(1_000_000, dtype=np.float32)))}"]


def opencv_lines(rng: np.random.Generator) -> list[str]:
    import cv2

    from whaleid.reproducibility import opencv_kernels

    image = (rng.random((900, 700)) * 255).astype(np.uint8)
    image = cv2.GaussianBlur(image, (0, 0), 3)  # structure for SIFT to find
    _, descriptors = cv2.SIFT_create(nfeatures=500).detectAndCompute(image, None)
    square = cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA)
    return [f"# opencv kernels: {opencv_kernels()}",
            f"opencv resize 900x700 -> 256 INTER_AREA: {digest(square)}",
            f"opencv SIFT descriptors: {digest(descriptors)}"]


def all_weights(model) -> np.ndarray:
    return np.concatenate([w.ravel() for w in model.get_weights()])


def tensorflow_lines(rng: np.random.Generator, threads: int, steps: int, held: bool) -> list[str]:
    from whaleid.learning.tensorflow_runtime import start_tensorflow_job

    start_tensorflow_job(0, threads, reproducible=held)
    import keras
    import tensorflow as tf

    from whaleid.methods.metric_learning import model as ml

    x = tf.constant(rng.standard_normal((8, 64, 64, 16), dtype=np.float32))
    kernel = tf.constant(rng.standard_normal((3, 3, 16, 32), dtype=np.float32))
    wide = tf.constant(rng.standard_normal((8, 16384), dtype=np.float32))
    tall = tf.constant(rng.standard_normal((16384, 64), dtype=np.float32))
    lines = [f"tensorflow conv2d 8x64x64x16 * 3x3x16x32: {digest(tf.nn.conv2d(x, kernel, 1, 'SAME'))}",
             f"tensorflow matmul 8x16384 @ 16384x64: {digest(tf.matmul(wide, tall))}",
             f"tensorflow reduce_sum of 8x64x64x16: {digest(tf.reduce_sum(x))}"]

    # The demo's metric learning: the compact network on 256-pixel squares resized to 96, its first steps.
    keras.utils.set_random_seed(0)
    embedder = ml.build_embedder((256, 256, 1), backbone="compact", weights=None, scale=[1.0], input_size=96,
                                 width=16, embedding_size=128, dropout=0.2, augment=True, seed=0)
    training = ml.build_training_model(embedder, 10, sub_centers=3, margin=0.2, scale=30.0)
    ml.compile_training_model(training, 0.003, 100, 10)
    lines.append(f"metric learning initial weights: {digest(all_weights(training))}")
    images = (rng.random((32, 256, 256, 1)) * 255).astype(np.float32)
    labels = rng.integers(0, 10, 32).astype(np.int32)
    for step in range(1, steps + 1):
        loss = training.train_on_batch([images, labels], labels)
        lines.append(f"metric learning step {step}: loss {digest(np.float32(loss))}, "
                     f"weights {digest(all_weights(training))}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=4, help="TensorFlow's threads (presets/cpu.yaml: 4)")
    parser.add_argument("--steps", type=int, default=5, help="training steps of the metric-learning network")
    parser.add_argument("--as-dispatched", action="store_true",
                        help="OpenCV and oneDNN on every kernel this processor offers, as with reproducible: false "
                             "(on one with AVX-512, the lines that differ from a held run are what holding does)")
    args = parser.parse_args()
    if not args.as_dispatched:
        # before OpenCV loads, as the Snakefile holds each job
        os.environ.update(held_environment(os.environ))
    rng = np.random.default_rng(0)
    for line in [*processor_lines(), *numpy_lines(rng), *opencv_lines(rng),
                 *tensorflow_lines(rng, args.threads, args.steps, held=not args.as_dispatched)]:
        print(line, flush=True)


if __name__ == "__main__":
    main()
