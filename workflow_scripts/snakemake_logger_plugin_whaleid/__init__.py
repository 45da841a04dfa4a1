"""Snakemake's logger plugin ``whaleid`` (`snakemake --logger whaleid`, with workflow_scripts on
PYTHONPATH, as `make demo` runs it): the console a person reads, a line a finished stage
(`whaleid.io.console.StageConsole`), in place of Snakemake's job descriptions. Snakemake finds it
by its module's name, as it finds every installed logger plugin."""

import sys

from snakemake_interface_logger_plugins.base import LogHandlerBase

from whaleid.io.console import StageConsole


class LogHandler(LogHandlerBase):
    def __post_init__(self) -> None:
        self.console = StageConsole(self._write)

    @staticmethod
    def _write(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def emit(self, record) -> None:
        try:
            self.console.handle(record)
        except Exception:  # a console line must never stop the run: logging's own report instead
            self.handleError(record)

    # What Snakemake asks of every handler: this one is the console (so Snakemake's own stream
    # handler stands down), and chooses its records by their event, not by --quiet's filter.
    writes_to_stream = True
    writes_to_file = False
    has_filter = True
    has_formatter = True
    needs_rulegraph = False
