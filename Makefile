# Set-up is part of every target: a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Stage commands call `python`: it must be the venv's.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: pipeline test lint bench clean-venv

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

pipeline: $(STAMP)
	$(BIN)/dvc repro

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src stages tests benchmarks

clean-venv:
	rm -rf $(VENV)
