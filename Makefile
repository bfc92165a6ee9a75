# Two commands (README "A five-minute tour"): `make demo` and `make test`. Both bootstrap .venv from scratch.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_ENV := SOPS_AGE_KEY_FILE=keys/demo.agekey LLMCC_SIGNING_KEY_FILE=keys/demo-signing.pem

.PHONY: demo test lint typecheck unit services bench readme-tour clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "llmcc needs Python 3.11+")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# setuptools' build backend prints notices about editable installs that are not ours to act on.
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job on the example repository, with the demo keys (keys/README.md: demo only).
demo: $(STAMP)
	$(DEMO_ENV) $(BIN)/llmcc validate
	$(DEMO_ENV) $(BIN)/llmcc compile
	$(DEMO_ENV) $(BIN)/llmcc publish --allow-dirty --allow-worktree-store --events .llmcc/events.jsonl
	$(DEMO_ENV) $(BIN)/llmcc verify --git
	$(DEMO_ENV) $(BIN)/llmcc pull prod --state-dir .llmcc/reader-state --decrypt --out .llmcc/prod.decrypted.json
	@echo "decrypted prod bundle (demo secrets) written to .llmcc/prod.decrypted.json"

lint: $(STAMP)
	$(BIN)/ruff check compiler tests bench
	$(BIN)/ruff format --check compiler tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Every service a test needs is installed here, and required: a missing one fails the suite
# instead of skipping its tests (a skip would lower coverage or hide a failure).
services:
	bash tools/install-services.sh

unit: $(STAMP) services
	rm -f .coverage .coverage.*
	LLMCC_REQUIRE_SERVICES=1 $(BIN)/coverage run -m pytest -q
	$(BIN)/coverage combine -q
	$(BIN)/coverage report

test: lint typecheck unit

bench: $(STAMP)
	bash tools/install-services.sh wrk
	PATH="$(CURDIR)/.cache/services/usr/bin:$$PATH" $(BIN)/python bench/run.py $(BENCH_ARGS)

# The README's command output, regenerated from real runs on a fresh clone (tools/readme-tour.py;
# tests/test_readme_tour.py fails when the README differs).
readme-tour: $(STAMP) services
	$(BIN)/python tools/readme-tour.py

clean:
	rm -rf $(VENV) .cache dist .llmcc .coverage .coverage.* .mypy_cache .ruff_cache .pytest_cache
