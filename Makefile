# seqops: two commands do all the set-up on a fresh machine.
#   make run   installs and runs the default job (bundled CO2 data, SQLite MLflow under .seqops/)
#   make test  installs and runs the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
CONFIG ?= configs/co2.yaml
TF_VERSION ?= 2.21.0

.PHONY: install install-gpu run test test-fast lint ui bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# On a machine with an NVIDIA GPU: TensorFlow with CUDA libraries instead of the CPU build.
install-gpu: install
	$(PY) -m pip uninstall --quiet -y tensorflow-cpu
	$(PY) -m pip install --quiet "tensorflow[and-cuda]==$(TF_VERSION)"

run: install
	$(VENV)/bin/seqops retrain --config $(CONFIG)

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

ui: install
	$(VENV)/bin/seqops ui

bench: install
	$(PY) bench/train_throughput.py
	$(PY) bench/validation_drift_1m.py
	$(PY) bench/retrain_e2e.py
	$(PY) bench/promote_rollback.py
	$(PY) bench/gateway.py
	$(PY) bench/unattended.py

clean:
	rm -rf .seqops reports .pytest_cache
