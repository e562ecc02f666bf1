"""E2, posts IV-VIII: the five ways of adding the KL loss in Keras 3 (a conv VAE per strategy and z_dim).

Its rules are ``workflow/rules/e2.smk``; the KL-loss strategies (``src/klvae/strategies/``) belong to it.
"""

from __future__ import annotations

import math

from klvae.registry.spec import MNIST_TRAIN, Experiment, GpuJob, PaperPart, TableSpec, mnist_batch_check, schema

SETTINGS = schema("""
    type: object
    additionalProperties: false
    required: [epochs]
    properties:
      strategies:
        type: array
        minItems: 1
        uniqueItems: true
        items: {type: string, enum: [end_layer, encoder_layer, tensor_transfer, model_add_loss, gradient_tape]}
        default: [end_layer, encoder_layer, tensor_transfer, model_add_loss, gradient_tape]
        description: KL-loss strategies (the posts' names, posts IV-VIII); must include gradient_tape (the reference).
        contains: {const: gradient_tape}
      z_dims:
        type: array
        minItems: 1
        uniqueItems: true
        items: {type: integer, minimum: 1, maximum: 512}
        default: [2, 12]
      latent_z_dim:
        {type: integer, minimum: 2, maximum: 2, default: 2, description: "z_dim of the latent scatters (2-D)."}
      reconstruction_z_dim: {type: integer, minimum: 1, default: 12}
      timing_z_dim: {type: integer, minimum: 1, default: 12}
      epochs: {type: integer, minimum: 1, description: "Training epochs per strategy and z_dim (the posts used 37)."}
      post_log_epochs:
        type: integer
        minimum: 1
        default: 6
        description: >
          Epochs of `model_add_loss` at z_dim 12 for post VII's training log (epochs 3-6). Where
          e2.epochs is smaller, rule e2_post_log trains that one run this long.
      batch_size: {type: integer, minimum: 1, default: 256}
      fact:
        type: number
        exclusiveMinimum: 0
        maximum: 1
        default: 0.00065
        description: >
          The posts' KL weight `fact`, against the mean BCE (klvae.reference.E2_POST_FACT = 6.5e-4,
          posts V-VII; its β on E1's scale: the glossary of config/README.md).
      learning_rate: {type: number, exclusiveMinimum: 0, maximum: 1, default: 0.001}
      n_train: {type: [integer, "null"], minimum: 1, maximum: 60000, default: null}
      n_test: {type: [integer, "null"], minimum: 1, maximum: 10000, default: null}
      n_reconstructions: {type: integer, minimum: 1, maximum: 50, default: 10}
      compatibility:
        type: object
        additionalProperties: false
        default: {}
        properties:
          n_images: {type: integer, minimum: 1, default: 128}
          batch_size: {type: integer, minimum: 1, default: 32}
          z_dim: {type: integer, minimum: 1, default: 2}
      equivalence:
        type: object
        additionalProperties: false
        default: {}
        properties:
          batch_size: {type: integer, minimum: 1, default: 64}
          rtol: {type: number, exclusiveMinimum: 0, default: 0.0001}
          atol: {type: number, exclusiveMinimum: 0, default: 0.000001}
          latent_spread: {type: number, minimum: 0, default: 2.0}
      timing:
        type: object
        additionalProperties: false
        default: {}
        properties:
          n_windows: {type: integer, minimum: 1, default: 7}
          steps_per_window: {type: integer, minimum: 2, default: 15}
          warmup_steps: {type: integer, minimum: 1, default: 20}
""")

TOLERANCES = schema("""
    kl_rel:
      type: number
      exclusiveMinimum: 0
      default: 0.05
      description: Relative tolerance on post VII's KL_mean (E2; the post logs fact * KL_mean to two digits).
    latent_abs:
      type: number
      exclusiveMinimum: 0
      default: 1.0
      description: Absolute tolerance, in latent units, on each end of post IV's z_dim-2 latent extent.
    latent_quantile:
      type: number
      minimum: 0
      maximum: 0.2
      default: 0.005
      description: >
        Our latent extent is the q and 1 - q quantile of the test-set z_mean per axis (the post's
        box leaves out outliers such as its 6s; 0 = min and max).
    ratio_abs:
      type: number
      exclusiveMinimum: 0
      default: 0.15
      description: Absolute tolerance on ratios of step times between strategies (posts IV and VII).
""")
#: The paper parts that train: E2's ten trainings two per part. Trainings run one thread each
#: (``threads.train``), so two fill a 2-core machine for one training's time (about 1.1 h at
#: 37 epochs); four would need two rounds and more than the part's two hours.
TRAINING_PARTS = ("e2-a", "e2-b", "e2-c", "e2-d", "e2-e")


