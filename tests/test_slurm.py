"""The workflow submitted to a real SLURM cluster through `--workflow-profile profiles/slurm`.

A one-node cluster (slurmctld, slurmd, slurmdbd with MariaDB for sacct, munged) is started on
this machine by tests/slurm/start_local_slurm.sh; the tests are skipped, with its reason, where
that cannot be done (not root and the packages missing). Its node declares two GPUs backed by
/dev/null-like device files, so SLURM assigns GPUs and sets CUDA_VISIBLE_DEVICES as it would
on a GPU node, and TensorFlow, seeing no GPU, runs on the CPU.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO
from test_workflow import SNAKEMAKE, snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SLURM_SCRIPTS = REPO / "tests" / "slurm"
STATE_DIR = Path(os.environ.get("WHALEID_SLURM_DIR", "/tmp/whaleid-slurm"))
PROFILE = REPO / "profiles" / "slurm"
# The plugin waits 40 s before its first status check by default, which suits a cluster's
# hours-long jobs; this test's jobs take seconds.
FAST_STATUS = ("--slurm-init-seconds-before-status-checks", "1")
CANNOT_START = 3  # start_local_slurm.sh's status for "not possible on this machine"
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+)")


def localrules() -> set[str]:
    """The rules run on the submit host: those in the `localrules:` blocks of the Snakefile and
    rules/*.smk."""
    names = set()
    for source in [REPO / "Snakefile", *(REPO / "rules").glob("*.smk")]:
        for block in source.read_text().split("localrules:")[1:]:
            names |= set(re.findall(r"^\s+(\w+),$", block.split("\n\n", 1)[0], re.MULTILINE))
    return names


def sacct(job_ids: list[str]) -> list[dict[str, str]]:
    fields = ["JobID", "Comment", "State", "AllocTRES"]
    listing = subprocess.run(["sacct", "-X", "-n", "-P", "-j", ",".join(job_ids), f"--format={','.join(fields)}"],
                             capture_output=True, text=True, check=True, timeout=60).stdout
    return [dict(zip(fields, line.split("|"))) for line in listing.splitlines() if line]


def rule_of(comment: str) -> str:
    """The rule name in the comment the plugin gives each job: rule_<name>[_wildcards_...]."""
    return comment.removeprefix("rule_").split("_wildcards_", 1)[0]


@pytest.fixture(scope="module")
def slurm_env():
    """The environment for Snakemake and SLURM's tools with the local cluster up; stops, at the
    end, the daemons it started (a cluster that was already running is left running)."""
    started = time.monotonic()
    start = subprocess.run(["bash", str(SLURM_SCRIPTS / "start_local_slurm.sh"), str(STATE_DIR)],
                           capture_output=True, text=True, timeout=600)
    if start.returncode == CANNOT_START:
        pytest.skip(start.stderr.strip())
    assert start.returncode == 0, f"local SLURM did not start:\n{start.stdout}\n{start.stderr}"
    print(f"local SLURM ready in {time.monotonic() - started:.1f} s: {start.stdout.strip()}")
    env = {**os.environ, "SLURM_CONF": str(STATE_DIR / "etc" / "slurm.conf")}
    try:
        yield env
    finally:
        if "already running" not in start.stdout:
            subprocess.run(["bash", str(SLURM_SCRIPTS / "stop_local_slurm.sh"), str(STATE_DIR)], timeout=300)


# What goes through SLURM: every kind of job the cluster matters for (a GPU stage's training and
# its inference, the CPU stages, the local method's chunks of queries matched by jobs of their
# own and gathered on the submit host, the local rules) through metric learning, the local method
# and the baseline. Not the autoencoder, the classifier or the report: their jobs are more of the
# same (the same resources, the same start of TensorFlow) and would double the test's time.
SLURM_TARGETS = ["results/baseline/submission.csv", "results/metric_learning/submission.csv",
                 "results/local/submission.csv"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, slurm_env, tiny_run):
    """The tiny workflow's run (conftest's tiny_run, the local reference) repeated on its data
    through SLURM, with a lease folder of its own to show that SLURM's jobs take no lease."""
    root = tmp_path_factory.mktemp("slurm")
    work = root / "slurm"
    work.mkdir()
    started = time.monotonic()
    # after "--": the targets, which would otherwise be read as more --configfile files
    result = snakemake(work, "--workflow-profile", str(PROFILE), *FAST_STATUS, "--", *SLURM_TARGETS,
                       config=tiny_run["config"], env={**slurm_env, "WHALEID_LEASE_DIR": str(root / "leases")})
    print(f"tiny workflow through SLURM: {time.monotonic() - started:.0f} s")
    (work / "snakemake.out").write_text(result.stdout + result.stderr)
    return {"root": root, "local": tiny_run["results"], "config": tiny_run["config"], "env": slurm_env}


def test_every_job_but_the_local_rules_ran_as_a_slurm_job(runs):
    output = (runs["root"] / "slurm" / "snakemake.out").read_text()
    planned = collections.Counter(
        {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)$", output.split("Job stats:", 1)[1],
                                                          re.MULTILINE) if rule != "total"})
    local = localrules()
    expected = collections.Counter({rule: n for rule, n in planned.items() if rule not in local})
    assert {"ingest", "preprocess", "metric_learning_train", "metric_learning_embed", "local_match"} <= set(expected)
    assert {"baseline_identify", "metric_learning_identify", "local_identify", "submission"} <= set(planned) & local
    # each search's queries in the tiny run's 3 chunks, each chunk a job of its own
    assert expected["local_match"] == 6

    job_ids = SUBMITTED.findall(output)
    jobs = sacct(job_ids)
    assert sorted(job["JobID"] for job in jobs) == sorted(job_ids)
    assert collections.Counter(rule_of(job["Comment"]) for job in jobs) == expected
    assert {job["State"] for job in jobs} == {"COMPLETED"}
    # Each GPU stage was given one of the node's GPUs by SLURM, and took no lease of its own.
    for job in jobs:
        gpu_stage = rule_of(job["Comment"]) in {"autoencoder_train", "autoencoder_encode", "classifier_train",
                                                "classifier_identify", "metric_learning_train",
                                                "metric_learning_embed"}
        assert ("gres/gpu=1" in job["AllocTRES"]) == gpu_stage, job
    log = (runs["root"] / "slurm" / "results" / "logs" / "metric_learning_train.log").read_text()
    assert re.search(r"using the GPU\(s\) SLURM assigned: \['[01]'\]", log)
    assert not (runs["root"] / "leases").exists() or not any((runs["root"] / "leases").iterdir())


def test_results_through_slurm_equal_those_of_a_local_run(runs):
    local, cluster = runs["local"], runs["root"] / "slurm" / "results"
    compared = ["validation/split.csv", *(f"{method}/{name}" for method in ("baseline", "metric_learning", "local")
                                          for name in ("submission.csv", "predictions/validation.csv")),
                "local/pairs/test.csv", "local/shortlists/validation.csv"]
    for name in compared:
        assert (cluster / name).read_bytes() == (local / name).read_bytes(), name
    for name in ["preprocess/train.npy", "metric_learning/embeddings/train.npy", "metric_learning/embeddings/test.npy"]:
        assert np.array_equal(np.load(cluster / name), np.load(local / name)), name


def test_a_job_cancelled_with_scancel_fails_the_run_and_the_rerun_completes_it(runs):
    work = runs["root"] / "slurm"
    target = work / "results" / "metric_learning" / "embeddings" / "test.npy"
    finished = np.load(target)
    command = [SNAKEMAKE, str(target.relative_to(work)), "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(work), "--cores", "2", "--workflow-profile", str(PROFILE), *FAST_STATUS,
               "--configfile", str(work / "test_config.yaml")]
    assert yaml.safe_load((work / "test_config.yaml").read_text()) == runs["config"]

    run = subprocess.Popen([*command, "--forcerun", "metric_learning_embed"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, env=runs["env"])
    try:
        job_id = None
        deadline = time.monotonic() + 300
        while job_id is None and time.monotonic() < deadline:
            queue = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i|%k"], capture_output=True,
                                   text=True, timeout=60, env=runs["env"]).stdout
            job_id = next((line.split("|")[0] for line in queue.splitlines()
                           if line.split("|")[1].startswith("rule_metric_learning_embed")), None)
            time.sleep(0.5)
        assert job_id, "the metric_learning_embed job never reached RUNNING"
        subprocess.run(["scancel", job_id], check=True, timeout=60, env=runs["env"])
        output, _ = run.communicate(timeout=300)
    finally:
        run.kill()
    assert run.returncode != 0
    assert f"SLURM-job '{job_id}' failed, SLURM status is: 'CANCELLED'" in output, output[-3000:]
    assert not target.exists()  # a failed job's output is removed, not left half-written

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600, env=runs["env"])
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert SUBMITTED.search(rerun.stdout + rerun.stderr)
    assert np.array_equal(np.load(target), finished)
