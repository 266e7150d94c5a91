# The two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# FEEDS: a feed file to register at start (default none: the registry is the truth, and
# config/feeds.yaml seeds it when empty). METRICS_PORT: the metrics endpoint (default 9108).
FEEDS ?=
METRICS_PORT ?=

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.run-stamp: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev-stamp: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.run-stamp

run: $(VENV)/.run-stamp
	$(if $(METRICS_PORT),NEWS_INGEST_METRICS_PORT=$(METRICS_PORT)) $(BIN)/news-ingest \
		$(if $(FEEDS),--feeds $(FEEDS)) run

lint: $(VENV)/.dev-stamp
	$(BIN)/ruff check ingest workers tests bench
	$(BIN)/mypy ingest workers

# TEST_JOBS: test processes (each with its own Valkey); most tests wait on real processes and
# sockets, so two halve the wall time on two cores. TEST_JOBS=0 runs in one process.
TEST_JOBS ?= 2

test: $(VENV)/.dev-stamp lint
	$(BIN)/python -m pytest $(if $(filter-out 0,$(TEST_JOBS)),-n $(TEST_JOBS))

bench: $(VENV)/.dev-stamp
	$(BIN)/python bench/extraction.py
	$(BIN)/python bench/poll.py
	$(BIN)/python bench/dedup.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/stages.py
	$(BIN)/python bench/classify.py --self-label
	$(BIN)/python bench/soak.py --minutes 10

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
