# E2 -- five ways to add the KL loss (post VII, posts IV-VIII): the compatibility matrix
# (Keras 3 vs legacy Keras 2, produced by trying), the equivalence check, one training job per
# strategy x z_dim from shared initial weights, analysis, figures, and the timing benchmark.

E2 = config["e2"]
E2_DIR = f"{RESULTS}/e2"
E2_FIG = f"{RESULTS}/figures/e2"
E2_STRATS = E2["strategies"]
E2_ZDIMS = [int(z) for z in E2["z_dims"]]
for _key in ("latent_z_dim", "reconstruction_z_dim", "timing_z_dim"):
    if int(E2[_key]) not in E2_ZDIMS:
        raise WorkflowError(f"config e2.{_key} = {E2[_key]} must be one of e2.z_dims = {E2_ZDIMS}")
E2_TRAIN_KW = {k: E2[k] for k in ("epochs", "batch_size", "fact", "learning_rate", "n_train", "n_test")}


wildcard_constraints:
    z=r"[0-9]+",
    strategy="|".join(E2_STRATS),


rule e2_compatibility:
    """Try every strategy as the posts wrote it under Keras 3 and legacy Keras 2 (tf-keras,
    separate process), and this project's Keras 3 form: runs or the exact error."""
    input:
        mnist=rules.mnist_canonical.output.npz,
    output:
        csv=f"{RESULTS}/tables/e2_compatibility_long.csv",
        table=f"{RESULTS}/tables/e2_compatibility.csv",
    log:
        f"{LOGS}/e2_compatibility.log",
    benchmark:
        f"{BENCH}/e2_compatibility.tsv"
    conda:
        CONDA_ENV
    threads: 1
    params:
        **library_call("klvae.strategies.compat:compatibility_matrix"),
        kwargs={**E2["compatibility"], "fact": E2["fact"], "seed": config["seed"]},
    script:
        CALL


rule e2_init_weights:
    """The initial weights every strategy of one z_dim starts from."""
    input:
        mnist=rules.mnist_canonical.output.npz,
    output:
        weights=f"{E2_DIR}/z{{z}}/init.weights.npz",
    log:
        f"{LOGS}/e2_init_weights/z{{z}}.log",
    benchmark:
        f"{BENCH}/e2_init_weights/z{{z}}.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.experiments.e2:init_weights"),
        backend=KERAS_BACKEND,  # rerun trigger: another Keras backend gives other numbers
        kwargs=lambda w: {"z_dim": int(w.z), "seed": config["seed"], "threads": 1},
    script:
        CALL


rule e2_equivalence:
    """Same weights, batch and eps: every strategy's loss and gradients against gradient_tape."""
    input:
        mnist=rules.mnist_canonical.output.npz,
        init=expand(f"{E2_DIR}/z{{z}}/init.weights.npz", z=E2_ZDIMS),
    output:
        csv=f"{RESULTS}/tables/e2_equivalence.csv",
    log:
        f"{LOGS}/e2_equivalence.log",
    benchmark:
        f"{BENCH}/e2_equivalence.tsv"
    conda:
        CONDA_ENV
    threads: 1
    params:
        **library_call("klvae.experiments.e2:equivalence"),
        backend=KERAS_BACKEND,  # rerun trigger: another Keras backend gives other numbers
        kwargs={
            **E2["equivalence"],
            "z_dim": E2_ZDIMS,
            "strategies": E2_STRATS,
            "fact": E2["fact"],
            "seed": config["seed"],
        },
    script:
        CALL


rule e2_train:
    """Train one strategy at one z_dim: history, final test loss/BCE/KL, the saved model."""
    input:
        mnist=rules.mnist_canonical.output.npz,
        init=rules.e2_init_weights.output.weights,
    output:
        model=f"{E2_DIR}/z{{z}}/{{strategy}}/model.keras",
        history=f"{E2_DIR}/z{{z}}/{{strategy}}/history.csv",
        metrics=f"{E2_DIR}/z{{z}}/{{strategy}}/metrics.json",
    log:
        f"{LOGS}/e2_train/z{{z}}_{{strategy}}.log",
    benchmark:
        f"{BENCH}/e2_train/z{{z}}_{{strategy}}.tsv"
    conda:
        CONDA_ENV
    threads: config["threads"]["train"]
    resources:
        mem_mb=4000,
    params:
        **library_call("klvae.experiments.e2:train"),
        backend=KERAS_BACKEND,  # rerun trigger: another Keras backend gives other numbers
        kwargs=lambda w: {**E2_TRAIN_KW, "strategy": w.strategy, "z_dim": int(w.z), "seed": config["seed"]},
    script:
        CALL


# Post VII's training log runs to epoch 6 (model_add_loss, z_dim 12). The strategies train
# bit-identically (rule e2_equivalence; the E2 table), so where e2.epochs is shorter only that
# one run is trained longer, beside the others; the scorecard reads its history.
E2_POST_LOG_Z = 12
E2_POST_LOG = (
    int(E2["post_log_epochs"]) > int(E2["epochs"]) and E2_POST_LOG_Z in E2_ZDIMS and "model_add_loss" in E2_STRATS
)
E2_POST_LOG_DIR = f"{E2_DIR}/post_log/z{E2_POST_LOG_Z}/model_add_loss"


