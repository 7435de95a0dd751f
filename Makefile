# Two commands: `make run` (the bridge locally) and `make test` (the whole suite); and `make bench`
# (figures, beside a naive handler's). They install what they need on first use: a .venv from the
# lock requirements-dev.txt, the npm packages (Azurite) and, for the offline infrastructure checks of
# `make test` only, checkov in its own .venv-checkov from requirements-infra.txt (run and bench do not
# need it). Every Python package installs with --require-hashes: the exact files the locks name.
# `make lock` regenerates the locks from the requirements*.in files (docs/deploy/upgrading.md); `make docs`
# serves the docs site.
PYTHON ?= python3
# VENV and CHECKOV_VENV can be set to build an environment elsewhere (a fresh one under /tmp, say);
# `make test` itself uses .venv-checkov (devtools/infra_check.py).
VENV ?= .venv
CHECKOV_VENV ?= .venv-checkov
PY := $(VENV)/bin/python
# e.g. `make lock LOCK_ARGS="--upgrade-package msgraph-sdk"` or `LOCK_ARGS=--upgrade`
LOCK_ARGS ?=

.PHONY: run test bench docs lint typecheck lock deps clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-infra.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --require-hashes -r requirements-infra.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(VENV)/.installed node_modules/.installed $(CHECKOV_VENV)/.installed

run: $(VENV)/.installed node_modules/.installed
	$(PY) -m devtools.localstack

test: deps
	$(PY) -m devtools.check

# BENCH_ARGS: e.g. `make bench BENCH_ARGS="--events 400"`, `--baseline 4f4757d` (that commit beside the
# tree, same run), or `--smoke` (python -m devtools.bench --help).
bench: $(VENV)/.installed node_modules/.installed
	$(PY) -m devtools.bench $(BENCH_ARGS)

# The docs site (docs/, mkdocs.yml) at http://127.0.0.1:8000, rebuilt on every change; `make test`
# builds it with --strict. DOCS_ARGS: e.g. `make docs DOCS_ARGS="--dev-addr 0.0.0.0:8000"`.
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve $(DOCS_ARGS)

lint: $(VENV)/.installed
	$(PY) -m ruff check .

typecheck: $(VENV)/.installed
	$(PY) -m mypy

# Needs the package index (uv resolves); `make test` checks the result offline (devtools/locks.py).
lock: $(VENV)/.installed
	$(PY) -m devtools.locks compile $(LOCK_ARGS)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules .local .mypy_cache .ruff_cache .pytest_cache
