# Developer commands. The two that matter: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
HOST ?= 127.0.0.1
PORT ?= 8000
# extra arguments for `python -m bench.speed`, e.g. make bench BENCH_ARGS="--help"
BENCH_ARGS ?=

.PHONY: help venv demo demo-wagtail test test-sqlite lint bench

help:
	@echo "make demo         create .venv, install, migrate, seed, embed, train, score trending, serve on http://$(HOST):$(PORT)/"
	@echo "make demo-wagtail the same demo as a Wagtail site (pages, StreamField blocks, CMS at /cms/)"
	@echo "make test         the whole suite (tests/, then tests_wagtail/) on a throwaway PostgreSQL + Redis"
	@echo "make test-sqlite  the whole suite on SQLite, no services"
	@echo "make lint         ruff check, ruff format --check and lint-imports (the package layering)"
	@echo "make bench        the speed benchmark (python -m bench.speed)"

# Debian ships venv separately (python3.11-venv); install it when missing and running as root.
$(PY):
	$(PYTHON) -m venv $(VENV) || { [ "$$(id -u)" = 0 ] && rm -rf $(VENV) \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y python3.11-venv && $(PYTHON) -m venv $(VENV); }

# Reinstall only when requirements.txt changed since the last install.
$(STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(STAMP)

# Runs a management command only when it exists (embed/train come with the worker code).
has_command = $(PY) manage.py help $(1) >/dev/null 2>&1

demo: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py recommender_schedule
	$(PY) manage.py recommender_demo_seed --if-empty
	$(PY) manage.py recommender_sync
	if $(call has_command,recommender_embed); then $(PY) manage.py recommender_embed; fi
	if $(call has_command,recommender_train) && ! $(PY) manage.py shell -c \
		"from recommender.models import ModelVersion as M; raise SystemExit(0 if M.objects.active() else 1)"; \
		then $(PY) manage.py recommender_train --max-minutes 1.5; fi
	$(PY) manage.py recommender_trending
	@echo
	@echo "  The demo runs at http://$(HOST):$(PORT)/  (reader: user001 / demo-pass-123, staff: admin / admin-pass-123)"
	@echo
	$(PY) manage.py runserver $(HOST):$(PORT)

# The Wagtail plugin's tests need Wagtail's apps installed: a second run with their settings.
# Both runs always happen; the exit status fails when either failed.
SUITES := status=0; $(VENV)/bin/pytest || status=$$?; \
	$(VENV)/bin/pytest tests_wagtail --ds=project.settings_wagtail || status=$$?; exit $$status

test: venv
	.ci/with-services bash -c '$(SUITES)'

test-sqlite: venv
	env -u DATABASE_URL -u TEST_REDIS_URL bash -c '$(SUITES)'

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

WAGTAIL := DJANGO_SETTINGS_MODULE=project.settings_wagtail
demo-wagtail: venv
	$(WAGTAIL) $(PY) manage.py migrate --noinput
	$(WAGTAIL) $(PY) manage.py recommender_schedule
	$(WAGTAIL) $(PY) manage.py wagtail_demo_seed --if-empty
	$(WAGTAIL) $(PY) manage.py recommender_embed
	if ! $(WAGTAIL) $(PY) manage.py shell -c \
		"from recommender.models import ModelVersion as M; raise SystemExit(0 if M.objects.active() else 1)"; \
		then $(WAGTAIL) $(PY) manage.py recommender_train --max-minutes 1.5; fi
	$(WAGTAIL) $(PY) manage.py recommender_trending
	@echo
	@echo "  The Wagtail demo runs at http://$(HOST):$(PORT)/  (reader: user001 / demo-pass-123, CMS: http://$(HOST):$(PORT)/cms/ as admin / admin-pass-123)"
	@echo
	$(WAGTAIL) $(PY) manage.py runserver $(HOST):$(PORT)

bench: venv
	$(PY) -m bench.speed $(BENCH_ARGS)
