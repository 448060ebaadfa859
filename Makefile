# Everything runs from a project virtualenv that these targets create.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SEEDS ?= seeds
INDEX ?= index
# The last commit before second-stage ranking: the baseline of the latency ratio.
BASELINE ?= df8602b76fe2

.PHONY: install index serve test lint format quality clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

index: install
	$(BIN)/qa-service index --seeds $(SEEDS) --index $(INDEX)

serve: index
	QA_SEEDS=$(SEEDS) QA_INDEX=$(INDEX) $(BIN)/qa-service serve

lint: $(VENV)/.installed-test
	$(BIN)/ruff check qa_service tests gunicorn.conf.py
	$(BIN)/ruff format --check qa_service tests gunicorn.conf.py

format: $(VENV)/.installed-test
	$(BIN)/ruff format qa_service tests gunicorn.conf.py
	$(BIN)/ruff check --fix qa_service tests gunicorn.conf.py

test: $(VENV)/.installed-test lint
	$(BIN)/python -m pytest

# Answer quality against stock retrievers, and /api/v1/ask latency against v1.
quality: $(VENV)/.installed-test
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python benchmarks/quality.py --baseline-ref $(BASELINE)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
	find $(INDEX) -mindepth 1 -not -name .gitignore -delete
