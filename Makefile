# Two commands: `make run` (the bridge locally) and `make test` (the whole suite). Both install what
# they need on first use: a .venv from requirements-dev.txt and the npm packages (Azurite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint typecheck unit e2e clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(VENV)/.installed node_modules/.installed

run: deps
	$(PY) -m devtools.localstack

test: deps
	$(PY) -m devtools.check

lint: deps
	$(PY) -m ruff check .

typecheck: deps
	$(PY) -m mypy

clean:
	rm -rf $(VENV) node_modules .local .mypy_cache .ruff_cache .pytest_cache
