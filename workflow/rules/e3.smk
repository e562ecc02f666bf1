# E3 -- faces (post IX, post IX and the post on the AE latent space): CelebA (or the
# labelled synthetic stand-in) -> cropped/resized uint8 memmaps -> VAE and plain AE trained
# by streaming -> per model: test metrics (e3_evaluate), decoded faces (e3_decode) -> the
# metrics table (e3_table), random faces, AE random points, reconstructions, AE latent
# histogram; benchmarks of preprocessing, memory and input throughput. Every rule that loads
# a model takes one model (wildcard kind), so each model's paper part stands alone; the rules
# that show both models read only the per-model files.

E3 = config["e3"]
CELEBA = config["data"]["celeba"]
E3_DIR = f"{RESULTS}/e3"
E3_FIG = f"{RESULTS}/figures/e3"
FACES = f"{RESULTS}/data/faces"
STANDIN_DIR = f"{RESULTS}/data/standin/img_align_celeba"

if CELEBA["path"] and BUNDLE_MODE:
    FACE_SOURCE = CELEBA["path"]  # the run's; a report rendered from its bundle never reads it
elif CELEBA["path"]:
    if not os.path.exists(CELEBA["path"]):
        raise WorkflowError(
            f"data.celeba.path = {CELEBA['path']!r} does not exist. Point it at img_align_celeba.zip or the extracted "
            "img_align_celeba/ folder (Kaggle's nested img_align_celeba/img_align_celeba/ works too), or set it to "
            "null to run the face branch on the synthetic stand-in."
        )
    FACE_SOURCE = CELEBA["path"]
    # How many images the source holds, checked against e3.n_train/n_test before any job runs
    # (reads the zip's directory or lists the folder: about a second for all of CelebA).
    from klvae.config import face_counts
    from klvae.data.celeba import locate_images
    from klvae.data.integrity import DataIntegrityError

    try:
        print(
            face_counts(
                len(locate_images(FACE_SOURCE).names), E3["n_train"], E3["n_test"], CELEBA["split"], FACE_SOURCE
            ),
            file=sys.stderr,
        )
    except DataIntegrityError as err:
        raise WorkflowError(str(err)) from None
else:
    FACE_SOURCE = STANDIN_DIR

    rule e3_standin:
        """A CelebA-format folder of procedurally drawn synthetic faces (NOT CelebA), labelled as such."""
        output:
            folder=directory(STANDIN_DIR),
        log:
            f"{LOGS}/e3_standin.log",
        benchmark:
            f"{BENCH}/e3_standin.tsv"
        # on the way to e3_train (priority 10)
        priority: 10
        conda:
            CONDA_ENV
        threads: workflow.cores
        params:
            **library_call("klvae.data.standin:generate_standin"),
            kwargs={"n_images": E3["standin_images"], "seed": config["seed"]},
        script:
            CALL


rule e3_preprocess:
    """Post IX's crop (0, 40, 178, 218) and LANCZOS resize to 96x96 -> uint8 .npy memmaps + manifest."""
    input:
        source_path=FACE_SOURCE,
    output:
        train_npy=f"{FACES}/train.npy",
        test_npy=f"{FACES}/test.npy",
        manifest=f"{FACES}/manifest.json",
    log:
        f"{LOGS}/e3_preprocess.log",
    benchmark:
        f"{BENCH}/e3_preprocess.tsv"
    # on the way to e3_train (priority 10)
    priority: 10
    conda:
        CONDA_ENV
    threads: workflow.cores
    params:
        **library_call("klvae.data.celeba:preprocess"),
        kwargs={
            "n_train": E3["n_train"],
            "n_test": E3["n_test"],
            "split": CELEBA["split"],
            "partition_file": CELEBA["partition_file"],
            "verify_md5": CELEBA["verify_md5"],
        },
    script:
        CALL


wildcard_constraints:
    kind="vae|ae",