rule e2_post_log:
    """Train `model_add_loss` at z_dim 12 for e2.post_log_epochs epochs: post VII's log (epochs 3-6)."""
    input:
        mnist=rules.mnist_canonical.output.npz,
        init=f"{E2_DIR}/z{E2_POST_LOG_Z}/init.weights.npz",
    output:
        model=f"{E2_POST_LOG_DIR}/model.keras",
        history=f"{E2_POST_LOG_DIR}/history.csv",
        metrics=f"{E2_POST_LOG_DIR}/metrics.json",
    log:
        f"{LOGS}/e2_post_log.log",
    benchmark:
        f"{BENCH}/e2_post_log.tsv"
    # the longest jobs start first, so that two cores are not left with one long job at the end
    priority: 10
    conda:
        CONDA_ENV
    threads: config["threads"]["train"]
    resources:
        mem_mb=4000,
    params:
        **library_call("klvae.experiments.e2:train"),
        backend=KERAS_BACKEND,  # rerun trigger: another Keras backend gives other numbers
        kwargs={
            **E2_TRAIN_KW,
            "epochs": E2["post_log_epochs"],
            "strategy": "model_add_loss",
            "z_dim": E2_POST_LOG_Z,
            "seed": config["seed"],
        },
    script:
        CALL


rule e2_analyse:
    """Test-set z_mean and a row of reconstructions of one trained strategy."""
    input:
        model=rules.e2_train.output.model,
        mnist=rules.mnist_canonical.output.npz,
    output:
        latent=f"{E2_DIR}/z{{z}}/{{strategy}}/latent.npz",
        recon=f"{E2_DIR}/z{{z}}/{{strategy}}/recon.npz",
    log:
        f"{LOGS}/e2_analyse/z{{z}}_{{strategy}}.log",
    benchmark:
        f"{BENCH}/e2_analyse/z{{z}}_{{strategy}}.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.experiments.e2:analyse"),
        kwargs=lambda w: {"n_test": E2["n_test"], "n_recon": E2["n_reconstructions"], "strategy": w.strategy},
    script:
        CALL


rule e2_table:
    """Final test loss / BCE / KL of every strategy and z_dim."""
    input:
        metrics=expand(f"{E2_DIR}/z{{z}}/{{strategy}}/metrics.json", z=E2_ZDIMS, strategy=E2_STRATS),
    output:
        table=f"{RESULTS}/tables/e2_metrics.csv",
    log:
        f"{LOGS}/e2_table.log",
    benchmark:
        f"{BENCH}/e2_table.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.experiments.e2:collect_metrics"),
    script:
        CALL


rule e2_timing:
    """Benchmark: ms/step per strategy and a no-KL baseline, interleaved windows after warm-up."""
    input:
        mnist=rules.mnist_canonical.output.npz,
    output:
        csv=f"{RESULTS}/tables/e2_timing_windows.csv",
        summary=f"{RESULTS}/tables/e2_timing.csv",
    log:
        f"{LOGS}/e2_timing.log",
    benchmark:
        f"{BENCH}/e2_timing.tsv"
    conda:
        CONDA_ENV
    # the whole machine: other jobs running beside it would distort the timings
    threads: workflow.cores
    params:
        **library_call("klvae.bench.e2:benchmark"),
        backend=KERAS_BACKEND,  # rerun trigger: another Keras backend gives other numbers
        kwargs={
            **E2["timing"],
            "strategies": E2_STRATS,
            "z_dim": E2["timing_z_dim"],
            "batch_size": E2["batch_size"],
            "fact": E2["fact"],
            "learning_rate": E2["learning_rate"],
            "seed": config["seed"],
            "threads": config["threads"]["train"],
        },
    script:
        CALL


rule e2_loss_curves:
    """Figure: loss, BCE and KL per epoch of all strategies overlaid, one z_dim."""
    input:
        histories=expand(f"{E2_DIR}/z{{{{z}}}}/{{strategy}}/history.csv", strategy=E2_STRATS),
    output:
        out=report(
            f"{E2_FIG}/loss_curves_z{{z}}.png",
            category="E2: five ways to add the KL loss",
            caption="../report/figure.rst",
        ),
    log:
        f"{LOGS}/e2_loss_curves/z{{z}}.log",
    benchmark:
        f"{BENCH}/e2_loss_curves/z{{z}}.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.figures.e2:loss_curves"),
        kwargs=lambda w: {"z_dim": int(w.z)},
    script:
        CALL


