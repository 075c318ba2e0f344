# One command each for the things people do. `make test` is what CI runs.
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test lint unit integration bench install clean prometheus

demo: $(STAMP)  ## live demo: embedded broker + worker + simulator
	$(BIN)/tunestream demo $(ARGS)

test: $(STAMP) prometheus  ## everything CI checks: lint, types, import rooms, unit + doctests, integration on a real broker
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest -m "not integration"

integration: $(STAMP) prometheus
	$(BIN)/pytest -m integration

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)  ## prints measured figures; never part of the tests
	$(BIN)/python -m benchmarks.decode_validate
	$(BIN)/python -m benchmarks.features
	$(BIN)/python -m benchmarks.models
	$(BIN)/python -m benchmarks.pipeline
	$(BIN)/python -m benchmarks.formats
	$(BIN)/tunestream bench

install: $(STAMP)

# Debian's prometheus and promtool: a real server for the monitoring tests.
prometheus:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  $$sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded,profile,report]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis .tunestream
