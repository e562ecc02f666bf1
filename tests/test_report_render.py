"""The pandoc render path's shortcode expansion and table helper."""

import pytest

from klvae.report.render import ReportError, expand_shortcodes
from klvae.report.tables import markdown_table


def test_include_and_var_are_expanded(tmp_path):
    (tmp_path / "_part.qmd").write_text("---\ntitle: x\n---\nepochs: {{< var e1.epochs >}}\n")
    (tmp_path / "index.qmd").write_text("# A\n{{< include _part.qmd >}}\n")
    out = expand_shortcodes(tmp_path / "index.qmd", {"e1": {"epochs": 7}})
    assert "epochs: 7" in out and "title: x" not in out


def test_undefined_variable_names_the_key_and_file(tmp_path):
    (tmp_path / "index.qmd").write_text("{{< var e1.nope >}}")
    with pytest.raises(ReportError, match=r"e1\.nope.*_variables\.yml"):
        expand_shortcodes(tmp_path / "index.qmd", {"e1": {}})


def test_missing_include_is_an_error(tmp_path):
    (tmp_path / "index.qmd").write_text("{{< include _gone.md >}}")
    with pytest.raises(ReportError, match="_gone.md"):
        expand_shortcodes(tmp_path / "index.qmd", {})


def test_markdown_table_caption_and_label():
    md = markdown_table(["c", "loss"], [["0", "1.50"]], "Caption", "tbl-x")
    assert md.splitlines()[0] == "| c | loss |"
    assert md.rstrip().endswith(": Caption {#tbl-x}")
    with pytest.raises(ValueError, match="tbl-"):
        markdown_table(["c"], [["0"]], "c", "fig-x")


def test_git_commit_outside_a_checkout_uses_the_exported_commit(tmp_path, monkeypatch):
    """A tree copied to a GPU machine has no .git: the commit exported by device_run.sh is used."""
    from klvae.report.provenance import git_commit

    monkeypatch.delenv("KLVAE_GIT_COMMIT", raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert git_commit(tmp_path) == "not a git checkout"
    monkeypatch.setenv("KLVAE_GIT_COMMIT", "0123456789ab")
    assert git_commit(tmp_path) == "0123456789ab (from KLVAE_GIT_COMMIT)"
