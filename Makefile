# Two commands set everything up: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test test-sqlite test-postgresql lint audit browser checkers install install-dev serve bench bench-spike bench-spam clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[serve]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,serve]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(FLASK) db upgrade
	$(FLASK) forum demo
	@echo
	@echo "  Forum:      http://$(HOST):$(PORT)/"
	@echo "  Moderator:  moderator / demo-password-2026   (admin: admin / demo-password-2026)"
	@echo
	FORUM_BASE_URL="$${FORUM_BASE_URL:-http://$(HOST):$(PORT)}" $(FLASK) run --host $(HOST) --port $(PORT)

# gunicorn.conf.py refuses to start without FORUM_BASE_URL (links in mail and feeds).
serve: install
	$(FLASK) db upgrade
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# Debian's chromium (and Java, for the Nu HTML checker) for the real-browser tests;
# installed when missing and we are root.
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is missing: sudo apt-get install -y chromium (browser tests are skipped, or fail with CI=1)"; \
	  fi; \
	fi
	@if ! command -v java >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null; \
	  else \
	    echo "java is missing: sudo apt-get install -y default-jre-headless (the Nu checker test is skipped, or fails with CI=1)"; \
	  fi; \
	fi

# The page checkers of the browser tests, from the npm registry (tests/browser/package.json,
# pinned by its package-lock.json): axe-core, injected into pages, and vnu-jar, the Nu HTML
# checker, run on Debian's Java (installed by `make browser` when missing and root).
# --ignore-scripts: vnu-jar's install script would fetch a Java of its own; we have one.
# Without npm the tests that need them are skipped, and under CI (CI=1) both fail.
CHECKERS := tests/browser/node_modules/.installed
$(CHECKERS): tests/browser/package.json tests/browser/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  cd tests/browser && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	elif [ -n "$$CI" ]; then \
	  echo "npm is missing: the page checkers (axe-core, vnu-jar) cannot be installed" >&2; exit 1; \
	else \
	  echo "npm is missing: the axe-core and Nu checker tests are skipped (apt-get install -y npm)"; \
	fi

checkers: $(CHECKERS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Security audit. bandit: every exception is a `# nosec BXXX` comment on its line, with
# the reason on the line above. B105 (a string assigned to or compared with a name like
# *password*/*secret*) is skipped: ruff runs much the same check as S105 in `make lint`, where
# each exception is a `# noqa: S105` with its reason, and bandit cannot be told about
# those (inside a multi-line dict such as config.DEFAULTS a nosec covers every line).
# pip-audit looks each installed package up in PyPI's JSON API; --strict turns a
# package it could not look up into a failure, and the probe before it says plainly when
# that API cannot be reached (no network): the dependencies are then NOT audited and the
# target fails, unless AUDIT_ALLOW_OFFLINE=1 downgrades that one case to a loud warning.
# The per-version endpoint pip-audit uses (a mirror may serve only the per-project one).
AUDIT_PROBE := https://pypi.org/pypi/flask/$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("flask"))')/json
AUDIT_ALLOW_OFFLINE ?= 0

audit: install-dev
	$(BIN)/bandit -q -c pyproject.toml -r forum --skip B105
	@probe="$(AUDIT_PROBE)"; \
	if $(BIN)/python -c "import sys, urllib.request as r; r.urlopen(sys.argv[1], timeout=15)" "$$probe" 2>/dev/null; then \
	  $(BIN)/pip-audit --strict --skip-editable --progress-spinner off; \
	elif [ "$(AUDIT_ALLOW_OFFLINE)" = 1 ]; then \
	  echo "WARNING: $$probe does not answer: dependencies were NOT audited (AUDIT_ALLOW_OFFLINE=1)." >&2; \
	else \
	  echo "audit: $$probe does not answer, so pip-audit cannot check the dependencies." >&2; \
	  echo "audit: run 'make audit' where PyPI is reachable, or AUDIT_ALLOW_OFFLINE=1 to skip that part." >&2; \
	  exit 2; \
	fi

# Each run keeps its browser-test failure screenshots in test-results/<db>/ (pytest-playwright
# empties its --output folder when a run starts) and a JUnit report that .ci/run checks.
# PYTEST_ARGS passes more options: make test-sqlite PYTEST_ARGS="-m 'not slow'".
PYTEST_ARGS ?=
test-sqlite: install-dev browser checkers
	$(BIN)/pytest --db sqlite --output test-results/sqlite \
	  --junitxml test-results/junit-sqlite.xml $(PYTEST_ARGS)

test-postgresql: install-dev browser checkers
	$(BIN)/pytest --db postgresql --output test-results/postgresql \
	  --junitxml test-results/junit-postgresql.xml $(PYTEST_ARGS)

test: lint test-sqlite test-postgresql

# The benchmark drives gunicorn with wrk (Debian's package), installed when missing and root.
bench: install-dev
	$(BIN)/pip install --quiet -e '.[dev,serve,bench]'
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python bench/run.py
	$(BIN)/python bench/spike.py
	cd bench && ../$(BIN)/python spam.py

# The traffic spike alone (about 2.5 minutes): 64 readers, 4 posters and a moderator on one
# post, SQLite then PostgreSQL; its section of bench/RESULTS.md is updated in place.
bench-spike: install-dev
	$(BIN)/pip install --quiet -e '.[dev,serve,bench]'
	$(BIN)/python bench/spike.py

# The spam filter alone (a few minutes): scoring and learning per comment, SQLite and
# PostgreSQL; its section of bench/RESULTS.md is updated in place.
bench-spam: install-dev
	cd bench && ../$(BIN)/python spam.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-results tests/browser/node_modules
