import logging
import os
import subprocess
import sys

from conftest import REPO

from whaleid.io.logs import Progress


def messages(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def test_progress_shows_a_bar_the_rate_and_the_time_left(caplog, monkeypatch):
    clock = iter([0.0, 0.0, 10.0, 12.0, 30.0])
    monkeypatch.setattr("whaleid.io.logs.time.monotonic", lambda: next(clock))
    progress = Progress(logging.getLogger("test"), "encoded train", every=5.0)
    with caplog.at_level(logging.INFO):
        progress(0, 100)    # the start: nothing to say yet
        progress(40, 100)   # 10 s in: 4 a second, 15 s to go
        progress(50, 100)   # 2 s later: too soon for another line
        progress(100, 100)  # the end is always shown
    assert messages(caplog) == [
        "encoded train [########............] 40% 40/100, 4.0/s, 15 s left",
        "encoded train [####################] 100% 100/100, 3.3/s, done",
    ]


def test_a_resumed_job_counts_only_its_own_work_in_the_rate(caplog, monkeypatch):
    clock = iter([0.0, 0.0, 10.0])
    monkeypatch.setattr("whaleid.io.logs.time.monotonic", lambda: next(clock))
    progress = Progress(logging.getLogger("test"), "preprocessed test", every=5.0)
    with caplog.at_level(logging.INFO):
        progress(60, 100)  # chunks finished before the kill
        progress(80, 100)
    assert messages(caplog) == [
        "preprocessed test [############........] 60% 60/100, resumed",
        "preprocessed test [################....] 80% 80/100, 2.0/s, 10 s left",
    ]


def test_everything_a_job_prints_to_stderr_goes_to_its_log_file_c_level_output_too(tmp_path):
    # TensorFlow's start-up lines come from C++, straight to file descriptor 2: in a job they
    # would land on Snakemake's console among the workflow's own lines.
    log = tmp_path / "job.log"
    script = (f"import os, sys\nfrom whaleid.io.logs import log_to_file\nlog = log_to_file({str(log)!r})\n"
              "os.write(2, b'written to fd 2, as C++ libraries do\\n')\nprint('to sys.stderr', file=sys.stderr)\n"
              "log.info('a log line')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(REPO / "workflow_scripts")})
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout == ""
    text = log.read_text()
    for line in ("written to fd 2, as C++ libraries do", "to sys.stderr", "a log line"):
        assert line in text
