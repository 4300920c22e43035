# The two commands of the README: `make benchmark` and `make test`. Both set up what they need.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch: from ../shared/wheels when it is there (this workplace), else from PIP_* settings.
SHARED_WHEELS := $(abspath ../shared/wheels)
ifneq ($(wildcard $(SHARED_WHEELS)/*.whl),)
export PIP_FIND_LINKS := $(SHARED_WHEELS)
endif

.PHONY: setup system benchmark test lint format clean

setup: system $(VENV)/.installed

system:
	@bash scripts/system-deps.sh

$(VENV)/.installed: pyproject.toml
	@echo "== setting up $(VENV) (Python deps, the harness in editable mode)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

benchmark: setup
	$(BIN)/model-serving export
	$(BIN)/model-serving check

test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf artifacts images/generated reports .benchmarks
