# The two commands of the README. Both build .venv from requirements.txt when it is missing
# or older than requirements.txt.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
# pytest-xdist workers for `make test`: two, for a 2-core machine, most tests being one-threaded.
TEST_WORKERS ?= 2

.PHONY: demo test lint benchmark clean

# pip compiles the packages' bytecode one file at a time (a minute, most of it TensorFlow's);
# compileall does the same on every core. It must be done here: where PYTHONDONTWRITEBYTECODE is
# set, as on these machines, Python compiles nothing it imports, and every TensorFlow job would
# start 15 s slower.
$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -r requirements.txt
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib
	touch $@

# The demo's console: a line a finished stage (Snakemake's logger plugin in
# workflow_scripts/snakemake_logger_plugin_whaleid); VERBOSE=1 gives Snakemake's own, each job described.
# make does not echo the commands: the console is the stages' lines and the summary (about 75 lines).
CONSOLE := $(if $(VERBOSE),,--logger whaleid)

demo: $(BIN)/.installed
	@PYTHONPATH=workflow_scripts $(BIN)/snakemake --cores $(CORES) $(CONSOLE) --configfile presets/cpu.yaml presets/demo.yaml
	@PYTHONPATH=workflow_scripts $(BIN)/snakemake --cores $(CORES) $(CONSOLE) --configfile presets/cpu.yaml presets/demo.yaml \
		--report results/report.html
	@PYTHONPATH=workflow_scripts $(BIN)/python -m whaleid.evaluation.summary results
	@echo "report: $(abspath results/report.html)"

# The linters first, then the suite. The browser tests need Debian's chromium: installed first
# where this machine can (root, apt-get). The slowest tests are listed at the end: `make test`
# must stay under 20 minutes on 2 cores.
test: lint
	tests/install_chromium.sh
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=15

# ruff for the Python, snakefmt and Snakemake's own lint for the workflow (settings in
# pyproject.toml), node's syntax check for the pages' scripts where node is installed.
PAGE_SCRIPTS := $(wildcard workflow_scripts/whaleid/review/templates/*.js)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check Snakefile rules/
	$(BIN)/snakemake --lint
	@if command -v node >/dev/null; then for script in $(PAGE_SCRIPTS); do node --check $$script || exit 1; done; \
	else echo "node not found: the pages' scripts are not syntax-checked"; fi

benchmark: $(BIN)/.installed
	PYTHONPATH=workflow_scripts $(BIN)/python benchmarks/preprocess.py
	PYTHONPATH=workflow_scripts $(BIN)/python benchmarks/autoencoder.py
	PYTHONPATH=workflow_scripts $(BIN)/python benchmarks/metric_learning_retrieval.py
	PYTHONPATH=workflow_scripts $(BIN)/python benchmarks/local.py
	PYTHONPATH=workflow_scripts $(BIN)/python benchmarks/local_max_side.py
	PYTHONPATH=workflow_scripts $(BIN)/python benchmarks/local_foreground.py
	PYTHONPATH=workflow_scripts $(BIN)/python benchmarks/scale.py
	PYTHONPATH=workflow_scripts $(BIN)/python benchmarks/opencv_isa.py

clean:
	rm -rf results resources .snakemake
