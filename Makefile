# The two commands of the README. Both build .venv from requirements.txt when it is missing
# or older than requirements.txt.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all

.PHONY: demo test lint benchmark clean

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

demo: $(BIN)/.installed
	$(BIN)/snakemake --cores $(CORES) --configfile presets/demo.yaml
	$(BIN)/snakemake --cores $(CORES) --configfile presets/demo.yaml --report results/report.html
	@PYTHONPATH=workflow_scripts $(BIN)/python -m whaleid.summary results
	@echo "report: $(abspath results/report.html)"

test: $(BIN)/.installed
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/snakemake --lint

benchmark: $(BIN)/.installed
	PYTHONPATH=workflow_scripts $(BIN)/python benchmarks/preprocess.py
	PYTHONPATH=workflow_scripts $(BIN)/python benchmarks/autoencoder.py
	PYTHONPATH=workflow_scripts $(BIN)/python benchmarks/retrieval.py
	PYTHONPATH=workflow_scripts $(BIN)/python benchmarks/local_features.py

clean:
	rm -rf results resources .snakemake
