import os
import signal
import subprocess
import sys

import pytest
from conftest import REPO

from whaleid.learning.gpus import available_gpus, lease_gpus, select_devices

# A job in its own process: leases `count` devices, prints what it was given, holds the lease
# until its stdin closes (or it is killed).
HOLDER = """
import sys
from whaleid.learning.gpus import select_devices
lease = select_devices(int(sys.argv[1]), sys.argv[2], timeout=float(sys.argv[3]))
import os
print(os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
sys.stdin.read()
"""


def start_holder(lease_dir, count=1, timeout=30.0, gpus="0,1", slurm=None):
    """`slurm`: the variables of the SLURM allocation it runs in (none: not under SLURM)."""
    env = {**os.environ, "WHALEID_GPUS": gpus, "PYTHONPATH": str(REPO / "workflow_scripts")}
    for variable in ("SLURM_JOB_ID", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "CUDA_VISIBLE_DEVICES"):
        env.pop(variable, None)
    env.update(slurm or {})
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(count), str(lease_dir), str(timeout)],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.fixture
def holders():
    started = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


@pytest.fixture
def no_slurm(monkeypatch):
    # set then delete, so that monkeypatch also undoes what select_devices writes
    for variable in ("SLURM_JOB_ID", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "CUDA_VISIBLE_DEVICES",
                     "CUDA_DEVICE_ORDER"):
        monkeypatch.setenv(variable, "")
        monkeypatch.delenv(variable)


def test_device_list_comes_from_the_environment_when_set(monkeypatch):
    monkeypatch.setenv("WHALEID_GPUS", " 0, 3 ,")
    assert available_gpus() == ["0", "3"]
    monkeypatch.setenv("WHALEID_GPUS", "")
    assert available_gpus() == []


