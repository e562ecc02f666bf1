"""E1, the KL-coefficient post: the KL coefficient sweep on MNIST (an MLP VAE per KL coefficient c).

Its rules are ``workflow/rules/e1.smk``; the backend study (``workflow/rules/study.smk``) retrains
E1's model on two Keras backends and belongs to it too.
"""

from __future__ import annotations

from klvae.registry.spec import (
    MNIST_TRAIN,
    Experiment,
    GpuJob,
    PaperPart,
    TableSpec,
    coef_name,
    mnist_batch_check,
    schema,
)

SETTINGS = schema("""
    type: object
    additionalProperties: false
    required: [epochs]
    properties:
      coefficients:
        type: array
        minItems: 1
        uniqueItems: true
        items: {type: number, minimum: 0, maximum: 1000}
        default: [0, 0.02, 0.1, 0.5, 1, 2, 10, 20]
        description: KL coefficients c (the KL-coefficient post).
      epochs:
        type: integer
        minimum: 1
        description: Training epochs per coefficient (the post used 40).
      replicates:
        type: integer
        minimum: 1
        maximum: 20
        default: 1
        description: Training runs per coefficient, with seeds seed, seed+1, ... (the table shows mean and spread).
      batch_size: {type: integer, minimum: 1, default: 128}
      learning_rate: {type: number, exclusiveMinimum: 0, maximum: 1, default: 0.001}
      n_train:
        type: [integer, "null"]
        minimum: 1
        maximum: 60000
        default: null
        description: First n training images (null = all 60,000).
      n_test:
        type: [integer, "null"]
        minimum: 1
        maximum: 10000
        default: null
        description: First n test images (null = all 10,000).
      z_dim: {type: integer, const: 2, default: 2, description: "2-D latent space (the figures need it)."}
      intermediate_dim: {type: integer, minimum: 1, default: 512}
      reference_samples: {type: integer, minimum: 1, default: 5000}
      manifold_n: {type: integer, minimum: 2, default: 30}
      manifold_limit: {type: number, exclusiveMinimum: 0, default: 3.0}
""")

TOLERANCES = schema("""
    kl_abs:
      type: number
      exclusiveMinimum: 0
      default: 1.0
      description: Absolute tolerance, in nats, on E1's KL divergence.
""")


def part_targets(config: dict, results: str) -> list[str]:
    """The paper part's targets: ``metrics.json``, ``history.csv``, ``latent.npz`` and ``grid.npz`` of
    every replicate and c."""
    e1 = config["e1"]
    return [f"{results}/e1/r{r}/c{coef_name(c)}/{f}" for r in range(int(e1["replicates"]))
            for c in e1["coefficients"] for f in ("metrics.json", "history.csv", "latent.npz", "grid.npz")]


def part_work(config: dict) -> dict[str, float]:
    """The paper part's jobs: every training and its analysis, the initial weights per replicate."""
    e1 = config["e1"]
    runs = int(e1["replicates"]) * len(e1["coefficients"])
    return {"e1_train": runs, "e1_analyse": runs, "e1_init_weights": int(e1["replicates"])}


EXPERIMENT = Experiment(
    id="e1",
    title="E1, the KL-coefficient post: test losses per KL coefficient c",
    settings=SETTINGS,
    tolerances=TOLERANCES,
    tables={"e1_losses": TableSpec(keys=("c",), n="replicates", shown=("loss", "kl_loss"))},
    gpu={"e1_train": GpuJob(threads=2)},
    part_rules=("mnist_canonical", "e1_init_weights", "e1_train", "e1_analyse"),
    paper_parts=(PaperPart("e1", "E1: every replicate of every c, with latent codes and decoder manifolds",
                           part_targets, part_work),),
    train_images=MNIST_TRAIN,
    check=mnist_batch_check("e1", post_batch=128),
    # the backend study: E1's model on TensorFlow and JAX (`make backend-study`)
    modules=("src/klvae/experiments/backend_study.py", "src/klvae/figures/study.py", "src/klvae/report/study.py",
             "src/klvae/bundle/study.py", "workflow/rules/study.smk", "report/_backend_study.qmd",
             "report/_backend_study_notrun.qmd", "report/_backend_study_results.qmd"),
)
