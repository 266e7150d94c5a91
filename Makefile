# The two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FEEDS ?= ingest/defaults/feeds.yaml

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
	$(BIN)/news-ingest --feeds $(FEEDS) run

lint: $(VENV)/.dev-stamp
	$(BIN)/ruff check ingest workers tests bench
	$(BIN)/mypy ingest workers

test: $(VENV)/.dev-stamp lint
	$(BIN)/python -m pytest

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
