# Ichimai: set-up, tests, lint, benches and the demo.
#
#   make test     system packages + venv, then the whole suite (it starts its own pcscd),
#                 then the end-to-end tests again against the scaled deployment (gunicorn
#                 with 4 gevent workers, PostgreSQL and Redis; skipped when those are not
#                 reachable, except under CI=true). JUNIT=DIR writes JUnit reports there.
#   make lint     ruff check + ruff format --check
#   make bench    every bench/bench_*.py module, one JSON line per measurement
#   make bench-scale  figures at 1M and 10M MyKey IDs (docs/scale.md): builds the databases
#                 bench_scale_1m / bench_scale_10m first when missing (about 1 and 15 min,
#                 ~2 and ~17 GB); SCALE_IDS="1000000" for one size only
#   make bridge-wheel  build the ichimai-bridge wheel the platform serves at /bridge/
#                 (into ICHIMAI_BRIDGE_WHEEL_DIR; otherwise built on the first download)
#   make demo     the demo platform with a virtual card
#   make clean    remove the venv and caches

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Reinstall only when pyproject.toml changes.
STAMP := $(VENV)/.installed-stamp

.PHONY: venv system-deps node-deps test lint bench bench-scale bridge-wheel demo clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev,redis]'
	touch $@

system-deps:
	./scripts/install-system-deps.sh

# axe-core for the end-to-end accessibility checks (package.json / package-lock.json).
# (npm gives unpacked files a 1985 mtime, hence a stamp of our own.)
node-deps: node_modules/.installed-stamp

node_modules/.installed-stamp: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

test: system-deps venv node-deps
	$(BIN)/pytest $(if $(JUNIT),--junitxml=$(JUNIT)/embedded.xml)
	$(BIN)/pytest tests/e2e --deployment=scaled $(if $(JUNIT),--junitxml=$(JUNIT)/scaled.xml)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: system-deps venv
	$(BIN)/python -m bench.run

SCALE_IDS ?= 1000000 10000000

bench-scale: venv
	$(BIN)/python -m bench.scale_run --ids $(SCALE_IDS)

bridge-wheel: venv
	$(BIN)/python -m webapp.terminals.bridge_wheel

demo: system-deps venv
	@if [ -f webapp/demo.py ]; then \
		$(BIN)/python -m webapp.demo; \
	else \
		$(BIN)/flask --app app run; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .coverage *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
