# The backend study (report section "Does the framework matter?"): E1's MLP VAE at the KL
# coefficients backend_study.coefficients, for every seed in backend_study.seeds, on every
# backend in backend_study.backends, in one Snakemake run. The backend is the {backend}
# wildcard of a job (call_backend.py sets KERAS_BACKEND for that job's process), not the
# process-wide KERAS_BACKEND; both backends of a seed start from one initial-weights file,
# built on TensorFlow. Not part of `rule all`: run it with `make backend-study`
# (config/default.yaml + config/backend_study.yaml: results/backend_study/study/backend/), pack it
# with `make study-bundle`.
#
#   study_init_weights  s<seed>: the seed's initial weights (TensorFlow, .weights.h5)
#   study_train         <backend>/s<seed>/c<c>: training history, test metrics, weights per epoch
#   study_evaluate      test loss per epoch from those weights; the latent-code decomposition
#   study_table         runs, backend comparison (Welch), latent evidence (CSV)
#   study_figure        per-epoch train and test loss of both backends (PNG)
#   study_record        run record (machine, versions, commit, CPU seconds) and the config


STUDY = config["backend_study"]
STUDY_DIR = f"{RESULTS}/study/backend"
STUDY_COEFS = [f"{float(c):g}" for c in STUDY["coefficients"]]
STUDY_SEEDS = [int(s) for s in STUDY["seeds"]]
STUDY_BACKENDS = list(STUDY["backends"])
STUDY_RUN = f"{STUDY_DIR}/{{backend}}/s{{s}}/c{{c}}"
STUDY_TRAIN_KW = {k: STUDY[k] for k in ("epochs", "batch_size", "learning_rate", "n_train", "n_test")} | {
    k: E1[k] for k in ("z_dim", "intermediate_dim")
}
STUDY_RUNS = dict(backend=STUDY_BACKENDS, s=STUDY_SEEDS, c=STUDY_COEFS)


wildcard_constraints:
    backend="tensorflow|jax|torch",
    s=r"[0-9]+",


rule study_init_weights:
    """One seed's initial weights, built on TensorFlow; every backend and c of that seed loads them."""
    output:
        weights=f"{STUDY_DIR}/init/s{{s}}.weights.h5",
    log:
        f"{LOGS}/study_init_weights/s{{s}}.log",
    benchmark:
        f"{BENCH}/study_init_weights/s{{s}}.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call_backend("klvae.experiments.e1:init_weights"),
        keras_backend="tensorflow",
        kwargs=lambda w: {"seed": int(w.s), "z_dim": E1["z_dim"], "intermediate_dim": E1["intermediate_dim"]},
    script:
        CALL_BACKEND


rule study_train:
    """One run: E1's VAE at c on the {backend} backend from the seed's shared initial weights."""
    input:
        mnist=rules.mnist_canonical.output.npz,
        init=rules.study_init_weights.output.weights,
    output:
        history=f"{STUDY_RUN}/history.csv",
        metrics=f"{STUDY_RUN}/metrics.json",
        timing=f"{STUDY_RUN}/timing.json",
        final=f"{STUDY_RUN}/final.weights.npz",
        # the weights after every epoch: deleted once evaluated unless backend_study.keep_epoch_weights
        epoch_weights=(
            directory(f"{STUDY_RUN}/epochs") if STUDY["keep_epoch_weights"] else temp(directory(f"{STUDY_RUN}/epochs"))
        ),
    log:
        f"{LOGS}/study_train/{{backend}}_s{{s}}_c{{c}}.log",
    benchmark:
        f"{BENCH}/study_train/{{backend}}_s{{s}}_c{{c}}.tsv"
    conda:
        CONDA_ENV
    threads: config["threads"]["train"]
    resources:
        mem_mb=3000,
    params:
        **library_call_backend("klvae.experiments.backend_study:train"),
        keras_backend=lambda w: w.backend,
        kwargs=lambda w: {
            **STUDY_TRAIN_KW,
            "c": float(w.c),
            "seed": int(w.s),
            "backend": w.backend,
        },
    script:
        CALL_BACKEND


rule study_evaluate:
    """Test loss per epoch from the saved weights; the final test-set KL split into mean and variance parts."""
    input:
        mnist=rules.mnist_canonical.output.npz,
        epoch_weights=rules.study_train.output.epoch_weights,
        metrics=rules.study_train.output.metrics,
        history=rules.study_train.output.history,
    output:
        epochs_csv=f"{STUDY_RUN}/epochs.csv",
        latent=f"{STUDY_RUN}/latent.json",
    log:
        f"{LOGS}/study_evaluate/{{backend}}_s{{s}}_c{{c}}.log",
    benchmark:
        f"{BENCH}/study_evaluate/{{backend}}_s{{s}}_c{{c}}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
    params:
        **library_call_backend("klvae.experiments.backend_study:evaluate"),
        keras_backend=lambda w: w.backend,
        kwargs=lambda w: {
            "c": float(w.c),
            "seed": int(w.s),
            "backend": w.backend,
            "batch_size": STUDY["batch_size"],
            "n_test": STUDY["n_test"],
            "z_dim": E1["z_dim"],
            "intermediate_dim": E1["intermediate_dim"],
        },
    script:
        CALL_BACKEND


