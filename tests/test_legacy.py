"""Bundles packed before a rename still render: old table columns and cells get today's names when read."""

from __future__ import annotations

import tarfile

import pytest

from conftest import REPO
from klvae.legacy import migrate_csv, new_column_name


def test_old_e1_and_e2_columns_get_todays_names():
    old = b"kl_weight,loss,seed_loss,seed_reconstruction,seed_kl\n0,141.0,141.54,141.54,506.82\n"
    assert migrate_csv("tables/e1_losses.csv", old) == (
        b"c,loss,post_loss,post_reconstruction,post_kl\n0,141.0,141.54,141.54,506.82\n")
    old = b"strategy,seed_post,seed_form_keras2,seed_form_keras3_jax\nend_layer,IV,yes,no\n"
    assert migrate_csv("tables/e2_compatibility.csv", old).split(b"\n")[0] == (
        b"strategy,post,post_form_keras2,post_form_keras3_jax")


def test_seed_is_renamed_only_where_it_meant_a_post():
    # the study's Welch table held the post's value in a column "seed"; its runs table holds the random seed
    assert new_column_name("study/backend/tables/backends.csv", "seed") == "post"
    assert new_column_name("study/backend/tables/runs.csv", "seed") == "seed"
    long = b"strategy,post,form,runs\nend_layer,IV,seed,yes\nend_layer,IV,project,yes\n"
    assert migrate_csv("tables/e2_compatibility_long.csv", long) == (
        b"strategy,post,form,runs\nend_layer,IV,post,yes\nend_layer,IV,project,yes\n")


def test_a_current_table_is_returned_unchanged_and_a_collision_is_refused():
    data = b"c,loss\r\n0,1.5\r\n"
    assert migrate_csv("tables/e1_losses.csv", data) is data
    with pytest.raises(ValueError, match=r"tables/e1_losses\.csv: renaming old columns"):
        migrate_csv("tables/e1_losses.csv", b"kl_weight,c\n1,1\n")


def test_the_committed_study_bundle_reads_with_todays_names():
    archive = next((REPO / "bundles").glob("backend-study-*.tar.gz"))
    with tarfile.open(archive) as tar:
        data = tar.extractfile("study/backend/tables/backends.csv").read()
    header = migrate_csv("tables/backends.csv", data).split(b"\n")[0].decode().split(",")
    assert header[0] == "c" and "post" in header and "post_inside_jax" in header
    assert not [h for h in header if "seed" in h or h == "kl_weight"]
