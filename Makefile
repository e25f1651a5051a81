# Tollgate — the two commands are `make demo` and `make test`; everything else is for developers and CI.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
EMULATOR_PORT ?= 12111
# The MCP server agents talk to (`uvicorn config.mcp:app`, docs/operations.md "The MCP server").
MCP_PORT ?= 8001
# Where `make demo` keeps the emulator's state and the demo's keys (the database follows DATABASE_URL, by default
# var/tollgate.sqlite3): .ci/js-check runs a throwaway demo in a directory of its own, leaving yours alone.
DEMO_VAR ?= var

.PHONY: install demo test js-check soak soak-writes lint format typecheck bench bench-burst run clean

$(STAMP): requirements/base.txt requirements/prod.txt requirements/dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	touch $(STAMP)

install: $(STAMP)

## make demo [HOST=…] [PORT=…] [MCP_PORT=…]: install, migrate, start the Stripe emulator, seed the demo project and
## catalog, print keys and curls, serve on $(HOST):$(PORT) (127.0.0.1:8000) and the MCP server for agents on
## $(HOST):$(MCP_PORT)/mcp (8001). A re-run keeps the keys and the admin password (var/demo-credentials.json, mode
## 0600); the redirect hosts and printed URLs follow HOST, PORT and MCP_PORT. Ctrl-C stops every server.
## What `manage.py …` in this checkout needs to reach this demo (the emulator's address, the credentials file) goes
## to $(DEMO_VAR)/demo.env, which config.settings.local reads (the environment wins).
demo: install
	mkdir -p var $(DEMO_VAR)
	printf '%s\n' '# Written by `make demo`: what manage.py needs to reach the demo (config/settings/local.py).' \
		'STRIPE_API_BASE=http://127.0.0.1:$(EMULATOR_PORT)' \
		'DEMO_CREDENTIALS=$(abspath $(DEMO_VAR))/demo-credentials.json' > $(DEMO_VAR)/demo.env
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python -m stripe_emulator --host 127.0.0.1 --port $(EMULATOR_PORT) --data $(DEMO_VAR)/stripe-emulator.json & \
	emulator=$$!; mcp=; trap 'kill $$emulator $$mcp 2>/dev/null' EXIT INT TERM; \
	export STRIPE_API_BASE=http://127.0.0.1:$(EMULATOR_PORT); \
	export DEMO_CREDENTIALS=$(DEMO_VAR)/demo-credentials.json; \
	export ALLOWED_HOSTS=$${ALLOWED_HOSTS:-127.0.0.1,localhost,[::1],$(HOST)}; \
	$(BIN)/python manage.py demo_setup --base-url http://$(HOST):$(PORT) --wait-for-stripe \
		--mcp-url http://$(HOST):$(MCP_PORT)/mcp --credentials $$DEMO_CREDENTIALS && \
	{ DJANGO_SETTINGS_MODULE=config.settings.local $(BIN)/uvicorn config.mcp:app --host $(HOST) --port $(MCP_PORT) \
		--no-access-log & mcp=$$!; } && \
	$(BIN)/python manage.py runserver --noreload $(HOST):$(PORT)

## make test: install and run the whole suite (SQLite by default; PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set;
## the real-worker tests when TOLLGATE_TEST_BROKER_URL names their broker's Redis database, which they empty).
test: install
	$(BIN)/pytest

## make js-check: the JavaScript client (clients/js) built and tested against a throwaway `make demo` on ports
## 18710/18711/18712 (JS_CHECK_PORT, JS_CHECK_EMULATOR_PORT, JS_CHECK_MCP_PORT); needs Node 20 or later and npm.
js-check: install
	.ci/js-check

## make soak: the convergence property test (tests/e2e/test_convergence.py) over 500 seeds instead of CI's 20,
## against DATABASE_URL (PostgreSQL), REDIS_URL and TOLLGATE_TEST_BROKER_URL; each seed's report goes to var/soak/.
## Then the usage-corrections property tests (tests/entitlements/test_usage_corrections_property.py and
## test_usage_corrections_renewals.py), 500 seeds too.
soak: install
	@test -n "$$DATABASE_URL" -a -n "$$REDIS_URL" -a -n "$$TOLLGATE_TEST_BROKER_URL" || { echo "make soak needs DATABASE_URL (PostgreSQL), REDIS_URL and TOLLGATE_TEST_BROKER_URL (the workers' broker: a Redis database of its own)"; exit 2; }
	TOLLGATE_CONVERGENCE_SEEDS=$${TOLLGATE_CONVERGENCE_SEEDS:-500} TOLLGATE_CONVERGENCE_REPORT_DIR=var/soak \
		$(BIN)/pytest tests/e2e/test_convergence.py -p no:cacheprovider -q
	TOLLGATE_CORRECTION_SEEDS=$${TOLLGATE_CORRECTION_SEEDS:-500} \
		$(BIN)/pytest tests/entitlements/test_usage_corrections_property.py \
		tests/entitlements/test_usage_corrections_renewals.py -p no:cacheprovider -q

soak-writes: install
	@test -n "$$DATABASE_URL" -a -n "$$REDIS_URL" -a -n "$$TOLLGATE_TEST_BROKER_URL" || { echo "make soak-writes needs DATABASE_URL (PostgreSQL), REDIS_URL and TOLLGATE_TEST_BROKER_URL (the workers' broker: a Redis database of its own)"; exit 2; }
	TOLLGATE_EXACTLY_ONCE_SEEDS=$${TOLLGATE_EXACTLY_ONCE_SEEDS:-500} TOLLGATE_EXACTLY_ONCE_REPORT_DIR=var/soak-writes \
		$(BIN)/pytest tests/e2e/test_exactly_once.py -p no:cacheprovider -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install
	$(BIN)/mypy .

bench: install
	$(BIN)/python -m bench

## make bench-burst: only the Stripe burst (needs DATABASE_URL=postgres://… and Redis; ~11 minutes with N=100).
bench-burst: install
	$(BIN)/python -m bench.burst

## make bench-burst-pools: the Stripe burst in 4 rounds (pool order alternating), to tell 4 worker processes from 2
## past run-to-run noise (~45 minutes).
.PHONY: bench-burst-pools
bench-burst-pools: install
	BENCH_BURST_ROUNDS=$${BENCH_BURST_ROUNDS:-4} $(BIN)/python -m bench.burst

## make bench-djstripe: dj-stripe 2.11 against Tollgate on the same captured Stripe burst, interleaved for
## BENCH_DJSTRIPE_ROUNDS rounds (2), against issue #50's gate (≥ 3× dj-stripe's events/s, 0 deadlocks); dj-stripe
## runs from a venv of its own (var/bench-djstripe/venv, made on first use). Needs DATABASE_URL=postgres://… and Redis.
.PHONY: bench-djstripe
bench-djstripe: install
	$(BIN)/python -m bench.djstripe

## make prod-check: a fresh venv from requirements/prod.txt alone (what the Docker image installs) running
## migrations, gunicorn, a Celery worker and beat under production settings, and one Stripe event processed end to
## end, on the local PostgreSQL and Redis (database tollgate_prodcheck, Redis databases 12 and 13).
.PHONY: prod-check
prod-check:
	PYTHON=$(PYTHON) .ci/prod-install-check

## make compose-check: docker-compose.yml end to end under Docker, no image registry needed (skipped without Docker,
## except in CI, where it installs and starts Docker and never skips); the same start-up sequence runs without Docker
## in tests/deploy/test_compose_sequence.py.
.PHONY: compose-check
compose-check:
	.ci/compose-check

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
