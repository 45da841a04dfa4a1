"""The console a person reads (whaleid.io.console and Snakemake's logger plugin `whaleid`): a line
a finished stage, and for a failed one its log's last lines and where the log is."""

import logging
import os

import pandas as pd
import pytest
from conftest import REPO
from test_workflow import copy_of_run, merged, snakemake

from whaleid.io.console import StageConsole, stage_name


def record(event: str | None, message: str = "", level: int = logging.INFO, **fields) -> logging.LogRecord:
    """A log record as Snakemake's scheduler makes one: its fields in `extra`."""
    made = logging.LogRecord("snakemake", level, __file__, 1, message, None, None)
    if event:
        made.event = event
    made.__dict__.update(fields)
    return made


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_finished_stage_is_one_line_with_its_wildcards_seconds_and_the_count_done():
    lines, clock = [], Clock()
    console = StageConsole(lines.append, clock)
    console.handle(record(None, "Building DAG of jobs..."))
    console.handle(record("run_info", "Job stats: ...", stats={"local_match": 2, "all": 1, "total": 3}))
    console.handle(record("job_info", rule_name="local_match", jobid=4, wildcards={"search": "test",
                                                                                    "scatteritem": "1-of-2"}))
    console.handle(record("job_info", rule_name="local_match", jobid=5,
                          wildcards={"search": "test", "scatteritem": "2-of-2"}))
    console.handle(record("shellcmd", "Shell command: None"))
    clock.now = 165.4
    console.handle(record("job_finished", job_id=5))
    console.handle(record("progress", done=1, total=3))
    clock.now = 170.0
    console.handle(record("job_finished", job_id=4))
    console.handle(record("job_info", rule_name="all", jobid=0, wildcards={}))
    console.handle(record("job_finished", job_id=0))
    console.handle(record("progress", done=3, total=3))
    console.handle(record(None, "Select jobs to execute..."))
    assert lines == ["3 jobs to run",
                     "[1/3] local_match[search=test, scatteritem=2-of-2]  65 s",
                     "[2/3] local_match[search=test, scatteritem=1-of-2]  70 s",
                     "[3/3] all  0 s"]


def test_a_failed_stage_shows_its_log_s_last_lines_and_where_the_log_is(tmp_path):
    log = tmp_path / "local_identify.log"
    log.write_text("".join(f"line {n}\n" for n in range(40)) + "ValueError: split.csv, line 7: no photo\n")
    lines, clock = [], Clock()
    console = StageConsole(lines.append, clock)
    console.handle(record("job_info", rule_name="local_identify", jobid=3, wildcards={}, log=[str(log)]))
    clock.now = 112
    console.handle(record("job_error", "Error in rule local_identify", logging.ERROR, rule_name="local_identify",
                          jobid=3, log=[str(log)], rule_msg=None))
    console.handle(record(None, "a warning Snakemake gives", logging.WARNING))
    console.handle(record("error", "WorkflowError:\nAt least one job did not complete successfully.", logging.ERROR))
    text = "\n".join(lines)
    assert lines[0] == "FAILED: local_identify after 12 s"
    assert f"last lines of its log, {log}:" in text
    assert "    ValueError: split.csv, line 7: no photo" in text and "    line 26" in text and "line 25\n" not in text
    assert lines[-2:] == ["a warning Snakemake gives",
                          "WorkflowError:\nAt least one job did not complete successfully."]
    lines.clear()
    console.handle(record("job_error", "", logging.ERROR, rule_name="ingest", jobid=1,
                          log=[str(tmp_path / "none.log")]))
    assert lines == ["FAILED: ingest", f"  its log, {tmp_path / 'none.log'}, is empty or was not written"]


def test_a_stage_is_named_by_its_rule_and_wildcards():
    assert stage_name("all", {}) == "all" and stage_name("all", None) == "all"
    assert stage_name("preprocess", {"split": "train"}) == "preprocess[split=train]"


@pytest.mark.slow
def test_snakemake_with_the_whaleid_logger_prints_a_line_a_stage_and_a_failure_s_log(tiny_run, tmp_path):
    """The plugin as `make demo` runs it, on a copy of the tiny run: a setting changed reruns
    four stages, a line each; a stage whose input is broken fails with its log's end."""
    work = copy_of_run(tiny_run, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow_scripts")}
    config = merged(tiny_run["config"], {"new_individuals": {"precision": 0.9}})
    run = snakemake(work, "--logger", "whaleid", config=config, env=env)
    lines = [line for line in (run.stdout + run.stderr).splitlines() if not line.startswith("Using workflow")]
    assert lines[0] == "4 jobs to run"
    assert [line.split()[:2] for line in lines[1:]] == [
        ["[1/4]", "local_new_individuals"], ["[2/4]", "review_page"], ["[3/4]", "report_resources"], ["[4/4]", "all"]]
    assert all(line.endswith(" s") for line in lines[1:])

    pd.DataFrame({"pooling": ["max"]}).to_csv(work / "results/local/poolings.csv", index=False)
    failed = snakemake(work, "--logger", "whaleid", config=merged(config, {"new_individuals": {"precision": 0.95}}),
                       env=env, check=False)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    log = work / "results/logs/local_new_individuals.log"
    assert "FAILED: local_new_individuals" in output and f"last lines of its log, {log}" in output
    assert "expected a chosen column" in output
    assert "localrule" not in output and "input:" not in output
