# CityData: `make demo` runs the platform with the Phuket simulator; `make test` runs the whole suite.
# Both bootstrap uv (into .bootstrap/, never into the system Python) and the locked environment (.venv/).

PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .bootstrap/bin/uv)
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
RUN := $(UV) run --locked --no-sync
PYTEST_ARGS ?=

.PHONY: help demo serve cluster test check lint typecheck unit bench docs env clean

help:
	@echo "make demo   - run the platform on SQLite + embedded MQTT, fed by the Phuket simulator"
	@echo "make test   - lint, type-check and run the whole test suite"
	@echo "make check  - lint and type-check only"
	@echo "make bench  - run the benchmarks and write BENCHMARKS.md"
	@echo "make docs   - regenerate docs/configuration.md and docs/roles.md"
	@echo "make cluster - three nodes on loopback ports against the local NATS and PostgreSQL (docs/scale.md)"

env: .venv/.synced

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked
	@touch $@

$(UV):
	@$(PYTHON) tools/bootstrap_uv.py

demo: env
	$(RUN) citydata demo

serve: env
	$(RUN) citydata serve

# three `citydata serve` nodes on 127.0.0.1:8101-8103, NATS JetStream (CITYDATA_BUS_URL, default
# nats://127.0.0.1:4222, stream CITYDATA_CLUSTER) and PostgreSQL (CITYDATA_DB_URL, schema citydata_cluster)
cluster: env
	$(RUN) python -m citydata.cluster.local --nodes 3

lint: env
	$(RUN) ruff check src tests tools $(wildcard bench)

typecheck: env
	$(RUN) mypy

check: lint typecheck
	$(RUN) python tools/gen_docs.py --check
	$(RUN) python tools/check_bundle.py

unit: env chromium
	$(RUN) pytest $(PYTEST_ARGS)

test: check unit

bench: env
	$(RUN) python bench/run_all.py

docs: env
	$(RUN) python tools/gen_docs.py

clean:
	rm -rf .venv .bootstrap .pytest_cache .mypy_cache .ruff_cache

# the IOC dashboard and tourist app bundle (needs Node 20+ and npm); the result in src/citydata/web/static is committed
web:
	cd src/citydata/web && npm ci --no-audit --no-fund && npx vite build
	$(RUN) python tools/check_bundle.py --write

# Chromium for the browser tests: installed when root, else the one command is printed
chromium:
	@test -x /usr/bin/chromium || { if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium; else echo "browser tests need Chromium: sudo apt-get install -y chromium"; fi; }
