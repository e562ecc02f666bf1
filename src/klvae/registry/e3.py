"""E3, post IX and the AE-latent post: a face VAE against a plain autoencoder, on CelebA or a stand-in.

Its rules are ``workflow/rules/e3.smk``; the face data (``data.celeba``, the stand-in, the
preprocessed faces) and the face models belong to it.
"""

from __future__ import annotations

from klvae.registry.spec import Experiment, GpuJob, PaperPart, TableSpec, schema

SETTINGS = schema("""
    type: object
    additionalProperties: false
    required: [epochs, n_train, n_test]
    properties:
      standin_images:
        type: integer
        minimum: 2
        default: 18000
        description: Images of the synthetic stand-in (used only when data.celeba.path is null).
      n_train:
        type: [integer, "null"]
        minimum: 1
        description: "Training faces (post IX: 170,000; null = all of the split)."
      n_test:
        type: [integer, "null"]
        minimum: 1
        description: Held-out test faces (post IX used 10,000).
      epochs: {type: integer, minimum: 1, description: "Epochs for the VAE and for the AE."}
      batch_size: {type: integer, minimum: 1, default: 128}
      learning_rate: {type: number, exclusiveMinimum: 0, maximum: 1, default: 0.001}
      z_dim: {type: integer, minimum: 1, default: 200}
      fact:
        type: [number, "null"]
        minimum: 0
        maximum: 1
        default: null
        description: >
          The VAE's KL weight on the posts' scale (`fact`: KL_mean against the mean BCE, as
          e2.fact; null = 100/27648, the plain ELBO: BCE summed over 96x96x3 pixels plus KL in
          nats, divided by the pixel count, i.e. c 1 on E1's scale).
      ae_bounds:
        type: array
        minItems: 1
        items: {type: number, exclusiveMinimum: 0}
        default: [0.5, 2.5, 5, 8, 10, 15, 20, 30, 50]
      n_per_bound: {type: integer, minimum: 1, maximum: 30, default: 10}
      benchmark:
        type: object
        additionalProperties: false
        default: {}
        properties:
          preprocess_images: {type: integer, minimum: 10, default: 2000}
          memory_images: {type: integer, minimum: 10, default: 5000}
          input_batches: {type: integer, minimum: 1, default: 40}
          windows: {type: integer, minimum: 2, default: 5}
          steps_per_window: {type: integer, minimum: 1, default: 3}
""")

DATA_SETTINGS = schema("""
    celeba:
      type: object
      additionalProperties: false
      default: {}
      properties:
        path:
          type: [string, "null"]
          default: null
          description: >
            img_align_celeba.zip or the extracted folder (Kaggle's nested layout works). null =
            generate and use the synthetic stand-in (labelled as such in every figure).
        partition_file:
          type: [string, "null"]
          default: null
          description: list_eval_partition.txt (MD5-checked), needed for split = official.
        verify_md5:
          type: boolean
          default: true
          description: Check the zip's size and MD5 (set false only for a re-packed copy).
        split:
          type: string
          enum: [post, official]
          default: post
          description: post = first n_train / next n_test by file number (post IX); official = partitions 0 / 2.
""")

TOLERANCES = schema("""
    memory_rel:
      type: number
      exclusiveMinimum: 0
      default: 0.15
      description: Relative tolerance on post IX's memory claim (float32 array of 170,000 faces, GB).
    ae_latent_majority:
      type: number
      exclusiveMinimum: 0.5
      maximum: 1
      default: 0.8
      description: Share of AE latent values in 0 < z_i < 20 that counts as the post's "most".
""")

#: The face benchmarks' tables: one row per benchmark, quantity and process count.
BENCH_TABLE = TableSpec(keys=("benchmark", "quantity", "processes"), values=("value",))
BENCH_RULES = ("e3_bench_preprocessing", "e3_bench_memory", "e3_bench_pipeline")


def standin_check(config: dict, where: str) -> list[str]:
    """On the synthetic stand-in (``data.celeba.path: null``) with the post's split, ``e3.n_train +
    e3.n_test`` must not exceed ``e3.standin_images`` (it is drawn first, then split)."""
    e3, celeba = config.get("e3", {}), config.get("data", {}).get("celeba", {})
    if not celeba.get("path") and celeba.get("split", "post") == "post":
        wanted = (e3.get("n_train") or 0) + (e3.get("n_test") or 0)
        have = e3.get("standin_images")
        if have and wanted > have:
            return [f"e3.n_train + e3.n_test = {wanted:,} is more than e3.standin_images = {have:,}, the "
                    f"synthetic faces drawn when data.celeba.path is null. Fix: raise e3.standin_images to "
                    f"at least {wanted:,} or lower e3.n_train/e3.n_test{where}."]
    return []


