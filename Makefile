# Set-up is part of every target: a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Stage commands call `python`: it must be the venv's.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: pipeline test lint bench browser shell clean-venv gpu-check

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

pipeline: $(STAMP)
	$(BIN)/dvc repro

# The page test drives a real headless browser: Debian's chromium and its driver, unless
# a Chrome or Chromium driver is already on PATH.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

browser:
	@command -v chromedriver > /dev/null || { \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver fonts-dejavu-core > /dev/null; }

test: $(STAMP) browser
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src stages tests benchmarks

# On a machine with an NVIDIA GPU: the CUDA tests, benchmarks and pipeline (README, On a GPU).
gpu-check: $(STAMP)
	benchmarks/gpu_check.sh

# A shell with the project's dvc, nmt and python first on PATH; `exit` leaves it.
shell: $(STAMP)
	@echo "dvc, nmt and python: $(abspath $(BIN)) (exit to leave)" >&2
	@VIRTUAL_ENV=$(abspath $(VENV)) $${SHELL:-/bin/bash}

clean-venv:
	rm -rf $(VENV)