rule e2_latent:
    """Figure: test-set z_mean of one strategy at z_dim 2 with the post's observed extent."""
    input:
        latents=[f"{E2_DIR}/z{E2['latent_z_dim']}/{{strategy}}/latent.npz"],
    output:
        out=report(
            f"{E2_FIG}/latent_{{strategy}}.png",
            category="E2: five ways to add the KL loss",
            caption="../report/figure.rst",
        ),
    log:
        f"{LOGS}/e2_latent/{{strategy}}.log",
    benchmark:
        f"{BENCH}/e2_latent/{{strategy}}.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.figures.e2:latent_scatter"),
    script:
        CALL


rule e2_latent_panel:
    """Figure: the latent scatters of all strategies side by side (shared axes)."""
    input:
        latents=expand(f"{E2_DIR}/z{E2['latent_z_dim']}/{{strategy}}/latent.npz", strategy=E2_STRATS),
    output:
        out=report(
            f"{E2_FIG}/latent_panel.png",
            category="E2: five ways to add the KL loss",
            caption="../report/figure.rst",
        ),
    log:
        f"{LOGS}/e2_latent_panel.log",
    benchmark:
        f"{BENCH}/e2_latent_panel.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.figures.e2:latent_scatter"),
    script:
        CALL


rule e2_reconstructions:
    """Figure: test digits (top row) and every strategy's reconstructions at z_dim 12."""
    input:
        recons=expand(f"{E2_DIR}/z{E2['reconstruction_z_dim']}/{{strategy}}/recon.npz", strategy=E2_STRATS),
    output:
        out=report(
            f"{E2_FIG}/reconstructions.png",
            category="E2: five ways to add the KL loss",
            caption="../report/figure.rst",
        ),
    log:
        f"{LOGS}/e2_reconstructions.log",
    benchmark:
        f"{BENCH}/e2_reconstructions.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.figures.e2:reconstructions"),
    script:
        CALL


E2_FIGURES = (
    expand(f"{E2_FIG}/loss_curves_z{{z}}.png", z=E2_ZDIMS)
    + expand(f"{E2_FIG}/latent_{{strategy}}.png", strategy=E2_STRATS)
    + [f"{E2_FIG}/latent_panel.png", f"{E2_FIG}/reconstructions.png"]
)
E2_TABLES = [
    rules.e2_table.output.table,
    rules.e2_equivalence.output.csv,
    rules.e2_compatibility.output.table,
    rules.e2_timing.output.summary,
]


rule report_e2:
    """E2 compatibility matrix, equivalence, final losses and timing tables (their bodies), lists, E2 variables."""
    input:
        compatibility=rules.e2_compatibility.output.table,
        compatibility_long=rules.e2_compatibility.output.csv,
        equivalence=rules.e2_equivalence.output.csv,
        metrics=rules.e2_table.output.table,
        timing=rules.e2_timing.output.summary,
    output:
        compat_md=f"{GEN}/e2_compat.md",
        compat_backends_md=f"{GEN}/e2_compat_backends.md",
        compat_variants_md=f"{GEN}/e2_compat_variants.md",
        compat_variants_list_md=f"{GEN}/e2_compat_variants_list.md",
        equivalence_md=f"{GEN}/e2_equivalence.md",
        metrics_md=f"{GEN}/e2_metrics.md",
        metrics_groups_md=f"{GEN}/e2_metrics_groups.md",
        timing_md=f"{GEN}/e2_timing.md",
        timing_claims_md=f"{GEN}/e2_timing_claims.md",
        variables=f"{GEN}/e2.vars.yml",
    log:
        f"{LOGS}/report/e2.log",
    benchmark:
        f"{BENCH}/report/e2.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.report.e2:write_e2"),
        kwargs={"settings": E2},
    script:
        CALL


rule report_scorecard_e2:
    """E2's scorecard part: post VII's log, post IV's latent extent, the timings of posts IV and VII."""
    input:
        e2_runs=expand(f"{E2_DIR}/z{{z}}/{{strategy}}/metrics.json", z=E2_ZDIMS, strategy=E2_STRATS)
        + ([rules.e2_post_log.output.metrics] if E2_POST_LOG else []),
        e2_histories=expand(f"{E2_DIR}/z{{z}}/{{strategy}}/history.csv", z=E2_ZDIMS, strategy=E2_STRATS)
        + ([rules.e2_post_log.output.history] if E2_POST_LOG else []),
        e2_latents=expand(f"{E2_DIR}/z{E2['latent_z_dim']}/{{strategy}}/latent.npz", strategy=E2_STRATS),
        e2_timing=rules.e2_timing.output.summary,
        e2_timing_windows=rules.e2_timing.output.csv,
    output:
        table=f"{GEN}/scorecard_e2.csv",
    log:
        f"{LOGS}/report/scorecard_e2.log",
    benchmark:
        f"{BENCH}/report/scorecard_e2.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.report.e2:write_e2_scorecard"),
        kwargs={"tolerances": config["scorecard"], "profile": config["profile"]},
    script:
        CALL


register_experiment(
    "e2",
    figures=E2_FIGURES,
    tables=E2_TABLES,
    report_rule=rules.report_e2,
    scorecard_rule=rules.report_scorecard_e2,
)
