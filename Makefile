# Two commands do all set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: demo test test-slow lint format bench clean install install-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Stamps so that a second run does not reinstall; pyproject changes trigger a reinstall.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(BIN)/qtn demo

lint: install-test
	$(BIN)/ruff check qtn tests tutorials benchmarks
	$(BIN)/ruff format --check qtn tests tutorials benchmarks

format: install-test
	$(BIN)/ruff format qtn tests tutorials benchmarks
	$(BIN)/ruff check --fix qtn tests tutorials benchmarks

test: lint
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: install-test
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS) || [ $$? -eq 5 ]  # 5: no slow tests collected

bench: install-test
	$(PIP) install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/bench_mps_classifier.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist *.egg-info
