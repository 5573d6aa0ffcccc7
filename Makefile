# Suipai: `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest migrate catalogs bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

catalogs: $(STAMP)
	$(BIN)/pybabel compile --use-fuzzy -d bot/locales -D messages --statistics 2>&1 | tail -n 2

migrate: $(STAMP) catalogs
	$(BIN)/python -m bot migrate

# No `migrate` first: `bot run` migrates DATABASE_URL itself before it connects to Telegram,
# and without BOT_TOKEN starts the sandbox on its own data, leaving a district's database alone.
run: $(STAMP) catalogs
	$(BIN)/python -m bot run

lint: $(STAMP)
	$(BIN)/ruff check bot storage tgemu tests bench
	$(BIN)/ruff format --check bot storage tgemu tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy bot storage tgemu

pytest: $(STAMP) catalogs
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(STAMP) catalogs
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache .grimp_cache
