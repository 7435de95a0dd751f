# Two commands: `make run` (the bridge locally) and `make test` (the whole suite); and `make bench`
# (figures, beside a naive handler's). They install what they need on first use: a .venv from
# requirements-dev.txt, the npm packages (Azurite) and, for the offline infrastructure checks, checkov
# in its own .venv-checkov (the bench does not need it).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test bench lint typecheck unit e2e clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

.venv-checkov/.installed: requirements-infra.txt
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet -r requirements-infra.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(VENV)/.installed node_modules/.installed .venv-checkov/.installed

run: deps
	$(PY) -m devtools.localstack

test: deps
	$(PY) -m devtools.check

# BENCH_ARGS: e.g. `make bench BENCH_ARGS="--events 400"`, `--baseline 4f4757d` (that commit beside the
# tree, same run), or `--smoke` (python -m devtools.bench --help).
bench: $(VENV)/.installed node_modules/.installed
	$(PY) -m devtools.bench $(BENCH_ARGS)

lint: deps
	$(PY) -m ruff check .

typecheck: deps
	$(PY) -m mypy

clean:
	rm -rf $(VENV) .venv-checkov node_modules .local .mypy_cache .ruff_cache .pytest_cache
