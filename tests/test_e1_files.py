"""E1's analysis files carry their KL coefficient: the figures and the report read c from
``latent.npz``/``grid.npz`` instead of a list of coefficients that must line up with the files."""

from __future__ import annotations

import numpy as np
import pytest

from klvae.io import c_of


def _tiny_mnist(path) -> str:
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 256, (16, 28, 28), dtype=np.uint8),
             y_train=np.arange(16, dtype=np.uint8) % 10,
             x_test=rng.integers(0, 256, (12, 28, 28), dtype=np.uint8), y_test=np.arange(12, dtype=np.uint8) % 10)
    return str(path)


def test_analyse_stores_the_models_kl_weight_and_the_figures_title_with_it(tmp_path):
    from klvae.experiments import e1
    from klvae.figures import e1 as fig
    from klvae.models.mlp import build_mlp_vae

    model = tmp_path / "model.keras"
    build_mlp_vae(c=0.02, z_dim=2, intermediate_dim=8, seed=0).save(model)
    latent, grid = tmp_path / "latent.npz", tmp_path / "grid.npz"
    e1.analyse(model=str(model), mnist=_tiny_mnist(tmp_path / "mnist.npz"), latent=str(latent), grid=str(grid), n=4)
    with np.load(latent) as d:
        assert d["c"].dtype == np.float64 and c_of(d) == pytest.approx(0.02)
        assert d["z_mean"].shape == (12, 2) and d["labels"].shape == (12,)
    with np.load(grid) as d:
        assert c_of(d) == pytest.approx(0.02) and d["images"].shape == (4, 4, 28, 28)
    fig.latent_scatter(latent=str(latent), out=str(tmp_path / "scatter.png"))
    fig.manifold_panel(grids=[str(grid)], out=str(tmp_path / "panel.png"))
    assert (tmp_path / "scatter.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "panel.png").read_bytes()[:4] == b"\x89PNG"


def test_a_latent_file_without_its_coefficient_says_to_rerun_the_analysis(tmp_path):
    from klvae.figures import e1 as fig

    old = tmp_path / "latent.npz"
    np.savez(old, z_mean=np.zeros((3, 2), np.float32), z_log_var=np.zeros((3, 2), np.float32),
             labels=np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match=r"latent\.npz has no 'c'.*rerun e1_analyse"):
        fig.scatter_panel(latents=[str(old)], out=str(tmp_path / "panel.png"))


def test_loss_curves_label_each_history_with_its_own_coefficient(tmp_path):
    import matplotlib

    from klvae.figures import e1 as fig

    paths = []
    for c in (0.0, 20.0):
        path = tmp_path / f"c{c}.csv"
        path.write_text("epoch,c,kl_loss,loss,reconstruction_loss\n"
                        f"1,{c},50.0,200.0,150.0\n2,{c},40.0,190.0,150.0\n")
        paths.append(str(path))
    seen = []
    original = matplotlib.axes.Axes.plot

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("label"))
        return original(self, *args, **kwargs)

    matplotlib.axes.Axes.plot = spy
    try:
        fig.loss_curves(histories=paths, out=str(tmp_path / "curves.png"))
    finally:
        matplotlib.axes.Axes.plot = original
    assert set(seen) == {"c = 0", "c = 20"}
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    old = tmp_path / "old.csv"
    old.write_text("epoch,kl_loss,loss,reconstruction_loss\n1,50.0,200.0,150.0\n")
    with pytest.raises(ValueError, match=r"old\.csv has no 'c' column.*rerun e1_train"):
        fig.loss_curves(histories=[str(old)], out=str(tmp_path / "x.png"))
