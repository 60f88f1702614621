# evbus — run `make help` for the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install chromium up demo test test-fast chaos lint bench lock clean

WEB      := api/web
VENDOR   := $(WEB)/static/vendor
NPM_DIST := $(WEB)/node_modules
CHROMIUM := /usr/bin/chromium

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

# The dashboard's front-end libraries: npm ci from the committed lock file, then the few dist files
# the page loads are copied to the git-ignored vendor folder the API serves (no bundler, no CDN).
$(VENDOR)/.installed: $(WEB)/package.json $(WEB)/package-lock.json
	@command -v npm >/dev/null || { echo "make: npm is needed for the dashboard's libraries (Debian: apt-get install npm)" >&2; exit 1; }
	cd $(WEB) && npm ci --ignore-scripts --no-audit --no-fund
	@mkdir -p $(VENDOR)/licenses
	cp $(NPM_DIST)/htm/preact/standalone.module.js $(VENDOR)/htm-preact.js
	cp $(NPM_DIST)/uplot/dist/uPlot.esm.js $(VENDOR)/uPlot.js
	cp $(NPM_DIST)/uplot/dist/uPlot.min.css $(VENDOR)/uPlot.css
	cp $(NPM_DIST)/htm/LICENSE $(VENDOR)/licenses/htm.txt
	cp $(NPM_DIST)/uplot/LICENSE $(VENDOR)/licenses/uplot.txt
	@touch $@

# The browser tests drive Debian's Chromium; nothing is downloaded by Playwright.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	elif command -v sudo >/dev/null; then \
		sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q && sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else false; fi \
	|| { echo "make: the browser tests need Chromium at $(CHROMIUM); install it (apt-get install chromium) as root and run make test again" >&2; exit 1; }
	@test -x $(CHROMIUM) || { echo "make: chromium was installed but $(CHROMIUM) is missing" >&2; exit 1; }

install: $(STAMP) $(VENDOR)/.installed ## create .venv and install the locked dependencies and the dashboard's libraries (quick when nothing changed)

chromium: $(CHROMIUM) ## install Debian's Chromium for the browser tests (nothing when it is there)

up: install ## run the whole stack (embedded nats-server unless EVBUS_NATS_URL is set)
	$(BIN)/evbus up

demo: install ## the whole stack plus 10 simulated stations charging (evbus demo; same settings as up)
	$(BIN)/evbus demo

test: install $(CHROMIUM) ## run the whole test suite against real nats-server processes and Chromium (the fault tests: make chaos)
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
	rm -rf $(VENV) .evbus .pytest_cache .mypy_cache .ruff_cache $(NPM_DIST) $(VENDOR)
