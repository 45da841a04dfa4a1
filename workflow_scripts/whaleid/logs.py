"""Sending a rule script's messages to its Snakemake log file."""

from __future__ import annotations

import logging
import sys
import time


def log_to_file(path: str) -> logging.Logger:
    """Route logging, warnings and stray stderr output (OpenCV's, joblib's) to `path`."""
    stream = open(path, "w", buffering=1)
    sys.stderr = stream
    logging.basicConfig(stream=stream, level=logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    return logging.getLogger("whaleid")


class Progress:
    """Logs `done/total`, rate and time left, at most every `every` seconds."""

    def __init__(self, logger: logging.Logger, what: str, every: float = 10.0):
        self.logger, self.what, self.every = logger, what, every
        self.start = self.last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last < self.every:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        left = (total - done) / rate if rate else float("inf")
        self.logger.info("%s %d/%d (%.1f/s, %.0f s left)", self.what, done, total, rate, left)
