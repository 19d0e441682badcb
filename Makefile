# Every target creates the virtual environment from the lock when it is missing or stale.
SHELL := /bin/bash
# Secrets and overrides from .env (git-ignored; see config/secrets.env.example) reach every target.
ifneq (,$(wildcard .env))
include .env
export
endif
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PY := $(BIN)/python
CLI := $(BIN)/crypto-analytics
export PATH := $(BIN):$(PATH)
# The warehouse for commands that need one: CRYPTO_DATABASE_URL, else the embedded server.
WAREHOUSE = export CRYPTO_DATABASE_URL="$${CRYPTO_DATABASE_URL:-$$($(CLI) db url)}"

.PHONY: help venv lock demo test test-unit lint up down status dbt-build dbt-parse docs dashboard mlflow stream ml-eval-real bench clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(firstword $(MAKEFILE_LIST)) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## Create/refresh the virtual environment from requirements.txt

# torch is locked as its CPU build (2.13.0+cpu). uv does not read pip's configuration, so it gets
# pip's find-links directory when one is configured (machines with the wheel on disk), otherwise
# PyTorch's CPU index; without either it would resolve the multi-GB CUDA build.
TORCH_LINKS := $(or $(PIP_FIND_LINKS),$(shell pip config get global.find-links 2>/dev/null))
UV_TORCH := $(if $(TORCH_LINKS),--find-links $(TORCH_LINKS),--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip sync -q --python $(PY) $(UV_TORCH) requirements.txt
	$(BIN)/uv pip install -q --python $(PY) --no-deps -e .
	touch $@

lock: ## Re-resolve requirements.in into the pinned lock requirements.txt
	$(PY) -m pip install -q uv
	$(BIN)/uv pip compile -q requirements.in -o requirements.txt --python-version 3.11 $(UV_TORCH)

demo: venv ## Offline end to end: warehouse, synthetic ingestion, summary
	$(CLI) demo

# Two pytest-xdist workers: the stack tests (tests/stack, one worker) spend most of their time
# waiting on a local Airflow while the other worker runs the rest; TEST_WORKERS=0 runs serially.
TEST_WORKERS ?= 2
test: venv ## The full test suite (integration tests use CRYPTO_DATABASE_URL or the embedded server)
	$(BIN)/ruff check src ml airflow scripts tests streamlit
	$(WAREHOUSE); $(PY) scripts/stack.py dbt-parse && $(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadgroup

test-unit: venv ## Only the tests that need no database
	$(BIN)/pytest -q -m "not integration"

lint: venv ## ruff (lint + format check) and mypy
	$(BIN)/ruff check src ml airflow scripts tests streamlit
	$(BIN)/ruff format --check src ml airflow scripts tests streamlit
	$(BIN)/mypy

bench: venv ## Loader throughput vs raw COPY vs to_sql; dbt full vs incremental build (today and 10x history); orchestrated cycle vs dbt CLI; portfolio optimiser speed; dashboard page times in Chromium; forecasting fit/predict times; synthetic market windows; stream close-to-bronze latency and consumer CPU; alert evaluation time
	$(WAREHOUSE); $(PY) scripts/bench_load.py && $(PY) scripts/bench_dbt.py --compare-scale && $(PY) scripts/bench_orchestration.py && $(PY) scripts/bench_portfolio.py && $(PY) scripts/bench_dashboard.py && $(PY) scripts/bench_ml.py && $(PY) scripts/bench_synthetic.py && $(PY) scripts/bench_stream.py && $(PY) scripts/bench_alerts.py

# The local stack: every line of the Procfile, run by honcho in the background (scripts/stack.py).
# EXECUTOR=celery adds the Procfile's celery-* workers (Redis as broker); ONLY='airflow-*' starts
# only the processes whose names match.
EXECUTOR ?= local
ONLY ?=
up: venv ## Start the Procfile's services in the background, wait until healthy (EXECUTOR=celery, ONLY=...)
	$(WAREHOUSE); $(PY) scripts/stack.py up --executor "$(EXECUTOR)" --only "$(ONLY)"

down: venv ## Stop everything `make up` started (the warehouse keeps running)
	$(PY) scripts/stack.py down

status: venv ## Each process of the stack, and its health
	$(PY) scripts/stack.py status

dbt-parse: venv ## Write dbt/target_airflow/<layer>.ls.json (what the silver and gold DAGs are rendered from)
	$(PY) scripts/stack.py dbt-parse

dbt-build: venv ## dbt build of silver and gold, with tests, on the warehouse
	$(WAREHOUSE); $(CLI) dbt build

# dbt/target_docs: never the folder the DAGs are rendered from (dbt/target_airflow) or dbt/target.
docs: venv ## Generate the dbt docs site and serve it on :8081 (in the foreground)
	$(WAREHOUSE); $(CLI) dbt docs generate --target-path target_docs && $(CLI) dbt docs serve --target-path target_docs --port 8081 --host 0.0.0.0 --no-browser

dashboard: venv ## The Streamlit dashboard in the foreground on :8501 (read-only on gold; `make up` starts it too)
	$(WAREHOUSE); $(CLI) db init && $(CLI) dashboard --port 8501

mlflow: venv ## The MLflow UI in the foreground on :5000 (store: database `mlflow` on the warehouse server; `make up` starts it too)
	$(WAREHOUSE); $(CLI) ml server

stream: venv ## The real-time 1m candle stream in the foreground (Binance, or the synthetic feed offline; `make up` starts it too)
	$(WAREHOUSE); $(CLI) db init && $(CLI) stream

ml-eval-real: venv ## The README's forecasting tables: walk-forward backtests of four windows of ../shared/data's real daily history (scratch database)
	$(WAREHOUSE); $(PY) scripts/evaluate_real_history.py

clean: ## Remove the lake, the embedded warehouse data and build outputs (asks nothing: careful)
	rm -rf data/lake dbt/target dbt/logs .pytest_cache
