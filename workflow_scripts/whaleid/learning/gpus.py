"""Which GPUs a job uses.

Snakemake counts a ``gpu`` resource so that no more GPU jobs run at once than there are
GPUs, but it tells no job *which* GPU to take: two jobs would both land on device 0. So a
job leases its devices itself, with one lock file per device, and shows TensorFlow only
those (``CUDA_VISIBLE_DEVICES``). The lock is an ``flock``: the kernel drops it when the
holder's process ends however it ends (SIGKILL, OOM killer, node reboot of a local disk), so
a crashed job's device is free again with no stale file to clean up.

Under SLURM the scheduler has already chosen the devices. A job that SLURM gave exactly the
devices it asked for (the executor plugin submits each job on its own) takes them and leases
nothing. Where Snakemake itself runs inside one allocation with more GPUs than one job needs
(``sbatch --gpus=2 snakemake --resources gpu=2``), its jobs share the allocation's devices
and lease among them, as on a workstation, in a lock folder of that allocation's (beside the
default one).

Call `select_devices` before TensorFlow is imported: the CUDA runtime reads
``CUDA_VISIBLE_DEVICES`` once, when TensorFlow first initialises it, and ignores later
changes. Standard library only, for that reason: how a job then uses the devices it has is
`tensorflow_runtime`'s.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)
# A comma list of device ids ("" for none) that replaces what nvidia-smi reports: how tests
# fake a multi-GPU machine and how a user keeps the workflow off some devices.
GPUS_ENV = "WHALEID_GPUS"
# Where the lock files live unless a caller says: one folder per machine that every job on
# it sees (a node-local temporary folder; device ids mean nothing on another machine).
LEASE_DIR_ENV = "WHALEID_LEASE_DIR"
_SLURM_DEVICE_VARIABLES = ("CUDA_VISIBLE_DEVICES", "SLURM_STEP_GPUS", "SLURM_JOB_GPUS")
_RETRY_SECONDS = 1.0
_WAIT_LOG_SECONDS = 60.0


def _id_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def available_gpus() -> list[str]:
    """The ids of this machine's GPUs: `WHALEID_GPUS` if set, else what nvidia-smi lists."""
    if GPUS_ENV in os.environ:
        return _id_list(os.environ[GPUS_ENV])
    try:
        listing = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as error:
        # No driver or no tool: a CPU machine, which is not an error.
        log.debug("nvidia-smi gave no device list (%s): no GPUs", error)
        return []
    return [line.strip() for line in listing.stdout.splitlines() if line.strip()]


def default_lease_dir() -> Path:
    """`WHALEID_LEASE_DIR` if set, else ``whaleid-gpu-leases`` in the system's temporary folder."""
    return Path(os.environ.get(LEASE_DIR_ENV) or Path(tempfile.gettempdir()) / "whaleid-gpu-leases")


def slurm_gpus() -> list[str] | None:
    """The devices SLURM assigned to this job, or None when not running under SLURM."""
    if "SLURM_JOB_ID" not in os.environ:
        return None
    for variable in _SLURM_DEVICE_VARIABLES:
        value = os.environ.get(variable)
        # SLURM writes "NoDevFiles" when the GPU gres has no device file: no usable device.
        if value is not None and value != "NoDevFiles":
            return _id_list(value)
    return []


class GpuLease:
    """The devices a job holds; the locks last until `release` or the end of the process.

    Keep the object alive for as long as the job uses the devices: its open lock files are
    the lease. Usable as a context manager.
    """

    def __init__(self, devices: list[str], lock_fds: list[int] | None = None):
        self.devices = list(devices)
        self._lock_fds = list(lock_fds or [])

    @property
    def visible_devices(self) -> str:
        """The value for ``CUDA_VISIBLE_DEVICES`` ("" for none: TensorFlow then uses the CPU)."""
        return ",".join(self.devices)

    def release(self) -> None:
        # The lock files stay: deleting one while another process has it open would let two
        # processes lock two different files for the same device.
        for fd in self._lock_fds:
            os.close(fd)
        self._lock_fds = []

    def __enter__(self) -> GpuLease:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"GpuLease(devices={self.devices!r}, locked={bool(self._lock_fds)})"


def _lock_path(lease_dir: Path, device: str) -> Path:
    return lease_dir / f"gpu{device}.lock"


def _open_lock_file(path: Path) -> int:
    """Another user's lock file may be read-only to us; flock works on a read-only descriptor
    all the same, only the holder's note cannot be written."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:
        return os.open(path, os.O_RDONLY)
    try:
        os.fchmod(fd, 0o666)  # past the umask, so other users' jobs can take it too
    except PermissionError:
        pass  # not ours: its owner set the mode
    return fd


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding `path`'s exclusive flock, or None if another process holds it."""
    fd = _open_lock_file(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _write_note(fd: int) -> None:
    # For people looking at the lease folder; the lock itself is the truth.
    note = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, note.encode(), 0)
    except OSError:
        pass  # a read-only descriptor: leased all the same


def _holder(path: Path) -> str:
    fd = _try_lock(path)
    if fd is not None:
        os.close(fd)
        return "free"
    try:
        return path.read_text().strip() or "unknown holder"
    except OSError:
        return "unknown holder"


