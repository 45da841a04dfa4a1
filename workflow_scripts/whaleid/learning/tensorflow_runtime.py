"""How a TensorFlow job runs: its devices leased first (`gpus`), then TensorFlow on the stage's
threads, in the stage's precision, on one GPU or several.

`start_tensorflow_job` is what every TensorFlow rule script does first. TensorFlow itself is
imported at first use, never when this module is: `select_devices` must run before it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from whaleid.learning.gpus import GpuLease, select_devices

log = logging.getLogger(__name__)

# What differs between processors in oneDNN's arithmetic: it picks its kernels by the instruction
# set it finds (AVX2, AVX-512, AMX), and another kernel sums in another order.
REPRODUCIBLE_ENVIRONMENT = {"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def start_tensorflow_job(gpus: int, threads: int, keras_home: str | Path | None = None, *,
                         reproducible: bool) -> GpuLease:
    """What every TensorFlow rule script does first, in the only order that works: lease its
    `gpus` (`select_devices`, before TensorFlow is imported), then import TensorFlow and keep
    its CPU work to `threads` cores (`limit_cpu_threads`, before its first operation).

    `threads` is the stage's configured count, not the cores a machine has: TensorFlow splits a
    reduction over its threads, so another count sums in another order and trains another model.
    `reproducible` holds oneDNN to the same kernels on every x86-64 processor
    (`REPRODUCIBLE_ENVIRONMENT`), so the same config and data give the same model on another
    machine; it is set before TensorFlow is imported, which reads it then. With `keras_home`,
    it is the job's ``KERAS_HOME`` (set before Keras is imported, which reads its settings from
    there then): ImageNet weights are looked for in its ``models/``, where rule stage_weights put
    them on the submit host, so the job downloads nothing. Keep the returned lease referenced
    until the job ends."""
    if keras_home:
        # Absolute: the job may change its working directory later.
        os.environ["KERAS_HOME"] = os.path.abspath(os.path.expanduser(keras_home))
        log.info("KERAS_HOME=%s", os.environ["KERAS_HOME"])
    if reproducible:
        for variable, value in REPRODUCIBLE_ENVIRONMENT.items():
            if os.environ.get(variable, value) != value:
                log.info("reproducible: %s=%s replaces %s", variable, value, os.environ[variable])
            os.environ[variable] = value
    lease = select_devices(gpus)
    # Leased, SLURM's or none: the one line that tells, in every TensorFlow job's log, what it ran on.
    log.info("CUDA_VISIBLE_DEVICES=%s", os.environ["CUDA_VISIBLE_DEVICES"])
    limit_cpu_threads(threads)  # imports TensorFlow, now that the devices are set
    log.info("TensorFlow on %d CPU threads%s", threads,
             "; " + ", ".join(f"{k}={v}" for k, v in REPRODUCIBLE_ENVIRONMENT.items()) if reproducible else "")
    return lease


def _tensorflow():
    """TensorFlow, imported at first use: only after `select_devices` (see the module)."""
    import tensorflow

    return tensorflow


def limit_cpu_threads(threads: int) -> None:
    """Keep TensorFlow's CPU work to about `threads` cores (the rule's ``threads:``), so that
    jobs Snakemake runs side by side do not fight over the cores. Call before TensorFlow runs
    its first operation (it raises RuntimeError after)."""
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    tf = _tensorflow()
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    # Independent ops at once: these networks are chains, so two are plenty.
    tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))


def visible_gpus() -> list:
    return _tensorflow().config.list_physical_devices("GPU")


def distribution_strategy():
    """The strategy of the scope the caller is in, if any (a notebook that chose its own devices
    or kind of strategy: ``with strategy.scope(): train_autoencoder(...)``); else MirroredStrategy
    (data-parallel, each batch split across the devices) when more than one GPU is visible, else
    the default strategy.

    One per process: a model's variables belong to the strategy they were made under, and
    recompiling it (a new optimizer, as for fine-tuning) must happen under the same one.
    """
    tf = _tensorflow()
    if tf.distribute.has_strategy():
        # Entering a second strategy's scope inside the caller's would raise.
        return tf.distribute.get_strategy()
    return _strategy_for_visible_gpus()


@functools.cache
def _strategy_for_visible_gpus():
    tf = _tensorflow()
    if len(visible_gpus()) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def several_replicas() -> bool:
    """Whether models built now train on several devices at once (a MirroredStrategy over more
    than one): there batch norm must compute its statistics over the whole batch
    (``BatchNormalization(synchronized=...)``). On one device it must not: Keras's synchronized
    path computes the variance in one pass, as E[x²] - E[x]², which is less exact and changed
    the demo's results."""
    return _tensorflow().distribute.get_strategy().num_replicas_in_sync > 1


def precision_policy(mixed_precision: bool) -> str:
    """``mixed_float16`` when asked for and a GPU is visible; else ``float32`` (on a CPU,
    float16 arithmetic is emulated and slower)."""
    return "mixed_float16" if mixed_precision and visible_gpus() else "float32"


@contextlib.contextmanager
def build_scope(mixed_precision: bool) -> Iterator:
    """Build and compile models inside this block: under the precision policy and the
    distribution strategy for the visible devices. The global policy is put back after.

    Under mixed_float16 Keras wraps the optimizer given to ``compile`` in a LossScaleOptimizer
    itself; give the model's output layer ``dtype="float32"`` so the loss is computed at full
    precision.
    """
    import keras

    policy = precision_policy(mixed_precision)
    log.info("devices: %s; precision policy %s", [g.name for g in visible_gpus()] or "CPU", policy)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        strategy = distribution_strategy()
        with strategy.scope():
            yield strategy
    finally:
        keras.mixed_precision.set_global_policy(previous)
