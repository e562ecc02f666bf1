"""The posts' reference numbers (docs/sources.md), kept in one place for tables and the scorecard.

These are the published numbers the report compares against -- inputs to comparison, not
results. Sources are named per constant.
"""

#: The KL-coefficient post ("influence of the KL coefficient"), 40 epochs, test set:
#: (c, test loss, reconstruction, KL), nats per sample.
E1_POST_TABLE = [
    (0.0, 141.54, 141.54, 506.82),
    (0.02, 143.99, 143.38, 30.60),
    (0.1, 142.63, 141.41, 12.22),
    (0.5, 147.36, 143.77, 7.17),
    (1.0, 150.39, 144.17, 6.21),
    (2.0, 156.17, 146.00, 5.09),
    (10.0, 186.47, 161.85, 2.46),
    (20.0, 203.31, 189.72, 0.68),
]
#: Epochs behind :data:`E1_POST_TABLE`.
E1_POST_EPOCHS = 40

# --- E2 (post VII, posts IV-VIII) ---------------------------------------------------
#: The posts' E2 settings: KL weight fact, batch size, epochs.
E2_POST_FACT = 6.5e-4
E2_POST_BATCH_SIZE = 256
E2_POST_EPOCHS = 37
#: Post VII (z_dim 12, model_add_loss, batch 256, GTX 960): the Keras log of epochs 3-6.
#: The post's ``kl`` metric is ``fact * KL_mean``; ``kl_mean`` converts it to this project's
#: unscaled ``kl_loss`` (KL_mean): 0.0044 / 6.5e-4 = 6.77.
POST_VII_LOG = {"epoch": [3, 4, 5, 6], "loss": [0.1135, 0.1114, 0.1098, 0.1085],
                "reconstruction_loss": [0.1091, 0.1070, 0.1055, 0.1041], "kl_scaled": [0.0044] * 4,
                "kl_mean": [0.0044 / E2_POST_FACT] * 4, "z_dim": 12, "ms_per_step": 44.0, "s_per_epoch": 10.0,
                "device": "GTX 960"}
#: Post IV (z_dim 2): the test set's z_mean fills -3 < x < 4.5, -4 < y < 3.5.
POST_LATENT_EXTENT = {"x": (-3.0, 4.5), "y": (-4.0, 3.5)}
#: Post IV: that extent was seen "after 40 epochs" (end layer, batch 128, fact 6.5e-4), "with the
#: exception of 6-digits".
POST_LATENT_EXTENT_EPOCHS = 40
#: Post IV: the end layer took ~15 s/epoch, the encoder layer 10-11 s/epoch (same GPU).
POST_IV_S_PER_EPOCH = {"end_layer": 15.0, "encoder_layer": 10.5}
#: Post VII: model.add_loss() "may under certain conditions reduce performance by roughly a
#: factor between 1.3 and 1.5".
POST_VII_SLOWDOWN = (1.3, 1.5)

# --- E3 (post IX: post IX and the post on the AE latent space) ---------------------------
#: Post IX: ~240 s to preprocess 200,000 images, single-threaded (incl. writing JPEGs at q95).
POST_PREPROCESS_SECONDS = 240.0
POST_PREPROCESS_IMAGES = 200_000
#: Post IX: 170,000 training images held as one float32 array: 18.8 GB of data (18-20 GB RAM).
POST_N_TRAIN = 170_000
POST_FLOAT32_GB = 18.8
#: AE-latent post: "most of the data points in the latent space were created in a region of 0 < x_i < 20".
POST_AE_LATENT_RANGE = (0.0, 20.0)


def post_variables() -> dict:
    """The posts' numbers the report's prose quotes, formatted, for ``_variables.yml`` (key ``post_claims``)."""
    lo, hi = POST_VII_SLOWDOWN
    ex = POST_LATENT_EXTENT
    return {
        "e1_epochs": E1_POST_EPOCHS,
        "e2_epochs": E2_POST_EPOCHS, "e2_fact": f"{E2_POST_FACT:g}",
        "vii_slowdown": f"{lo:g}–{hi:g}", "vii_ms_per_step": f"{POST_VII_LOG['ms_per_step']:g}",
        "vii_device": POST_VII_LOG["device"],
        "iv_end_layer_s": f"{POST_IV_S_PER_EPOCH['end_layer']:g}", "iv_encoder_layer_s": "10–11",
        "latent_x": f"{ex['x'][0]:g} < z[0] < {ex['x'][1]:g}", "latent_y": f"{ex['y'][0]:g} < z[1] < {ex['y'][1]:g}",
        "preprocess_s": f"{POST_PREPROCESS_SECONDS:g}", "preprocess_images": f"{POST_PREPROCESS_IMAGES:,}",
        "n_train_faces": f"{POST_N_TRAIN:,}", "float32_gb": f"{POST_FLOAT32_GB:g}",
        "ae_latent_range": f"{POST_AE_LATENT_RANGE[0]:g} < z_i < {POST_AE_LATENT_RANGE[1]:g}",
    }
