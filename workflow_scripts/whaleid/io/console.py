"""What a person reads while a run goes: one line a finished stage, and where one fails, why.

Snakemake's own console describes every job before it runs (its rule, input, output, log,
wildcards, reason, resources): a thousand lines for the demo, where a researcher wants to know
what finished, how long it took, and how far the run is. `StageConsole` reads Snakemake's log
records by their event (`snakemake_interface_logger_plugins.common.LogEvent`, the fields its
scheduler gives them) and writes:

- the number of jobs to run, once (``run_info``);
- a line for each finished job: how many of how many are done, the stage (rule) and its
  wildcards, and its seconds since Snakemake started it (``job_info`` to ``job_finished``, the
  count from the ``progress`` that follows);
- for a failed job, its stage and wildcards, the last lines of its log and where the log is
  (``job_error``); the workflow's own errors (``error``) and every warning, as Snakemake words them.

Everything else (the DAG's building, each "Select jobs to execute...") is left to Snakemake's
own log file (.snakemake/log/), which keeps it all. The logger plugin
(`snakemake_logger_plugin_whaleid`, `snakemake --logger whaleid`) hands it the records; here is
no Snakemake import, so it is tested with records made by hand.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

# The last lines of a failed job's log that the console shows.
LOG_TAIL_LINES = 15


def stage_name(rule: str, wildcards: Mapping[str, object] | None) -> str:
    """A job as the console names it: its rule, and its wildcards in brackets where it has some
    (``local_match[search=test, scatteritem=2-of-3]``)."""
    if not wildcards:
        return rule
    return f"{rule}[{', '.join(f'{key}={value}' for key, value in wildcards.items())}]"


def log_tail(path: str | Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last `lines` lines of a log (none where it is missing or unreadable)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read().splitlines()[-lines:]
    except OSError:
        return []


def _log_paths(logs) -> list[str]:
    """The job's log files as Snakemake's record lists them (each a path relative to the
    workflow's working directory, which Snakemake may follow with a flag in brackets: " (temp)"),
    made absolute: the console says where a log is wherever the person ran Snakemake from."""
    paths = []
    for entry in logs or ():
        entry = str(entry)
        paths.append(os.path.abspath(entry if Path(entry).exists() else entry.split(" (")[0]))
    return paths


class StageConsole:
    """Snakemake's log records (`handle`) as the lines a person reads, each passed to `write`.
    `clock`: seconds, as `time.monotonic` (a test's own)."""

    def __init__(self, write: Callable[[str], None], clock: Callable[[], float] = time.monotonic):
        self.write, self.clock = write, clock
        # jobid: (stage name, when it started, its log files)
        self.jobs: dict[int, tuple[str, float, list[str]]] = {}
        self.finished: list[tuple[str, float]] = []  # awaiting the progress count that follows them
        self.total = 0

    def handle(self, record: logging.LogRecord) -> None:
        event = str(getattr(record, "event", "") or "")
        handler = getattr(self, f"_{event}", None) if event else None
        if handler is not None:
            handler(record)
        elif record.levelno >= logging.WARNING:
            self.write(record.getMessage())

    def _run_info(self, record) -> None:
        stats = getattr(record, "stats", None) or {}
        self.total = int(stats.get("total", self.total))
        self.write(f"{self.total} jobs to run")

    def _job_info(self, record) -> None:
        name = stage_name(record.rule_name, getattr(record, "wildcards", None))
        self.jobs[int(record.jobid)] = (name, self.clock(), _log_paths(getattr(record, "log", None)))

    def _job_finished(self, record) -> None:
        name, started, _ = self.jobs.pop(int(record.job_id), (f"job {record.job_id}", None, []))
        self.finished.append((name, float("nan") if started is None else self.clock() - started))

    def _progress(self, record) -> None:
        done, self.total = int(record.done), int(record.total)
        width = len(str(self.total))
        # the jobs finished since the last count: the last of them brought it to `done`
        for k, (name, seconds) in enumerate(self.finished):
            count = done - len(self.finished) + 1 + k
            took = "" if seconds != seconds else f"  {seconds:.0f} s"
            self.write(f"[{count:>{width}}/{self.total}] {name}{took}")
        self.finished = []

    def _job_error(self, record) -> None:
        jobid = int(getattr(record, "jobid", -1))
        name, started, logs = self.jobs.pop(jobid, (stage_name(record.rule_name, None), None, []))
        logs = _log_paths(getattr(record, "log", None)) or logs
        after = "" if started is None else f" after {self.clock() - started:.0f} s"
        self.write(f"FAILED: {name}{after}")
        message = getattr(record, "rule_msg", None)
        if message:
            self.write(f"  {message}")
        for path in logs:
            tail = log_tail(path)
            if tail:
                self.write(f"  last lines of its log, {path}:")
                self.write("\n".join(f"    {line}" for line in tail))
            else:
                self.write(f"  its log, {path}, is empty or was not written")
        if not logs:
            self.write("  it has no log of its own: Snakemake's log (.snakemake/log/) has what it printed")

    def _error(self, record) -> None:
        self.write(record.getMessage())