rule e3_train:
    """Train the face VAE (gradient_tape strategy) or the plain AE by streaming the uint8 memmap."""
    input:
        train_npy=rules.e3_preprocess.output.train_npy,
    output:
        model=f"{E3_DIR}/{{kind}}/model.keras",
        history=f"{E3_DIR}/{{kind}}/history.csv",
        epoch_times=f"{E3_DIR}/{{kind}}/epoch_times.csv",
        # facts the report quotes (parameter count, z_dim, fact), so the report needs no Keras
        model_info=f"{E3_DIR}/{{kind}}/model.json",
    log:
        f"{LOGS}/e3_train/{{kind}}.log",
    benchmark:
        f"{BENCH}/e3_train/{{kind}}.tsv"
    # the longest jobs start first, so that two cores are not left with one long job at the end
    priority: 10
    conda:
        CONDA_ENV
    threads: config["threads"]["train"]
    resources:
        mem_mb=6000,
    params:
        **library_call("klvae.experiments.e3:train"),
        backend=KERAS_BACKEND,  # rerun trigger: another Keras backend gives other numbers
        kwargs=lambda w: {
            "kind": w.kind,
            "epochs": E3["epochs"],
            "batch_size": E3["batch_size"],
            "learning_rate": E3["learning_rate"],
            "fact": E3["fact"],
            "z_dim": E3["z_dim"],
            "seed": config["seed"],
        },
    script:
        CALL


rule e3_evaluate:
    """Test-set loss, reconstruction and KL of one face model (VAE or AE), as JSON."""
    input:
        model=f"{E3_DIR}/{{kind}}/model.keras",
        test_npy=rules.e3_preprocess.output.test_npy,
    output:
        metrics=f"{E3_DIR}/{{kind}}/metrics.json",
    log:
        f"{LOGS}/e3_evaluate/{{kind}}.log",
    benchmark:
        f"{BENCH}/e3_evaluate/{{kind}}.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.experiments.e3_analysis:evaluate"),
        kwargs=lambda w: {"kind": w.kind, "seed": config["seed"]},
    script:
        CALL


rule e3_table:
    """Table: test-set loss, reconstruction, KL and MSE of the VAE and the AE (from their metrics.json)."""
    input:
        metrics=expand(f"{E3_DIR}/{{kind}}/metrics.json", kind=("vae", "ae")),
    output:
        table=f"{RESULTS}/tables/e3_metrics.csv",
    log:
        f"{LOGS}/e3_table.log",
    benchmark:
        f"{BENCH}/e3_table.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.experiments.e3_analysis:metrics_table"),
    script:
        CALL


rule e3_ae_latents:
    """The AE encoder's latent values on the test faces, their summary and their histogram."""
    input:
        model=f"{E3_DIR}/ae/model.keras",
        test_npy=rules.e3_preprocess.output.test_npy,
    output:
        latents=f"{E3_DIR}/ae/test_latents.npy",
        summary=f"{E3_DIR}/ae/latents.json",
        histogram=f"{E3_DIR}/ae/latent_histogram.npz",
    log:
        f"{LOGS}/e3_ae_latents.log",
    benchmark:
        f"{BENCH}/e3_ae_latents.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.experiments.e3_analysis:encode_latents"),
    script:
        CALL


rule e3_ae_latents_table:
    """Table: the range of the AE's latent values on the test faces (from its latents.json)."""
    input:
        summary=rules.e3_ae_latents.output.summary,
    output:
        table=f"{RESULTS}/tables/e3_ae_latents.csv",
    log:
        f"{LOGS}/e3_ae_latents_table.log",
    benchmark:
        f"{BENCH}/e3_ae_latents_table.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.experiments.e3_analysis:latents_table"),
    script:
        CALL


rule e3_decode:
    """Decode what the face figures show of one model: VAE faces from z ~ N(0, I) or AE decodings of
    z_i ~ U(0, b), and the model's reconstructions of the same test faces."""
    input:
        model=f"{E3_DIR}/{{kind}}/model.keras",
        test_npy=rules.e3_preprocess.output.test_npy,
    output:
        decoded=f"{E3_DIR}/{{kind}}/decoded_faces.npz",
    log:
        f"{LOGS}/e3_decode/{{kind}}.log",
    benchmark:
        f"{BENCH}/e3_decode/{{kind}}.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.experiments.e3_analysis:decode_faces"),
        backend=KERAS_BACKEND,  # rerun trigger: another Keras backend decodes other bits
        # each model only the settings it uses, so a change of the AE's bounds leaves the VAE's file
        kwargs=lambda w: {
            "kind": w.kind,
            "seed": config["seed"],
            **({"bounds": E3["ae_bounds"], "n_per_bound": E3["n_per_bound"]} if w.kind == "ae" else {}),
        },
    script:
        CALL


