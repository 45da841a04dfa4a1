"""What SLURM costs: the tiny workflow run locally and through `--workflow-profile profiles/slurm`
on a one-node cluster started here, side by side.

    PYTHONPATH=workflow_scripts .venv/bin/python benchmarks/slurm.py

Starts the cluster from nothing (tests/slurm/start_local_slurm.sh after a wiping stop; the
packages must be installed or installable), times that, runs the same tiny workflow both ways
in fresh folders, prints the wall times, the overhead per submitted job and the `sacct` lines
of the SLURM run, and stops the cluster. Needs root, as the test cluster does.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from whaleid.demo.dataset import generate_demo_dataset

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from test_workflow import TINY  # noqa: E402  the sizes of the tests' tiny run

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
STATE = "/tmp/whaleid-slurm"
def timed(command: list[str], **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return time.monotonic() - started, result


def main() -> None:
    scripts = REPO / "tests" / "slurm"
    subprocess.run(["bash", str(scripts / "stop_local_slurm.sh"), "--wipe", STATE], check=True, capture_output=True)
    start_seconds, start = timed(["bash", str(scripts / "start_local_slurm.sh"), STATE])
    print(f"cluster start from a wiped state: {start_seconds:.1f} s ({start.stdout.strip()})")
    env = {**os.environ, "SLURM_CONF": f"{STATE}/etc/slurm.conf"}
    try:
        with tempfile.TemporaryDirectory() as root:
            data = Path(root) / "data"
            generate_demo_dataset(data, n_individuals=24, n_train_images=90, n_test_images=40, max_side=160, seed=7)
            config = Path(root) / "config.yaml"
            config.write_text(yaml.safe_dump({**TINY, "data_dir": str(data), "results_dir": "results"}))
            times, outputs = {}, {}
            for name, extra in [("local", []), ("slurm", ["--workflow-profile", str(REPO / "profiles" / "slurm"),
                                                          "--slurm-init-seconds-before-status-checks", "1"])]:
                work = Path(root) / name
                work.mkdir()
                times[name], result = timed([SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory",
                                             str(work), "--cores", "2", *extra, "--configfile", str(config)], env=env)
                outputs[name] = result.stdout + result.stderr
            jobs = re.findall(r"submitted with SLURM jobid (\d+)", outputs["slurm"])
            total = int(re.search(r"^total\s+(\d+)$", outputs["local"], re.MULTILINE).group(1))
            print(f"tiny workflow, {total} jobs ({len(jobs)} submitted to SLURM, the rest local rules): "
                  f"local {times['local']:.0f} s, through SLURM {times['slurm']:.0f} s, "
                  f"ratio {times['slurm'] / times['local']:.2f}, "
                  f"{(times['slurm'] - times['local']) / len(jobs):.1f} s more per submitted job")
            sacct = subprocess.run(["sacct", "-X", "-j", ",".join(jobs),
                                    "--format=JobID,Comment%32,State,Elapsed,AllocTRES%45"],
                                   capture_output=True, text=True, env=env, check=True).stdout
            print(sacct)
    finally:
        subprocess.run(["bash", str(scripts / "stop_local_slurm.sh"), STATE], check=True, capture_output=True)


if __name__ == "__main__":
    main()
