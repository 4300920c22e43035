# The two commands of the README: `make benchmark` and `make test`. Both set up what they need.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch: from ../shared/wheels when it is there (this workplace), else from PIP_* settings.
SHARED_WHEELS := $(abspath ../shared/wheels)
ifneq ($(wildcard $(SHARED_WHEELS)/*.whl),)
export PIP_FIND_LINKS := $(SHARED_WHEELS)
endif

# The onnxruntime wheel records telemetry unless told not to (the images set this too).
export ORT_DISABLE_TELEMETRY := 1

# cargo's target folder is shared with the harness's image builds and survives fresh clones.
CACHE_DIR ?= $(or $(MODEL_SERVING_CACHE_DIR),$(if $(XDG_CACHE_HOME),$(XDG_CACHE_HOME)/model-serving,$(HOME)/.cache/model-serving))
export CARGO_TARGET_DIR ?= $(CACHE_DIR)/cargo-target
# cargo judges freshness by file times and the target folder is shared between checkouts; touching the crate
# root makes sure this checkout's sources are the ones compiled (the dependencies stay cached).
CARGO := touch rust_onnx_serving/src/lib.rs rust_onnx_serving/src/main.rs && cd rust_onnx_serving && cargo
# The usual Rust implementation (usual/rust_usual), measured beside rust-onnx-serving: linted and tested too.
CARGO_USUAL := touch usual/rust_usual/src/main.rs && cd usual/rust_usual && cargo

# The model the images serve: the default, or the user's when TORCH_MODEL_URI / ONNX_MODEL_URI are set.
MODEL_DIR ?= $(if $(TORCH_MODEL_URI)$(ONNX_MODEL_URI),artifacts/user,artifacts/default)

.PHONY: setup system benchmark test images lint format clean

setup: system $(VENV)/.installed

system:
	@bash scripts/system-deps.sh
	@bash scripts/install-oha.sh

$(VENV)/.installed: pyproject.toml
	@echo "== setting up $(VENV) (Python deps, the harness in editable mode)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

benchmark: setup
	$(BIN)/pytest -m perf --profile $(or $(PROFILE),default) $(PERF_ARGS)

test: setup
	$(CARGO) test --locked
	$(CARGO_USUAL) test --locked
	$(BIN)/pytest

# The three images for docker-compose.yaml (tagged :latest too).
images: setup
	$(BIN)/model-serving export --out $(MODEL_DIR)
	$(BIN)/model-serving build --model $(MODEL_DIR)

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	$(CARGO_USUAL) fmt --check
	$(CARGO_USUAL) clippy --locked --all-targets -- -D warnings

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(CARGO) fmt
	$(CARGO_USUAL) fmt

clean:
	rm -rf artifacts images/generated reports .benchmarks
