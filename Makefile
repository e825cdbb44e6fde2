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
	$(BIN)/lint-imports --no-cache  # the layer order (pyproject.toml, [tool.importlinter])

format: install-test
	$(BIN)/ruff format qtn tests tutorials benchmarks
	$(BIN)/ruff check --fix qtn tests tutorials benchmarks

test: lint
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: install-test
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS) || [ $$? -eq 5 ]  # 5: no slow tests collected

# Benchmarks run in their own venv: the peers (tn4ml) pull in a large stack.
BENCH_VENV ?= .venv-bench
MNIST_DIR  ?= ../shared/data/mnist

$(BENCH_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[bench]'
	touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python benchmarks/bench_mps_classifier.py --case digits
	$(BENCH_VENV)/bin/python benchmarks/bench_mps_classifier.py --case mnist14 --data-dir $(MNIST_DIR) --bond-dims 32 --epochs 25 --time-budget 300
	$(BENCH_VENV)/bin/python benchmarks/bench_born_machine.py --case bas
	$(BENCH_VENV)/bin/python benchmarks/bench_born_machine.py --case sampling
	$(BENCH_VENV)/bin/python benchmarks/bench_born_machine.py --case mnist --data-dir $(MNIST_DIR) --bond-dims 10 20 50 100 200 --epochs 10 --time-budget 1800
	$(BENCH_VENV)/bin/python benchmarks/bench_ttn_classifier.py --case digits
	$(BENCH_VENV)/bin/python benchmarks/bench_ttn_classifier.py --case mnist14 --data-dir $(MNIST_DIR)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist *.egg-info