def test_without_nvidia_smi_there_are_no_gpus(monkeypatch):
    monkeypatch.delenv("WHALEID_GPUS", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert available_gpus() == []


def test_concurrent_jobs_get_different_devices_and_a_third_waits_then_fails(tmp_path, holders):
    first, second = start_holder(tmp_path), start_holder(tmp_path)
    holders += [first, second]
    given = {first.stdout.readline().strip(), second.stdout.readline().strip()}
    assert given == {"0", "1"}

    third = start_holder(tmp_path, timeout=1.5)
    holders.append(third)
    _, error = third.communicate(timeout=30)
    assert third.returncode != 0
    assert "could not lease 1 of GPUs ['0', '1']" in error
    assert f"pid {first.pid}" in error and f"pid {second.pid}" in error
    first.kill()
    first.wait()
    with pytest.raises(TimeoutError, match="gpu 0: free|gpu 1: free"):  # a dead holder's note is not news
        lease_gpus(2, tmp_path, timeout=0, devices=["0", "1"])


def test_a_killed_holder_frees_its_device(tmp_path, holders):
    first, second = start_holder(tmp_path), start_holder(tmp_path)
    holders += [first, second]
    devices = {p: p.stdout.readline().strip() for p in (first, second)}
    waiting = start_holder(tmp_path, timeout=30)
    holders.append(waiting)
    os.kill(first.pid, signal.SIGKILL)  # no chance to clean up: the kernel drops the flock
    first.wait()
    assert waiting.stdout.readline().strip() == devices[first]
    assert second.poll() is None


def test_one_job_can_lease_several_devices_at_once(tmp_path, no_slurm, monkeypatch):
    monkeypatch.setenv("WHALEID_GPUS", "0,1,2")
    with lease_gpus(2, tmp_path) as pair, lease_gpus(1, tmp_path, timeout=0) as single:
        assert len(set(pair.devices + single.devices)) == 3
        with pytest.raises(TimeoutError):
            lease_gpus(1, tmp_path, timeout=0)
    with lease_gpus(3, tmp_path, timeout=0) as everything:  # released on leaving the block
        assert everything.devices == ["0", "1", "2"]


def test_lock_files_go_to_a_shared_folder_by_default(tmp_path, no_slurm, monkeypatch):
    monkeypatch.setenv("WHALEID_GPUS", "7")
    monkeypatch.setenv("WHALEID_LEASE_DIR", str(tmp_path / "leases"))
    with select_devices(1) as lease:
        assert lease.devices == ["7"] and os.environ["CUDA_VISIBLE_DEVICES"] == "7"
        lock = tmp_path / "leases" / "gpu7.lock"
        assert lock.read_text().startswith(f"pid {os.getpid()} on ")
    assert (tmp_path / "leases").stat().st_mode & 0o1777 == 0o1777  # any user's jobs can lease
    assert lock.stat().st_mode & 0o666 == 0o666


def test_asking_for_more_devices_than_exist_fails_at_once(tmp_path, no_slurm, monkeypatch):
    monkeypatch.setenv("WHALEID_GPUS", "0")
    with pytest.raises(RuntimeError, match="2 GPU"):
        lease_gpus(2, tmp_path)


def test_under_slurm_the_assigned_devices_are_used_and_nothing_is_locked(tmp_path, no_slurm, monkeypatch):
    monkeypatch.setenv("WHALEID_GPUS", "0,1,2,3")
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_JOB_GPUS", "2,3")
    lease = select_devices(2, tmp_path / "leases")
    assert lease.devices == ["2", "3"] and os.environ["CUDA_VISIBLE_DEVICES"] == "2,3"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")  # SLURM's own choice wins when it sets it
    assert select_devices(1, tmp_path / "leases").devices == ["1"]
    assert not (tmp_path / "leases").exists()
    with pytest.raises(RuntimeError, match="SLURM assigned"):
        select_devices(2, tmp_path / "leases")


def test_jobs_sharing_one_slurm_allocation_lease_its_devices_among_themselves(tmp_path, holders):
    # Snakemake run inside `sbatch --gpus=2`: every job sees the allocation's two GPUs.
    allocation = {"SLURM_JOB_ID": "42", "CUDA_VISIBLE_DEVICES": "2,3"}
    first, second = (start_holder(tmp_path, gpus="0,1,2,3", slurm=allocation) for _ in range(2))
    holders += [first, second]
    assert {first.stdout.readline().strip(), second.stdout.readline().strip()} == {"2", "3"}
    third = start_holder(tmp_path, timeout=1.5, gpus="0,1,2,3", slurm=allocation)
    holders.append(third)
    _, error = third.communicate(timeout=30)
    assert third.returncode != 0 and "could not lease 1 of GPUs ['2', '3']" in error


def test_no_gpu_means_an_empty_device_list_for_tensorflow(tmp_path, no_slurm, monkeypatch):
    monkeypatch.setenv("WHALEID_GPUS", "0,1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    lease = select_devices(0, tmp_path)
    assert lease.devices == [] and os.environ["CUDA_VISIBLE_DEVICES"] == ""
    assert not list(tmp_path.iterdir())


def test_a_gpu_job_on_a_machine_without_gpus_runs_on_the_cpu(tmp_path, no_slurm, monkeypatch):
    monkeypatch.setenv("WHALEID_GPUS", "")
    lease = select_devices(1, tmp_path)
    assert lease.devices == [] and os.environ["CUDA_VISIBLE_DEVICES"] == ""
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("reproducible", [True, False])
def test_a_tensorflow_job_sees_only_its_devices_and_its_threads(tmp_path, reproducible):
    check = ("import sys; from whaleid.learning.tensorflow_runtime import start_tensorflow_job; "
             "assert 'tensorflow' not in sys.modules; "
             f"lease = start_tensorflow_job(1, 3, reproducible={reproducible}); import os, tensorflow as tf; "
             "print(os.environ['CUDA_VISIBLE_DEVICES'], tf.config.threading.get_intra_op_parallelism_threads(), "
             "os.environ.get('TF_ENABLE_ONEDNN_OPTS', '-'), os.environ.get('ONEDNN_MAX_CPU_ISA', '-'))")
    env = {**os.environ, "WHALEID_GPUS": "0,1", "WHALEID_LEASE_DIR": str(tmp_path),
           "PYTHONPATH": str(REPO / "workflow_scripts"), "TF_CPP_MIN_LOG_LEVEL": "2",
           "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}  # as a machine's own setting might be
    env.pop("SLURM_JOB_ID", None)
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    result = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    # the first free of the devices, three CPU threads, and oneDNN held to AVX2 where reproducible
    assert result.stdout.split() == (["0", "3", "0", "AVX2"] if reproducible else ["0", "3", "-", "AVX512_CORE"])
