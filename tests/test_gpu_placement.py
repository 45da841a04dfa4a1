"""GPU jobs on one machine: which devices each job gets, and training on several at once.

There is no GPU here: WHALEID_GPUS fakes the device list, each job's log says which devices it
was shown, and two logical CPU devices stand in for two GPUs under MirroredStrategy.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, textured
from test_classifier import stage_inputs
from test_workflow import TINY, merged, snakemake

from whaleid.demo.dataset import generate_demo_dataset

# Keras converts its variables with np.array(copy=False) when saving weights: its warning, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def job_environment(env: dict[str, str], **variables: str) -> dict[str, str]:
    """`env` with `variables` set, and none of SLURM's unless among them (this test may itself
    run inside a SLURM job)."""
    cleaned = {k: v for k, v in env.items()
               if k not in ("SLURM_JOB_ID", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "CUDA_VISIBLE_DEVICES")}
    return {**cleaned, "PYTHONPATH": str(REPO / "workflow_scripts"), "TF_CPP_MIN_LOG_LEVEL": "2", **variables}


def visible_devices(log_file: Path) -> str:
    """The CUDA_VISIBLE_DEVICES a TensorFlow job ran with, as its log records it."""
    found = re.findall(r"CUDA_VISIBLE_DEVICES=(\S*)", log_file.read_text())
    assert len(found) == 1, log_file.read_text()[-3000:]
    return found[0]


@pytest.mark.slow
def test_gpu_jobs_ready_together_run_at_once_each_on_its_own_devices(tmp_path):
    data, work, leases = tmp_path / "data", tmp_path / "work", tmp_path / "leases"
    generate_demo_dataset(data, n_individuals=8, n_train_images=24, n_test_images=12, max_side=96, seed=3)
    work.mkdir()
    env = job_environment(os.environ, WHALEID_GPUS="0,1", WHALEID_LEASE_DIR=str(leases))
    # The autoencoder asks for both devices, each encode job for one (encode.gpus), with one
    # thread so that the two cores hold both encode jobs at once.
    config = merged(TINY, {"data_dir": str(data), "results_dir": "results", "autoencoder": {"gpus": 2, "threads": 1}})
    snakemake(work, "--resources=gpu=2", "results/autoencoder/codes/train.npy", "results/autoencoder/codes/test.npy",
              config=config, env=env)

    logs = work / "results" / "logs"
    assert visible_devices(logs / "autoencoder_train.log") == "0,1"
    assert "leased GPU(s) ['0', '1']" in (logs / "autoencoder_train.log").read_text()
    # A lease takes the first free device, so a job that started after the other had ended
    # would have got device 0 too: two different devices show the two jobs held them at once.
    assert {visible_devices(logs / "autoencoder_encode" / f"{split}.log") for split in ("train", "test")} == {"0", "1"}
    assert sorted(p.name for p in leases.iterdir()) == ["gpu0.lock", "gpu1.lock"]


def test_a_job_under_slurm_takes_the_assigned_devices_and_leases_nothing(tmp_path):
    # select_devices' SLURM rules are unit-tested in test_devices; this is the start every
    # TensorFlow rule script makes, in a process of its own as a SLURM job step would be.
    start = ("import logging; logging.basicConfig(level=logging.INFO); "
             "from whaleid.learning.tensorflow_runtime import start_tensorflow_job; "
             "lease = start_tensorflow_job(2, 1, reproducible=True); "
             "import os, tensorflow; print(os.environ['CUDA_VISIBLE_DEVICES'])")
    leases = tmp_path / "leases"
    # Devices 0 and 1 are free to lease: getting 2,3 shows SLURM's choice, not a lease, decided.
    env = job_environment(os.environ, WHALEID_GPUS="0,1,2,3", WHALEID_LEASE_DIR=str(leases),
                          SLURM_JOB_ID="42", SLURM_JOB_GPUS="2,3")
    result = subprocess.run([sys.executable, "-c", start], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["2,3"]
    assert "CUDA_VISIBLE_DEVICES=2,3" in result.stderr  # what the job's log would record
    assert not leases.exists()


# Trains the autoencoder and the embedding, each inside a 2-replica MirroredStrategy over the
# CPU split in two (logical devices can only be made before TensorFlow initialises, hence a
# process of its own), and prints what the trained models hold. argv[1]: the folder of inputs.
MIRRORED_TRAINING = """
import json, sys
from pathlib import Path
import numpy as np
import tensorflow as tf