def _try_lease(devices: list[str], count: int, lease_dir: Path) -> GpuLease | None:
    held: list[tuple[str, int]] = []
    for device in devices:
        fd = _try_lock(_lock_path(lease_dir, device))
        if fd is not None:
            held.append((device, fd))
            if len(held) == count:
                for _, locked in held:
                    _write_note(locked)
                return GpuLease([d for d, _ in held], [fd for _, fd in held])
    # Give back a partial set: holding one of two while waiting for the second could deadlock
    # against another job doing the same.
    for _, fd in held:
        os.close(fd)
    return None


def lease_gpus(count: int, lease_dir: str | Path | None = None, timeout: float = 3600.0,
               devices: list[str] | None = None) -> GpuLease:
    """Lock `count` distinct devices (of `devices`, default `available_gpus()`) for this process.

    The lock files go in `lease_dir` (default `default_lease_dir()`). Waits while too few
    devices are free, for at most `timeout` seconds, then raises naming the devices and their
    holders. `count=0` leases nothing.
    """
    if count < 0:
        raise ValueError(f"count must be 0 or more, got {count}")
    if count == 0:
        return GpuLease([])
    devices = available_gpus() if devices is None else list(devices)
    if count > len(devices):
        raise RuntimeError(f"{count} GPU(s) requested but this machine has {len(devices)}: {devices} "
                           f"(from {GPUS_ENV} if set, else nvidia-smi)")
    if lease_dir is None:
        lease_dir = default_lease_dir()
        if not lease_dir.is_dir():
            lease_dir.mkdir(parents=True, exist_ok=True)
            try:
                lease_dir.chmod(0o1777)  # shared like /tmp: any user's jobs add their lock files
            except PermissionError:
                pass  # made by another user at the same moment
    else:
        lease_dir = Path(lease_dir)
        lease_dir.mkdir(parents=True, exist_ok=True)
    start = last_log = time.monotonic()
    while True:
        lease = _try_lease(devices, count, lease_dir)
        if lease is not None:
            log.info("leased GPU(s) %s (lock files in %s)", lease.devices, lease_dir)
            return lease
        now = time.monotonic()
        holders = "; ".join(f"gpu {d}: {_holder(_lock_path(lease_dir, d))}" for d in devices)
        if now - start >= timeout:
            raise TimeoutError(f"could not lease {count} of GPUs {devices} within {timeout:g} s; "
                               f"held: {holders} (lock files in {lease_dir})")
        if now - last_log >= _WAIT_LOG_SECONDS:
            log.info("waiting for %d free GPU(s) of %s; held: %s", count, devices, holders)
            last_log = now
        time.sleep(min(_RETRY_SECONDS, max(0.0, timeout - (now - start))))


def select_devices(count: int, lease_dir: str | Path | None = None, timeout: float = 3600.0) -> GpuLease:
    """Choose this job's `count` GPUs and make them the only ones TensorFlow will see.

    Under SLURM (``SLURM_JOB_ID`` set) the devices are the ones SLURM assigned: all of them, and
    nothing leased, when they are as many as `count`; else `count` of them leased (in a folder
    of this allocation's unless `lease_dir` is given). Elsewhere they are leased with
    `lease_gpus` (lock files in `lease_dir`, default `default_lease_dir()`), and a machine with
    no GPU at all runs the job on the CPU. Sets ``CUDA_VISIBLE_DEVICES`` ("" when `count` is 0,
    so TensorFlow runs on the CPU). Call it before TensorFlow is imported, and keep the returned
    lease referenced until the job ends.
    """
    if count < 0:
        raise ValueError(f"count must be 0 or more, got {count}")
    if "tensorflow" in sys.modules:
        log.warning("select_devices called after TensorFlow was imported: if TensorFlow has already "
                    "initialised CUDA, it keeps the devices it saw then")
    assigned = slurm_gpus()
    if assigned is not None:
        if len(assigned) < count:
            raise RuntimeError(f"{count} GPU(s) requested but SLURM assigned {assigned}; "
                               "ask SLURM for as many (resources: gpu=...)")
        if len(assigned) == count:
            lease = GpuLease(assigned)
            log.info("using the GPU(s) SLURM assigned: %s", lease.devices or "none (CPU)")
        else:
            # Other jobs of the same Snakemake may run in this allocation at the same time.
            if lease_dir is None:
                # Beside the default folder, not in it: that one may belong to another user.
                lease_dir = Path(tempfile.gettempdir()) / f"whaleid-gpu-leases-slurm-{os.environ['SLURM_JOB_ID']}"
            log.info("SLURM assigned GPU(s) %s to the allocation; leasing %d of them", assigned, count)
            lease = lease_gpus(count, lease_dir, timeout, devices=assigned)
    else:
        # nvidia-smi numbers devices in PCI bus order, CUDA by default fastest first: make
        # CUDA count the way the ids were chosen.
        os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        if count and not available_gpus():
            # The same workflow runs on a laptop: a GPU job there trains on the CPU instead.
            log.warning("%d GPU(s) requested but none found (nvidia-smi, or %s); running on the CPU",
                        count, GPUS_ENV)
            count = 0
        lease = lease_gpus(count, lease_dir, timeout)
    os.environ["CUDA_VISIBLE_DEVICES"] = lease.visible_devices
    return lease