def runs(config: dict) -> list[tuple[int, str]]:
    """E2's trainings as ``(z_dim, strategy)``, z_dim-major, in the config's order."""
    e2 = config["e2"]
    return [(int(z), s) for z in e2["z_dims"] for s in e2["strategies"]]


def part_runs(part: str, trainings: list) -> list:
    """The trainings of part ``part`` (``e2-a`` ... ``e2-e``): consecutive, as even as ``len(trainings)`` allows.

    Raises:
        ValueError: ``part`` is not one of :data:`TRAINING_PARTS`.
    """
    n, k = len(trainings), len(TRAINING_PARTS)
    i = TRAINING_PARTS.index(part)
    return trainings[math.ceil(n * i / k):math.ceil(n * (i + 1) / k)]


def _training_part(part: str) -> PaperPart:
    def targets(config: dict, results: str) -> list[str]:
        return [f"{results}/e2/z{z}/{s}/{f}" for z, s in part_runs(part, runs(config))
                for f in ("metrics.json", "history.csv", "latent.npz", "recon.npz")]

    def work(config: dict) -> dict[str, float]:
        n = len(part_runs(part, runs(config)))
        return {"e2_train": n, "e2_analyse": n}

    i = TRAINING_PARTS.index(part)
    what = (f"E2: trainings {2 * i + 1}-{2 * i + 2} of the paper's 10 (z_dim-major, strategies in the "
            "config's order), latents and reconstructions")
    return PaperPart(part, what, targets, work)


def _timing_targets(config: dict, results: str) -> list[str]:
    return [f"{results}/tables/{t}.csv" for t in ("e2_timing", "e2_timing_windows", "e2_equivalence",
                                                  "e2_compatibility", "e2_compatibility_long")]


EXPERIMENT = Experiment(
    id="e2",
    title="E2, posts IV-VIII: training log, latent extent and timings",
    settings=SETTINGS,
    tolerances=TOLERANCES,
    tables={
        "e2_metrics": TableSpec(keys=("z_dim", "strategy"), shown=("test_loss",)),
        "e2_equivalence": TableSpec(keys=("z_dim", "strategy")),
        "e2_timing": TableSpec(keys=("strategy",)),
        "e2_timing_windows": TableSpec(keys=("window", "strategy")),
        "e2_compatibility": TableSpec(keys=("strategy",)),
        "e2_compatibility_long": TableSpec(
            keys=("strategy", "form", "keras_flavour", "backend"),
            values=("runs", "stage", "exception", "steps", "final_loss", "saves_keras"),
            # "seed" means only the random seed: the posts' own code is the form "post"
            renamed_cells={"form": {"seed": "post"}}),
    },
    gpu={"e2_train": GpuJob(threads=2), "e2_timing": GpuJob(whole_card=True)},
    part_rules=("mnist_canonical", "e2_init_weights", "e2_train", "e2_analyse", "e2_timing", "e2_equivalence",
                "e2_compatibility"),
    paper_parts=(*(_training_part(p) for p in TRAINING_PARTS),
                 PaperPart("e2-timing", "E2: timing benchmark, equivalence check, compatibility trials",
                           _timing_targets, lambda config: {"e2_timing": 1, "e2_equivalence": 1,
                                                            "e2_compatibility": 1}, timing=True)),
    train_images=MNIST_TRAIN,
    check=mnist_batch_check("e2", post_batch=256),
    modules=("src/klvae/strategies/",),
    # the list of the variants the compatibility trials also tried, with its lead-in, when there are any
    includes={"e2_compat_variants.md": (("variants=yes", "_e2_compat_variants.qmd"),)},
)
