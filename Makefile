# Two commands work on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
GRAPHIQL := static/graphiql/VERSIONS

# `make run` is the embedded development setup: SQLite, in-process workers, a first ADMIN.
export CRM_ENV ?= development
export CRM_ADMIN_USERNAME ?= admin
export CRM_ADMIN_PASSWORD ?= change-me-admin-1
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint migrate seed schema clean bench

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(GRAPHIQL): scripts/fetch_graphiql.sh
	bash scripts/fetch_graphiql.sh

install: $(INSTALLED) $(GRAPHIQL)

run: install
	$(PY) app.py migrate
	@echo "GraphiQL: http://$(HOST):$(PORT)/graphql  (sign in with login(input: {username: \"$$CRM_ADMIN_USERNAME\", ...}))"
	$(PY) app.py serve --host $(HOST) --port $(PORT)

# make test [TEST_WORKERS=n]: the whole suite in n processes (pytest-xdist; a test file stays in one process), each
# with a database and a Redis database of its own (tests/database.py). `.venv/bin/pytest` alone runs in one.
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=10

# ruff: lint (with import sorting) and format, both configured in pyproject.toml.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

migrate: install
	$(PY) app.py migrate

# make seed [CUSTOMERS=1000] [DEMO_PASSWORD=...]: demo staff (one per role) and, with CUSTOMERS, demo customers.
seed: migrate
	$(PY) app.py seed$(if $(CUSTOMERS), --customers $(CUSTOMERS))$(if $(DEMO_PASSWORD), --password '$(DEMO_PASSWORD)')

schema: install
	$(PY) app.py export-schema

# make bench [BENCH_ARGS="--scenarios A,B --duration 30"]: the API read-path benchmark (docs/BENCHMARKS.md) against
# a scratch PostgreSQL database, created when missing; needs PostgreSQL and Redis on 127.0.0.1, and wrk.
CRM_BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/api_bench
bench: install
	$(PY) bench/api.py --database-url $(CRM_BENCH_DATABASE_URL) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) static var