rule e3_random_faces:
    """Figure: VAE decodings of z ~ N(0, I)."""
    input:
        decoded=f"{E3_DIR}/vae/decoded_faces.npz",
        manifest=rules.e3_preprocess.output.manifest,
    output:
        png=report(
            f"{E3_FIG}/random_faces.png",
            category="E3: faces, VAE against AE",
            caption="../report/figure.rst",
        ),
    log:
        f"{LOGS}/e3_random_faces.log",
    benchmark:
        f"{BENCH}/e3_random_faces.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.figures.e3:random_faces"),
    script:
        CALL


rule e3_ae_random_points:
    """Figure: AE decodings of z with components uniform in [0, b], one row per b."""
    input:
        decoded=f"{E3_DIR}/ae/decoded_faces.npz",
        manifest=rules.e3_preprocess.output.manifest,
    output:
        png=report(
            f"{E3_FIG}/ae_random_points.png",
            category="E3: faces, VAE against AE",
            caption="../report/figure.rst",
        ),
    log:
        f"{LOGS}/e3_ae_random_points.log",
    benchmark:
        f"{BENCH}/e3_ae_random_points.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.figures.e3:ae_random_points"),
    script:
        CALL


rule e3_reconstructions:
    """Figure: held-out test faces and their VAE and AE reconstructions."""
    input:
        vae_decoded=f"{E3_DIR}/vae/decoded_faces.npz",
        ae_decoded=f"{E3_DIR}/ae/decoded_faces.npz",
        manifest=rules.e3_preprocess.output.manifest,
    output:
        png=report(
            f"{E3_FIG}/reconstructions.png",
            category="E3: faces, VAE against AE",
            caption="../report/figure.rst",
        ),
    log:
        f"{LOGS}/e3_reconstructions.log",
    benchmark:
        f"{BENCH}/e3_reconstructions.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.figures.e3:reconstructions"),
    script:
        CALL


rule e3_latent_histogram:
    """Figure: histogram of the AE encoder's latent values on test faces."""
    input:
        histogram=rules.e3_ae_latents.output.histogram,
        summary=rules.e3_ae_latents.output.summary,
        manifest=rules.e3_preprocess.output.manifest,
    output:
        png=report(
            f"{E3_FIG}/ae_latent_histogram.png",
            category="E3: faces, VAE against AE",
            caption="../report/figure.rst",
        ),
    log:
        f"{LOGS}/e3_latent_histogram.log",
    benchmark:
        f"{BENCH}/e3_latent_histogram.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.figures.e3:latent_histogram"),
    script:
        CALL


rule e3_bench_preprocessing:
    """Benchmark: preprocessing images/s per core against the post's 240 s for 200,000 images."""
    input:
        source_path=FACE_SOURCE,
    output:
        csv=f"{RESULTS}/tables/e3_bench_preprocessing.csv",
    log:
        f"{LOGS}/e3_bench_preprocessing.log",
    benchmark:
        f"{BENCH}/e3_bench_preprocessing.tsv"
    conda:
        CONDA_ENV
    threads: workflow.cores
    params:
        **library_call("klvae.bench.e3:preprocessing_benchmark"),
        kwargs={"n_images": E3["benchmark"]["preprocess_images"], "threads": workflow.cores},
    script:
        CALL


