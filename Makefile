# The project's entry points. `make run` and `make test` are the two a newcomer needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DDB := .cache/dynamodb-local/package/emulator/DynamoDBLocal.jar
CHECKOV := .cache/tools/checkov/.version

.PHONY: install run demo test lint unit bench bench-scale base-images clean

ASSETS := service/static/vendor/.version

install: $(STAMP) $(DDB) $(ASSETS) $(CHECKOV)
	@bash scripts/install-tools.sh

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "install: Python packages into $(VENV)"
	@$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

$(ASSETS): scripts/vendor-assets.sh
	@bash scripts/vendor-assets.sh
	@touch $(ASSETS)

$(CHECKOV): scripts/install-checkov.sh
	@bash scripts/install-checkov.sh

$(DDB): scripts/install-dynamodb-local.sh
	@bash scripts/install-dynamodb-local.sh
	@touch $(DDB)

run: install
	$(BIN)/tracker up

demo: install
	$(BIN)/tracker up --demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install lint
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

bench: install
	@bash scripts/install-tools.sh bench
	$(BIN)/python -m bench

# Issue 17's scale goals, each beside its figure (restart and memory at 1,000 markets; ~20 min).
bench-scale: install
	@bash scripts/install-tools.sh bench
	$(BIN)/python -m bench.scale

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache

# The base images docker-compose.yml builds on: pulled, or stand-ins where no registry answers.
base-images: install
	bash scripts/base-images.sh
