# E1 -- KL coefficient sweep (the KL-coefficient post): one training job per coefficient c, all from one
# shared set of initial weights; analysis (encode/decode) and figures as separate jobs.
# Replicate r (e1.replicates, several in the paper profile) uses seed + r for its initial
# weights, shuffling and sampling; the table reports mean and spread over replicates, the
# figures show replicate 0.

E1 = config["e1"]
# KL coefficients as they appear in paths and titles: 0, 0.02, 0.1, 0.5, 1, 2, 10, 20.
E1_COEFS = [f"{float(c):g}" for c in E1["coefficients"]]
E1_DIR = f"{RESULTS}/e1"
E1_FIG = f"{RESULTS}/figures/e1"
E1_REPS = list(range(E1["replicates"]))
E1_TRAIN_KW = {
    k: E1[k] for k in ("epochs", "batch_size", "learning_rate", "n_train", "n_test", "z_dim", "intermediate_dim")
}


rule e1_init_weights:
    """The one set of initial weights every coefficient starts from (the post's vae_init.h5)."""
    output:
        weights=f"{E1_DIR}/r{{r}}/init.weights.h5",
    log:
        f"{LOGS}/e1_init_weights/r{{r}}.log",
    benchmark:
        f"{BENCH}/e1_init_weights/r{{r}}.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.experiments.e1:init_weights"),
        backend=KERAS_BACKEND,  # rerun trigger: another Keras backend gives other numbers
        kwargs=lambda w: {
            "seed": config["seed"] + int(w.r),
            "z_dim": E1["z_dim"],
            "intermediate_dim": E1["intermediate_dim"],
        },
    script:
        CALL


rule e1_train:
    """Train the MLP VAE for KL coefficient c; test loss / reconstruction / KL on the test set."""
    input:
        mnist=rules.mnist_canonical.output.npz,
        init=rules.e1_init_weights.output.weights,
    output:
        model=f"{E1_DIR}/r{{r}}/c{{c}}/model.keras",
        history=f"{E1_DIR}/r{{r}}/c{{c}}/history.csv",
        metrics=f"{E1_DIR}/r{{r}}/c{{c}}/metrics.json",
    log:
        f"{LOGS}/e1_train/r{{r}}_c{{c}}.log",
    benchmark:
        f"{BENCH}/e1_train/r{{r}}_c{{c}}.tsv"
    conda:
        CONDA_ENV
    threads: config["threads"]["train"]
    resources:
        mem_mb=3000,
    params:
        **library_call("klvae.experiments.e1:train"),
        backend=KERAS_BACKEND,  # rerun trigger: another Keras backend gives other numbers
        kwargs=lambda w: {
            **E1_TRAIN_KW,
            "c": float(w.c),
            "seed": config["seed"] + int(w.r),
            "replicate": int(w.r),
        },
    script:
        CALL


rule e1_analyse:
    """Encode the test set (z_mean, z_log_var) and decode the 30x30 latent grid of one trained model."""
    input:
        model=rules.e1_train.output.model,
        mnist=rules.mnist_canonical.output.npz,
    output:
        latent=f"{E1_DIR}/r{{r}}/c{{c}}/latent.npz",
        grid=f"{E1_DIR}/r{{r}}/c{{c}}/grid.npz",
    log:
        f"{LOGS}/e1_analyse/r{{r}}_c{{c}}.log",
    benchmark:
        f"{BENCH}/e1_analyse/r{{r}}_c{{c}}.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.experiments.e1:analyse"),
        kwargs={"n_test": E1["n_test"], "n": E1["manifold_n"], "limit": E1["manifold_limit"]},
    script:
        CALL


rule e1_table:
    """Test loss, reconstruction and KL per coefficient beside the post's table."""
    input:
        metrics=expand(f"{E1_DIR}/r{{r}}/c{{c}}/metrics.json", c=E1_COEFS, r=E1_REPS),
    output:
        table=f"{RESULTS}/tables/e1_losses.csv",
    log:
        f"{LOGS}/e1_table.log",
    benchmark:
        f"{BENCH}/e1_table.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.experiments.e1:collect_metrics"),
    script:
        CALL


rule e1_reference_scatter:
    """Figure: 5,000 samples of the 2-D standard normal, the target the encoder is pulled towards."""
    output:
        out=report(
            f"{E1_FIG}/reference_scatter.png",
            category="E1: KL coefficient sweep (MNIST)",
            caption="../report/figure.rst",
        ),
    log:
        f"{LOGS}/e1_reference_scatter.log",
    benchmark:
        f"{BENCH}/e1_reference_scatter.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.figures.e1:reference_scatter"),
        kwargs={"n_samples": E1["reference_samples"], "seed": config["seed"]},
    script:
        CALL