cpu, = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from whaleid.learning.autoencoder import train_autoencoder
from whaleid.learning.tensorflow_runtime import limit_cpu_threads
from whaleid.methods.metric_learning.model import train_embedding
from whaleid.settings import AutoencoderSettings, MetricLearningSettings

limit_cpu_threads(2)
folder = Path(sys.argv[1])
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

def replicas(model, path):
    # Each weight's copies (batch-norm statistics included): on which devices, whether they
    # still agree, and whether the saved model, read back outside the strategy, holds the
    # trained weights.
    copies = [strategy.experimental_local_results(w.value) for w in model.weights]
    saved = keras.models.load_model(path, compile=False)
    return dict(replicas=model.distribute_strategy.num_replicas_in_sync,
                own_strategy=model.distribute_strategy is strategy,
                devices=sorted({tuple(sorted(c.device.split("device:")[-1] for c in cs)) for cs in copies}),
                in_sync=all(np.array_equal(cs[0].numpy(), c.numpy()) for cs in copies for c in cs),
                saved=all(np.array_equal(a, b) for a, b in zip(saved.get_weights(), model.get_weights(), strict=True)))

# The embedder small and at the images' own size (config.yaml resizes them to 96), on the
# thresholds 0 and 0.5.
autoencoder_settings = AutoencoderSettings.defaults(epochs=2, batch_size=8, mixed_precision=False, seed=0)
embedding_settings = MetricLearningSettings.defaults(
    backbone="compact", weights=None, input="images", input_size=None, width=4, embedding_size=8, epochs=1,
    batch_size=8, augment=False, new_whale_thresholds={"start": 0.0, "stop": 0.5, "step": 0.5},
    mixed_precision=False, seed=0)
with strategy.scope():
    autoencoder = train_autoencoder([folder / "images.npy"], folder / "ae.keras", folder / "ae.csv",
                                    folder / "ae_backup", autoencoder_settings)
    embedder = train_embedding(folder / "train.npy", folder / "train.csv", folder / "split.csv",
                               folder / "embedder.keras", folder / "embedder.csv", folder / "embedder_backup",
                               embedding_settings)
print(json.dumps(dict(autoencoder=replicas(autoencoder, folder / "ae.keras"),
                      embedder=replicas(embedder, folder / "embedder.keras"))))
"""


def test_training_runs_data_parallel_under_a_two_replica_mirrored_strategy(tmp_path):
    stage_inputs(tmp_path, kind="images")
    np.save(tmp_path / "images.npy", np.stack([textured(32, 32, channels=1, seed=i, cell=4) for i in range(24)]))
    result = subprocess.run([sys.executable, "-c", MIRRORED_TRAINING, str(tmp_path)], env=job_environment(os.environ),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for model in ("autoencoder", "embedder"):
        # Built in the caller's strategy, the model has each weight on both devices; the copies
        # agree only if every step applied the replicas' gradients summed, to both, and batch
        # norm computed its statistics over the whole batch (synchronized) rather than per device.
        assert report[model] == {"replicas": 2, "own_strategy": True, "devices": [["CPU:0", "CPU:1"]],
                                 "in_sync": True, "saved": True}, model
    autoencoder = pd.read_csv(tmp_path / "ae.csv")
    assert autoencoder["epoch"].tolist() == [0, 1]
    assert np.isfinite(autoencoder[["loss", "val_loss"]]).all().all()
    assert autoencoder["loss"].iloc[1] < autoencoder["loss"].iloc[0]
    embedder = pd.read_csv(tmp_path / "embedder.csv")
    assert embedder["epoch"].tolist() == [0]
    assert np.isfinite(embedder[["loss", "val_map5"]]).all().all()
