"""Sending a rule script's messages to its Snakemake log file."""

from __future__ import annotations

import logging
import os
import sys
import time


def log_to_file(path: str) -> logging.Logger:
    """Route logging, warnings and all other stderr output to `path`: Python's (joblib's) and
    what libraries print from C++ straight to the process's standard error (TensorFlow's start-up
    lines, OpenCV's warnings), which would otherwise land among Snakemake's own console lines."""
    stream = open(path, "w", buffering=1)
    sys.stderr.flush()
    os.dup2(stream.fileno(), 2)
    sys.stderr = stream
    logging.basicConfig(stream=stream, level=logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    return logging.getLogger("whaleid")


class Progress:
    """A progress bar in the log: ``what [#####.....] 50% 45/90, 12.3/s, 4 s left``, at most every
    `every` seconds and at the end, so that ``tail -f`` on a long job's log tells where it is.

    Call it with (done, total) as work finishes. The first call gives the starting point: a job
    resumed after a kill starts with part of the work done, which must not count in its rate,
    so callers report that before they start.
    """

    BAR_WIDTH = 20

    def __init__(self, logger: logging.Logger, what: str, every: float = 10.0):
        self.logger, self.what, self.every = logger, what, every
        self.start = self.last = time.monotonic()
        self.first_done: int | None = None

    def bar(self, done: int, total: int) -> str:
        filled = self.BAR_WIDTH * done // total if total else self.BAR_WIDTH
        return "#" * filled + "." * (self.BAR_WIDTH - filled)

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        percent = 100 * done // total if total else 100
        shown = f"{self.what} [{self.bar(done, total)}] {percent}% {done}/{total}"
        if self.first_done is None:
            self.first_done, self.start = done, now
            if done:
                self.logger.info("%s, resumed", shown)
            if done < total or done:  # work to come, or all of it done before
                return
        if done < total and now - self.last < self.every:
            return
        self.last = now
        rate = (done - self.first_done) / max(now - self.start, 1e-9)
        if done >= total:
            left = "done"
        else:
            left = f"{(total - done) / rate:.0f} s left" if rate else "time left unknown"
        self.logger.info("%s, %.1f/s, %s", shown, rate, left)