#: Per face model (``e3/<kind>/``), what its paper part makes: training (history, model facts) and
#: every analysis that needs the weights (test metrics, decoded faces; the AE's latent summary and
#: histogram, made with ``test_latents.npy``, which no bundle carries).
#: The table and figures that show both models are made from these files when the parts are
#: assembled (:func:`klvae.bundle.part.assembly_rules`).
MODEL_FILES = {"vae": ("history.csv", "model.json", "metrics.json", "decoded_faces.npz"),
               "ae": ("history.csv", "model.json", "metrics.json", "decoded_faces.npz", "latents.json",
                      "latent_histogram.npz")}


def model_targets(kind: str, results: str) -> list[str]:
    """The ``e3-<kind>`` part's targets: :data:`MODEL_FILES` under ``<results>/e3/<kind>/``."""
    return [f"{results}/e3/{kind}/{name}" for name in MODEL_FILES[kind]]


def model_work(kind: str, config: dict) -> dict[str, float]:
    """The ``e3-<kind>`` part's jobs: the training and one job of each analysis."""
    return {"e3_train": 1, "e3_evaluate": 1, "e3_decode": 1, **({"e3_ae_latents": 1} if kind == "ae" else {})}


def data_work(config: dict) -> dict[str, float]:
    """The ``e3-data`` part's jobs: the stand-in (none when ``data.celeba.path`` names CelebA) and
    the preprocessing."""
    return {**({} if config["data"]["celeba"].get("path") else {"e3_standin": 1}), "e3_preprocess": 1}


#: Rules whose CPU-seconds grow per image, not per job (:attr:`klvae.registry.Experiment.job_work`):
#: the stand-in per face drawn, the preprocessing per face kept (train and test), the analyses of
#: the test split per test face.
JOB_WORK = {
    "e3_standin": ("image", lambda config: config["e3"]["standin_images"]),
    "e3_preprocess": ("image", lambda config: config["e3"]["n_train"] + config["e3"]["n_test"]),
    "e3_evaluate": ("test image", lambda config: config["e3"]["n_test"]),
    "e3_ae_latents": ("test image", lambda config: config["e3"]["n_test"]),
}


def _model_part(kind: str, what: str) -> PaperPart:
    # One training keeps as many cores busy as it has threads. On one thread a face training at the
    # paper's settings is ~2.9 h of a 2-core CPU, over a part's 2 h; two threads ran 1.74x as fast
    # (0.78 -> 0.45 s/step at batch 128), so each model's part trains on both cores (~1.7 h).
    return PaperPart(f"e3-{kind}", what, lambda config, results: model_targets(kind, results),
                     lambda config: model_work(kind, config), width=lambda config: config["threads"]["train"],
                     config={"threads": {"train": 2}})


EXPERIMENT = Experiment(
    id="e3",
    title="E3, post IX and the AE-latent post: faces",
    settings=SETTINGS,
    data_settings=DATA_SETTINGS,
    tolerances=TOLERANCES,
    data_folders=("faces", "standin", "celeba"),
    tables={
        "e3_metrics": TableSpec(keys=("model",), shown=("loss", "mse")),
        "e3_ae_latents": TableSpec(keys=()),
        **dict.fromkeys(BENCH_RULES, BENCH_TABLE),
    },
    gpu={"e3_train": GpuJob(threads=3, mem_mb=12000),
         "e3_bench_pipeline": GpuJob(whole_card=True), "e3_bench_memory": GpuJob(whole_card=True)},
    part_rules=("e3_standin", "e3_preprocess", "e3_train", "e3_evaluate", "e3_ae_latents", "e3_decode",
                *BENCH_RULES),
    paper_parts=(
        PaperPart("e3-data", "E3: the stand-in faces (or CelebA) preprocessed to uint8 arrays",
                  lambda config, results: [f"{results}/data/faces/manifest.json"],
                  data_work),
        _model_part("vae", "E3: the VAE's training (resumes from its epoch checkpoint if cut), test metrics and "
                           "decoded faces"),
        _model_part("ae", "E3: the plain AE's training, test metrics, decoded faces and latent values"),
        PaperPart("e3-bench", "E3: preprocessing, memory and input-pipeline benchmarks",
                  lambda config, results: [f"{results}/tables/{rule}.csv" for rule in BENCH_RULES],
                  lambda config: dict.fromkeys(BENCH_RULES, 1), timing=True),
    ),
    job_work=JOB_WORK,
    check=standin_check,
    renamed_keys=(("kl_weight", "fact", "one name per scale: E3's KL weight is on the posts' `fact` scale"),),
    renamed_values=(("data.celeba.split", "seed", "post",
                     "\"seed\" means only the random seed; the split is post IX's"),),
    # E3's analyses have a module of their own beside its training (``experiments/e3.py``): an edit
    # to one reruns no face training
    modules=("src/klvae/experiments/e3_analysis.py", "src/klvae/data/celeba.py", "src/klvae/data/standin.py",
             "src/klvae/models/faces.py"),
    # the chapter's warning when its faces are the synthetic stand-in, not CelebA
    includes={"e3_banner.md": (("standin=yes", "_e3_standin.qmd"),)},
)
