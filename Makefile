# Two set-up commands (see README): `make run` and `make test`. Everything else is a helper.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install audit data bench clean

# Reinstall only when the dependency declarations change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Main job on the embedded default: data -> validation -> training -> registry -> API.
run: $(STAMP)
	$(BIN)/opm-ml run

# The dashboard's browser tests drive Debian's Chromium and the team-MLflow test a PostgreSQL
# server; the script installs them from the OS packages only when missing. `lint-imports`
# checks the import layers (pyproject.toml): a backwards import fails before any test runs.
test: $(STAMP)
	sh scripts/install_os_packages.sh
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

## Known vulnerabilities in the pinned dependencies (reported; see the script's header).
audit: $(STAMP)
	bash scripts/audit_dependencies.sh

data: $(STAMP)
	$(BIN)/opm-ml data generate

bench: $(STAMP)
	$(BIN)/python benchmarks/generate.py

clean:
	rm -rf var mlflow.db mlartifacts .pytest_cache