rule e1_scatter:
    """Figure: test-set z_mean coloured by digit for one coefficient."""
    input:
        latent=f"{E1_DIR}/r0/c{{c}}/latent.npz",
    output:
        out=report(
            f"{E1_FIG}/scatter_c{{c}}.png",
            category="E1: KL coefficient sweep (MNIST)",
            caption="../report/figure.rst",
        ),
    log:
        f"{LOGS}/e1_scatter/c{{c}}.log",
    benchmark:
        f"{BENCH}/e1_scatter/c{{c}}.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.figures.e1:latent_scatter"),
    script:
        CALL


rule e1_manifold:
    """Figure: the 30x30 decoder manifold over [-3, 3]^2 for one coefficient."""
    input:
        grid=f"{E1_DIR}/r0/c{{c}}/grid.npz",
    output:
        out=report(
            f"{E1_FIG}/manifold_c{{c}}.png",
            category="E1: KL coefficient sweep (MNIST)",
            caption="../report/figure.rst",
        ),
    log:
        f"{LOGS}/e1_manifold/c{{c}}.log",
    benchmark:
        f"{BENCH}/e1_manifold/c{{c}}.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.figures.e1:manifold"),
    script:
        CALL


rule e1_scatter_panel:
    """Figure: all latent scatters, shared axes."""
    input:
        latents=expand(f"{E1_DIR}/r0/c{{c}}/latent.npz", c=E1_COEFS),
    output:
        out=report(
            f"{E1_FIG}/scatter_panel.png",
            category="E1: KL coefficient sweep (MNIST)",
            caption="../report/figure.rst",
        ),
    log:
        f"{LOGS}/e1_scatter_panel.log",
    benchmark:
        f"{BENCH}/e1_scatter_panel.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.figures.e1:scatter_panel"),
    script:
        CALL


rule e1_manifold_panel:
    """Figure: all decoder manifolds."""
    input:
        grids=expand(f"{E1_DIR}/r0/c{{c}}/grid.npz", c=E1_COEFS),
    output:
        out=report(
            f"{E1_FIG}/manifold_panel.png",
            category="E1: KL coefficient sweep (MNIST)",
            caption="../report/figure.rst",
        ),
    log:
        f"{LOGS}/e1_manifold_panel.log",
    benchmark:
        f"{BENCH}/e1_manifold_panel.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.figures.e1:manifold_panel"),
    script:
        CALL


rule e1_loss_curves:
    """Figure: per-epoch training loss, reconstruction and KL for every coefficient."""
    input:
        histories=expand(f"{E1_DIR}/r0/c{{c}}/history.csv", c=E1_COEFS),
    output:
        out=report(
            f"{E1_FIG}/loss_curves.png",
            category="E1: KL coefficient sweep (MNIST)",
            caption="../report/figure.rst",
        ),
    log:
        f"{LOGS}/e1_loss_curves.log",
    benchmark:
        f"{BENCH}/e1_loss_curves.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.figures.e1:loss_curves"),
    script:
        CALL


E1_FIGURES = (
    [f"{E1_FIG}/{name}.png" for name in ("reference_scatter", "scatter_panel", "manifold_panel", "loss_curves")]
    + expand(f"{E1_FIG}/scatter_c{{c}}.png", c=E1_COEFS)
    + expand(f"{E1_FIG}/manifold_c{{c}}.png", c=E1_COEFS)
)


rule report_e1:
    """E1's table beside the post's (its body), E1 variables: the caption's counts and the facts' numbers."""
    input:
        e1_table=rules.e1_table.output.table,
        latents=expand(f"{E1_DIR}/r0/c{{c}}/latent.npz", c=E1_COEFS),
    output:
        losses_md=f"{GEN}/e1_losses.md",
        variables=f"{GEN}/e1.vars.yml",
    log:
        f"{LOGS}/report/e1.log",
    benchmark:
        f"{BENCH}/report/e1.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.report.e1:write_e1"),
        kwargs={"settings": E1},
    script:
        CALL


rule report_scorecard_e1:
    """E1's scorecard part: the KL-coefficient post's table, ours beside it, a verdict per claim."""
    input:
        e1_table=rules.e1_table.output.table,
        # the backend study's spread of each claim on each backend (rule report_study)
        spreads=f"{GEN}/study_spreads.csv",
    output:
        table=f"{GEN}/scorecard_e1.csv",
    log:
        f"{LOGS}/report/scorecard_e1.log",
    benchmark:
        f"{BENCH}/report/scorecard_e1.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.report.e1:write_e1_scorecard"),
        kwargs={"tolerances": config["scorecard"], "profile": config["profile"], "backend": RUN_BACKEND},
    script:
        CALL


register_experiment(
    "e1",
    figures=E1_FIGURES,
    tables=[rules.e1_table.output.table],
    report_rule=rules.report_e1,
    scorecard_rule=rules.report_scorecard_e1,
)