rule e3_bench_memory:
    """Benchmark: peak RSS of streamed uint8 versus an in-RAM float32 array, same N."""
    input:
        train_npy=rules.e3_preprocess.output.train_npy,
    output:
        csv=f"{RESULTS}/tables/e3_bench_memory.csv",
    log:
        f"{LOGS}/e3_bench_memory.log",
    benchmark:
        f"{BENCH}/e3_bench_memory.tsv"
    conda:
        CONDA_ENV
    threads: workflow.cores
    params:
        **library_call("klvae.bench.e3:memory_benchmark"),
        backend=KERAS_BACKEND,  # rerun trigger: another Keras backend gives other numbers
        kwargs={"n_images": E3["benchmark"]["memory_images"], "batch_size": E3["batch_size"], "threads": 1},
    script:
        CALL


rule e3_bench_pipeline:
    """Benchmark: input-pipeline images/s against the training step's consumption."""
    input:
        train_npy=rules.e3_preprocess.output.train_npy,
    output:
        csv=f"{RESULTS}/tables/e3_bench_pipeline.csv",
    log:
        f"{LOGS}/e3_bench_pipeline.log",
    benchmark:
        f"{BENCH}/e3_bench_pipeline.tsv"
    conda:
        CONDA_ENV
    threads: workflow.cores
    params:
        **library_call("klvae.bench.e3:pipeline_benchmark"),
        backend=KERAS_BACKEND,  # rerun trigger: another Keras backend gives other numbers
        kwargs={
            "batch_size": E3["batch_size"],
            "threads_list": [1, 2],
            "input_batches": E3["benchmark"]["input_batches"],
            "windows": E3["benchmark"]["windows"],
            "steps_per_window": E3["benchmark"]["steps_per_window"],
        },
    script:
        CALL


E3_FIGURES = [
    f"{E3_FIG}/{n}.png" for n in ("random_faces", "ae_random_points", "reconstructions", "ae_latent_histogram")
]
E3_TABLES = [
    rules.e3_table.output.table,
    rules.e3_ae_latents_table.output.table,
    rules.e3_bench_preprocessing.output.csv,
    rules.e3_bench_memory.output.csv,
    rules.e3_bench_pipeline.output.csv,
]


rule report_e3:
    """E3 data provenance and stand-in banner, test losses, AE latent range, benchmarks, E3 variables."""
    input:
        manifest=rules.e3_preprocess.output.manifest,
        metrics=rules.e3_table.output.table,
        latents=rules.e3_ae_latents_table.output.table,
        bench_preprocessing=rules.e3_bench_preprocessing.output.csv,
        bench_memory=rules.e3_bench_memory.output.csv,
        bench_pipeline=rules.e3_bench_pipeline.output.csv,
        vae_info=f"{E3_DIR}/vae/model.json",
    output:
        banner_md=f"{GEN}/e3_banner.md",
        data_md=f"{GEN}/e3_data.md",
        metrics_md=f"{GEN}/e3_metrics.md",
        latents_md=f"{GEN}/e3_latents.md",
        bench_md=f"{GEN}/e3_bench.md",
        variables=f"{GEN}/e3.vars.yml",
    log:
        f"{LOGS}/report/e3.log",
    benchmark:
        f"{BENCH}/report/e3.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.report.e3:write_e3"),
        kwargs={"settings": E3},
    script:
        CALL


rule report_scorecard_e3:
    """E3's scorecard part: post IX's preprocessing time and memory, the AE latent range."""
    input:
        e3_manifest=rules.e3_preprocess.output.manifest,
        e3_latents=rules.e3_ae_latents_table.output.table,
        e3_preprocessing=rules.e3_bench_preprocessing.output.csv,
        e3_memory=rules.e3_bench_memory.output.csv,
    output:
        table=f"{GEN}/scorecard_e3.csv",
    log:
        f"{LOGS}/report/scorecard_e3.log",
    benchmark:
        f"{BENCH}/report/scorecard_e3.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.report.e3:write_e3_scorecard"),
        kwargs={"tolerances": config["scorecard"], "profile": config["profile"], "backend": RUN_BACKEND},
    script:
        CALL


register_experiment(
    "e3",
    figures=E3_FIGURES,
    tables=E3_TABLES,
    report_rule=rules.report_e3,
    scorecard_rule=rules.report_scorecard_e3,
)
