# klvae -- two commands do all the set-up on a fresh machine:
#   make report   creates .venv if missing, runs the default profile, renders the report
#   make test     creates .venv if missing, runs the test suite
# PROFILE=quick|default|paper selects config/$(PROFILE).yaml; CORES=N limits the cores used.

PYTHON  ?= python3
VENV    ?= .venv
PROFILE ?= default
CORES   ?= all
BIN      = $(VENV)/bin
STAMP    = $(VENV)/.klvae-installed
SNAKE_OPTS = --cores $(CORES) --configfile config/$(PROFILE).yaml

.PHONY: report test env dag unlock clean-results help

help:
	@echo "make report [PROFILE=quick|default|paper]  -> results/report/klvae.html and klvae.pdf"
	@echo "make test                                   -> unit tests + a real quick-profile pipeline run"
	@echo "make env                                    -> only create/update .venv"
	@echo "make unlock                                 -> after Snakemake itself was killed: release its lock, then make report"

env: $(STAMP)

# The environment: exact pins from requirements.lock, then klvae itself (editable, no deps).
$(STAMP): requirements.lock pyproject.toml
	@echo ">>> creating $(VENV) with $$($(PYTHON) --version) (pinned packages, ~1.5 GB, a few minutes the first time)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@
	@echo ">>> $(VENV) ready"

report: $(STAMP)
	@echo ">>> running the $(PROFILE) profile (config/$(PROFILE).yaml); progress below, logs in .snakemake/log/"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake results/report/klvae.html results/report/klvae.pdf $(SNAKE_OPTS)
	@echo ">>> report: results/report/klvae.html and results/report/klvae.pdf"

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

# After Snakemake itself was killed its lock stays; training jobs resume from their checkpoints.
unlock: $(STAMP)
	$(BIN)/snakemake --unlock $(SNAKE_OPTS)

dag: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake $(SNAKE_OPTS) --rulegraph | dot -Tpng > results/rulegraph.png

clean-results:
	rm -rf results/*