rule study_table:
    """Per c and quantity: both backends' mean ± sd, the Welch interval of the difference, the post's value."""
    input:
        latents=expand(f"{STUDY_RUN}/latent.json", **STUDY_RUNS),
        metrics=expand(f"{STUDY_RUN}/metrics.json", **STUDY_RUNS),
    output:
        runs=f"{STUDY_DIR}/tables/runs.csv",
        backends_table=f"{STUDY_DIR}/tables/backends.csv",
        latent_table=f"{STUDY_DIR}/tables/latent.csv",
    log:
        f"{LOGS}/study_table.log",
    benchmark:
        f"{BENCH}/study_table.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.experiments.backend_study:collect"),
        kwargs={"backends": STUDY_BACKENDS},
    script:
        CALL


rule study_figure:
    """Figure: per-epoch training and test loss of both backends, one panel per c."""
    input:
        epochs_csvs=expand(f"{STUDY_RUN}/epochs.csv", **STUDY_RUNS),
    output:
        out=report(
            f"{STUDY_DIR}/figures/losses.png",
            category="Backend study: TensorFlow against JAX",
            caption="../report/figure.rst",
        ),
    log:
        f"{LOGS}/study_figure.log",
    benchmark:
        f"{BENCH}/study_figure.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.figures.study:loss_curves"),
        kwargs={"backends": STUDY_BACKENDS},
    script:
        CALL


rule study_record:
    """The study's run record (machine, versions, commit, CPU seconds per rule) and its config."""
    input:
        tables=rules.study_table.output,
        figure=rules.study_figure.output.out,
    output:
        run_json=f"{STUDY_DIR}/run.json",
        config_yaml=f"{STUDY_DIR}/config.yaml",
    log:
        f"{LOGS}/study_record.log",
    benchmark:
        f"{BENCH}/study_record.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.experiments.backend_study:record", deps_only=["tables", "figure"]),
        kwargs={"config": config, "benchmarks_dir": BENCH, "repo": REPO_ROOT, "settings": STUDY},
    script:
        CALL


# What `make backend-study` builds (and `make study-bundle` packs).
STUDY_TARGETS = [*rules.study_table.output, rules.study_figure.output.out, *rules.study_record.output]


rule backend_study:
    """Target: the whole backend study (tables, figure, run record)."""
    input:
        STUDY_TARGETS,


# Where the report's section takes its numbers from (klvae.report.study.choose_source): decided
# here, when the workflow is parsed, so `make report` never runs the study itself -- unless
# backend_study.report_source is `results`, which makes the study's outputs inputs of the report.
from klvae.report.study import choose_source, source_digest

# Without a committed bundle, `auto` also finds the study where `make backend-study` leaves it
# (results/backend_study/, the backend_study profile's folder).
STUDY_SOURCE, STUDY_SOURCE_PATH = choose_source(
    STUDY["report_source"],
    os.path.join(REPO_ROOT, "bundles"),
    RESULTS,
    others=[] if BUNDLE_MODE else [results_dir("backend_study")],
)
STUDY_REPORT_FIGURES = [] if STUDY_SOURCE == "none" else [f"{RESULTS}/figures/study/backend_losses.png"]


rule report_study:
    """Section "Does the framework matter?": the backend study from its committed bundle, this run's study or neither."""
    input:
        # only with backend_study.report_source: results does the report wait for (and run) the study
        study=STUDY_TARGETS if STUDY["report_source"] == "results" else [],
    output:
        md=f"{GEN}/backend_study.md",
        backends_md=f"{GEN}/study_backends.md",
        latent_md=f"{GEN}/study_latent.md",
        variables=f"{GEN}/backend_study.vars.yml",
        figure=STUDY_REPORT_FIGURES,
        # the study's spread per E1 claim and backend, for E1's scorecard (empty unless it trained E1's setting)
        spreads=f"{GEN}/study_spreads.csv",
    log:
        f"{LOGS}/report/study.log",
    benchmark:
        f"{BENCH}/report/study.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.report.study:write_study", deps_only=["study"]),
        source=source_digest(STUDY_SOURCE, STUDY_SOURCE_PATH),  # rerun trigger: the bundle or results changed
        kwargs={
            "source_kind": STUDY_SOURCE,
            "source_path": STUDY_SOURCE_PATH,
            "command": "make backend-study",
            "settings": config["backend_study"],  # the planned design, shown when the study has not been run
            "e1_settings": config["e1"],
        },
    script:
        CALL
