# evbus — run `make help` for the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install up demo test test-fast chaos lint bench lock clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

install: $(STAMP) ## create .venv and install the locked dependencies (quick when nothing changed)

up: install ## run the whole stack (embedded nats-server unless EVBUS_NATS_URL is set)
	$(BIN)/evbus up

demo: install ## the whole stack plus 10 simulated stations charging (evbus demo; same settings as up)
	$(BIN)/evbus demo

test: install ## run the whole test suite against real nats-server processes (the fault tests: make chaos)
	$(BIN)/python -m pytest -m "not chaos"

test-fast: install ## run only the pure-logic tests (no servers)
	$(BIN)/python -m pytest -m "not nats"

chaos: install ## fault tests: nats-server, processor, API and gateway processes killed under load (~2 min)
	$(BIN)/python -m pytest -m chaos tests/chaos -p no:cacheprovider -q -s

lint: install ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install ## every benchmark, one after the other (~25 min); tables in bench/out/latest.md
	$(BIN)/python -m bench

lock: ## re-resolve pyproject.toml into requirements.lock (needs uv)
	uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock

clean: ## remove the virtualenv and local data
	rm -rf $(VENV) .evbus .pytest_cache .mypy_cache .ruff_cache
