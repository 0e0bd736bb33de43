# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install demo test test-all bench clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	# CPU wheel of torch (the pinned version avoids GBs of CUDA packages)
	$(BIN)/python -m pip install torch==2.13.0
	# pythia8mc: binary wheels only (8.318.0 has none and compiles for >15 min)
	$(BIN)/python -m pip install --only-binary=:all: pythia8mc==8.317.2
	$(BIN)/python -m pip install -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/excess demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

test-all: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "slow or not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/generation.py

clean:
	rm -rf $(VENV) build dist .pytest_cache
