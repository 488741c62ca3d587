# One command to set up and run the demo, one to set up and run the tests (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SCALE ?= 0.01
SEED ?= 42

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup browser demo test ui lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

demo: setup  ## simulate the H22 world, materialise every partition, print the KPIs, write the report
	$(BIN)/crowd-platform simulate --scale $(SCALE) --seed $(SEED)
	$(BIN)/crowd-platform materialize
	$(BIN)/crowd-platform report

browser:  ## headless Chromium (Debian package), which the report test renders the HTML report in
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium; }

test: setup browser  ## the whole test suite (CI runs exactly this)
	$(BIN)/python -m pytest

ui: setup  ## the Dagster UI on http://127.0.0.1:3000
	$(BIN)/crowd-platform ui

lint: setup
	$(BIN)/ruff check crowd_platform crowd_platform_tests

clean:  ## remove generated data (landing, truth, warehouse, Dagster home); keeps the venv
	rm -rf data
