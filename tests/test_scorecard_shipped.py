"""The scorecard's column of the shipped run's verdicts (klvae.report.shipped): a paper bundle holding
only E1 is verified and extracted, E1's own scorecard function judges its data anew under this run's
tolerances, and rule report_scorecard's function puts those verdicts beside ours."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from klvae import reference as ref
from klvae.bundle import core as kb
from klvae.report import shipped as sh
from klvae.report.e1 import write_e1_scorecard
from klvae.report.escape import md_text
from klvae.report.scorecard import COLUMNS, SHIPPED_COLUMNS, write_scorecard
from test_bundle_compare import CONFIG, _run, fake_run
from test_scorecard import TITLES, fake_outputs, tolerances, write_parts

RESULTS = "results/quick"  # this run's results folder, as the rules name it
E1_FUNC = "klvae.report.e1:write_e1_scorecard"


def shipped_e1_table(kl_scale_c0: float = 1.0) -> str:
    """The shipped run's E1 table: the post's numbers, 40 epochs, the full data set, 3 replicates with
    sd 1 % of the value -- except c = 2's test loss, 10 % above the post's (so it differs), and c = 0's
    KL times ``kl_scale_c0``."""
    rows = []
    for c, loss, rec, kl in ref.E1_POST_TABLE:
        loss = loss * 1.1 if c == 2.0 else loss
        kl = kl * kl_scale_c0 if c == 0.0 else kl
        rows.append({"c": c, "loss": loss, "reconstruction_loss": rec, "kl_loss": kl, "loss_sd": 0.01 * loss,
                     "reconstruction_loss_sd": 0.01 * rec, "kl_loss_sd": 0.01 * kl, "replicates": 3,
                     "epochs": 40, "n_train": 60000, "n_test": 10000})
    return pd.DataFrame(rows).to_csv(index=False)


def paper_bundle(tmp_path: Path, table: str | None = None) -> Path:
    """A paper-profile bundle holding only E1, its table :func:`shipped_e1_table`."""
    results = fake_run(tmp_path / "paper-run", experiments=("e1",),
                       run={**_run(backend="tensorflow"), "profile": "paper"}, config={**CONFIG, "profile": "paper"},
                       tables={"tables/e1_losses.csv": table or shipped_e1_table()})
    return Path(kb.create_bundle(results, out_dir=tmp_path / "bundles", created_utc="2025-01-02T04:00:00Z")["path"])


def judged_again(tmp_path: Path, archive: Path) -> tuple[dict, str]:
    """What the rules do: the facts of the bundle, E1's inputs pointed at its data, the data extracted,
    and E1's scorecard function run on them; returns the facts and the shipped part."""
    facts = sh.reference_facts(archive)
    dest = f"{tmp_path}/{RESULTS}/shipped/data"
    inputs = sh.shipped_inputs(E1_FUNC, {"e1_table": f"{RESULTS}/tables/e1_losses.csv",
                                         "spreads": f"{RESULTS}/report/generated/study_spreads.csv"},
                               RESULTS, dest, facts["members"])
    members = sh.needed_members({"e1": inputs}, dest)
    kb.extract_bundle(archive, dest, replace=True, expected_manifest_sha256=facts["manifest_sha256"], only=members)
    part = str(tmp_path / "shipped_scorecard_e1.csv")
    write_e1_scorecard(part, inputs["e1_table"], tolerances(), facts["profile"], facts["backend"])
    return facts, part


def test_inputs_point_at_the_bundles_data_and_keep_this_runs_rules():
    members = ["tables/e1_losses.csv", "report/generated/run.json"]
    got = sh.shipped_inputs(E1_FUNC, {"e1_table": f"{RESULTS}/tables/e1_losses.csv",
                                      "spreads": f"{RESULTS}/report/generated/study_spreads.csv"},
                            RESULTS, "S", members)
    assert got == {"e1_table": "S/tables/e1_losses.csv", "spreads": f"{RESULTS}/report/generated/study_spreads.csv"}
    assert sh.needed_members({"e1": got}, "S") == ["tables/e1_losses.csv"]
    # a required input the bundle lacks: the experiment cannot be judged from it
    assert sh.shipped_inputs(E1_FUNC, {"e1_table": f"{RESULTS}/tables/e1_losses.csv"}, RESULTS, "S", []) is None
    # an optional one is left out (the function's default)
    assert sh.shipped_inputs(E1_FUNC, {"e1_table": f"{RESULTS}/tables/e1_losses.csv",
                                       "spreads": f"{RESULTS}/e1/spreads.csv"}, RESULTS, "S", members) == \
        {"e1_table": "S/tables/e1_losses.csv"}


def test_shipped_column_judges_e1_anew_and_says_e2_e3_are_not_in_the_bundle(tmp_path):
    archive = paper_bundle(tmp_path)
    facts, shipped_part = judged_again(tmp_path, archive)
    assert facts["experiments"] == ["e1"] and facts["profile"] == "paper" and facts["backend"] == "tensorflow"
    assert (tmp_path / RESULTS / "shipped" / "data" / "tables" / "e1_losses.csv").is_file()
    assert not (tmp_path / RESULTS / "shipped" / "data" / "report").exists()  # only what the scorecard reads

    # this run: a quick-like run, one replicate, E1 10 % off the post
    parts = write_parts(tmp_path / "parts", **fake_outputs(tmp_path / "in", e1_scale=1.1), tolerances=tolerances(),
                        profile="quick")
    out = tmp_path / "out"
    write_scorecard(str(out / "scorecard.csv"), str(out / "scorecard.md"), str(out / "scorecard.vars.yml"), parts,
                    "quick", TITLES, shipped_md=str(out / "scorecard_shipped.md"), shipped_parts=[shipped_part],
                    shipped={k: facts[k] for k in ("name", "profile", "backend", "experiments")})
    t = pd.read_csv(out / "scorecard.csv", dtype=str, keep_default_na=False).set_index("id")
    assert tuple(t.reset_index().columns) == COLUMNS + SHIPPED_COLUMNS
    e1 = t[t["experiment"] == "E1"]
    assert len(e1) == 24 and (e1["shipped_n"] == "3").all() and (e1["shipped_note"] == "").all()
    # c = 1's loss: the post's 150.39 with sd 1.5039 over 3 runs, inside the log-scale PI -- reproduced
    row = t.loc["e1-c1-loss"]
    assert (row["shipped_verdict"], row["shipped_ours"], row["shipped_sd"]) == ("reproduced", "150.39", "1.50")
    lo, hi = map(float, row["shipped_interval"].split(" to "))
    assert lo < 150.39 < hi and row["shipped_basis"] == "prediction interval, n = 3"
    # c = 2's loss is 10 % above the post's: the shipped run differs; ours (one run, 10 % off) too
    assert t.loc["e1-c2-loss", "shipped_verdict"] == "differs"
    assert t.loc["e1-c2-loss", "shipped_ours"] == f"{156.17 * 1.1:.2f}"
    assert t.loc["e1-c2-rec", "shipped_verdict"] == "reproduced"
    assert t.loc["e1-c1-loss", "verdict"] == "differs"  # ours: 10 % off, a single run, ±2 %
    # E2 and E3 are not in the paper bundle yet
    for e in ("E2", "E3"):
        rows = t[t["experiment"] == e]
        assert len(rows) and (rows["shipped_verdict"] == "").all()
        assert (rows["shipped_note"] == "not in the paper bundle yet").all()

    md = (out / "scorecard.md").read_text()
    for e in ("e1", "e2", "e3"):
        block = re.search(r"((?:^\|.*\n)+)\n: .* \{#tbl-scorecard-" + e + r"\}$", md, re.M).group(1)
        header, _, *body = block.splitlines()
        assert [h.strip() for h in header.strip("|").split("|")][-3:] == ["verdict", "paper run", "note"]
        cells = [[c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))][-2] for line in body]
        if e == "e1":
            c1 = next(c for c, line in zip(cells, body, strict=True) if "c = 1: test loss" in line)
            assert c1 == f"reproduced: 150.39 ± 1.50 (n = 3), PI {lo:.2f}–{hi:.2f}"
            c2 = next(c for c, line in zip(cells, body, strict=True) if "c = 2: test loss" in line)
            assert c2.startswith(f"differs: {156.17 * 1.1:.2f} ± ") and "(n = 3), PI " in c2
        else:
            assert set(cells) == {"not in the paper bundle yet"}
    v = yaml.safe_load((out / "scorecard.vars.yml").read_text())["scorecard"]["shipped"]
    assert v["available"] == "yes" and v["reference"] == archive.name and v["column"] == "paper run"
    assert v["n_claims"] == 24 and v["n_not_held"] == len(t) - 24
    assert v["n_reproduced"] + v["n_differs"] + v["n_inconclusive"] == 24 and v["n_differs"] >= 1
    assert v["n_same"] + v["n_changed"] == 24
    # E2 and E3 are not in the shipped bundle: the chapter says so after the column's explanation
    assert (out / "scorecard_shipped.md").read_text().split() == [
        "{{<", "include", "/_scorecard_shipped.qmd", ">}}", "{{<", "include", "/_scorecard_shipped_not_held.qmd", ">}}"]
    # the chapter: the column is explained only where it is there
    text = " ".join(_chapter(out, tmp_path / "build").split())
    assert "The column *paper run* judges the same claims for the shipped run" in text
    assert (f"The shipped run has a verdict for 24 claims: reproduced {v['n_reproduced']}, differs {v['n_differs']}, "
            f"inconclusive {v['n_inconclusive']}, not comparable 0;") in text
    assert f"The {len(t) - 24} claims of experiments that the shipped bundle does not hold yet say so" in text


def _chapter(out: Path, build: Path) -> str:
    import shutil

    from klvae.report.render import expand_shortcodes
    from test_scorecard import REPO

    shutil.copytree(REPO / "report", build)
    (build / "_generated").mkdir()
    for name in ("scorecard.md", "scorecard_shipped.md"):
        (build / "_generated" / name).write_text((out / name).read_text())
    variables = {**yaml.safe_load((out / "scorecard.vars.yml").read_text()), "profile": "quick",
                 "scorecard_csv": "`tables/scorecard.csv`", "made_by": {"report_scorecard": "(rule report_scorecard)"}}
    return expand_shortcodes(build / "_scorecard.qmd", variables)


def test_without_a_shipped_run_there_is_no_column(tmp_path):
    parts = write_parts(tmp_path / "parts", **fake_outputs(tmp_path / "in"), tolerances=tolerances(), profile="quick")
    out = tmp_path / "out"
    write_scorecard(str(out / "scorecard.csv"), str(out / "scorecard.md"), str(out / "scorecard.vars.yml"), parts,
                    "quick", TITLES, shipped_md=str(out / "scorecard_shipped.md"))
    md = (out / "scorecard.md").read_text()
    assert "paper run" not in md and "not in the paper bundle" not in md
    assert (out / "scorecard_shipped.md").read_text() == ""
    t = pd.read_csv(out / "scorecard.csv", dtype=str, keep_default_na=False)
    assert (t[list(SHIPPED_COLUMNS)] == "").all().all()
    assert yaml.safe_load((out / "scorecard.vars.yml").read_text())["scorecard"]["shipped"] == {"available": "no"}
    text = " ".join(_chapter(out, tmp_path / "build").split())
    assert "judges the same claims for the shipped run" not in text and "{{<" not in text


@pytest.mark.parametrize("payload", ["<b>x</b>", "**x**", "[x](http://e.x)", "{{< var profile >}}", "`x` | y"])
def test_strings_of_the_shipped_run_are_text(tmp_path, payload):
    """A shipped part's text (a number that is not one, a verdict that is no verdict, the bundle's name)
    reaches the table and the variables only as escaped text."""
    parts = write_parts(tmp_path / "parts", **fake_outputs(tmp_path / "in"), tolerances=tolerances(), profile="quick")
    hostile = pd.read_csv(parts[0], dtype=str, keep_default_na=False)
    hostile.loc[0, "ours"] = payload
    hostile.loc[1, "verdict"] = payload
    hostile.loc[1, "sd"] = payload
    hostile.to_csv(tmp_path / "hostile.csv", index=False)
    out = tmp_path / "out"
    write_scorecard(str(out / "scorecard.csv"), str(out / "scorecard.md"), str(out / "scorecard.vars.yml"), parts,
                    "quick", TITLES, shipped_md=str(out / "scorecard_shipped.md"),
                    shipped_parts=[str(tmp_path / "hostile.csv")],
                    shipped={"name": f"klvae-paper-{payload}.tar.gz", "profile": "paper", "backend": payload,
                             "experiments": ["e1"]})
    md = (out / "scorecard.md").read_text()
    escaped = md_text(payload)
    assert escaped != payload and payload not in md
    table = md.split("{#tbl-scorecard-e1}")[0]
    assert f": {escaped} (n = 1)" in table  # the number that is none, as text
    assert f"verdict {escaped}: " in table  # the verdict that is none, named as such
    assert md_text(f"klvae-paper-{payload}") not in md  # the bundle's name is in the variables, not the table
    v = yaml.safe_load((out / "scorecard.vars.yml").read_text())["scorecard"]["shipped"]
    assert v["reference"] == md_text(f"klvae-paper-{payload}.tar.gz") and v["backend"] == md_text(payload)


def test_a_list_input_becomes_the_shipped_runs_own_runs_of_that_kind():
    """This run: z_dims 2 and 12, two strategies, and post VII's longer log run; the shipped run: z_dims
    2, 12 and 32, the same strategies, no longer log run (its main runs are long enough), and files
    of other kinds beside them."""
    ours = [f"e2/z{z}/{s}/metrics.json" for z in (2, 12) for s in ("end_layer", "model_add_loss")]
    ours.append("e2/post_log/z12/model_add_loss/metrics.json")
    theirs = [f"e2/z{z}/{s}/metrics.json" for z in (2, 12, 32) for s in ("end_layer", "model_add_loss")]
    other = ["e2/z2/end_layer/history.csv", "e2/z2/other_strategy/metrics.json", "e2/zz/end_layer/metrics.json",
             "e2/timing/metrics.json", "e1/r0/c0.5/metrics.json"]
    assert sh.same_kind(ours, theirs + other) == sorted(theirs)
    # one file is that file only
    assert sh.same_kind(["e2/z2/end_layer/latent.npz"], ["e2/z2/end_layer/latent.npz", "e2/z12/end_layer/latent.npz"]) \
        == ["e2/z2/end_layer/latent.npz"]
    # a constant component stays: the latents at this run's latent z_dim, every strategy's
    latents = [f"e2/z2/{s}/latent.npz" for s in ("end_layer", "model_add_loss")]
    assert sh.same_kind(latents, [*latents, "e2/z12/end_layer/latent.npz"]) == sorted(latents)
    got = sh.shipped_inputs("klvae.report.e2:write_e2_scorecard",
                            {"e2_runs": [f"{RESULTS}/{p}" for p in ours], "e2_histories": [],
                             "e2_latents": [f"{RESULTS}/{p}" for p in latents],
                             "e2_timing": f"{RESULTS}/tables/e2_timing.csv"},
                            RESULTS, "S", [*theirs, *latents, "tables/e2_timing.csv"])
    assert got == {"e2_runs": [f"S/{p}" for p in sorted(theirs)], "e2_histories": [],
                   "e2_latents": [f"S/{p}" for p in sorted(latents)], "e2_timing": "S/tables/e2_timing.csv"}
    # none of a list's kind in the bundle: E2 cannot be judged from it
    assert sh.shipped_inputs("klvae.report.e2:write_e2_scorecard", {"e2_runs": [f"{RESULTS}/{p}" for p in ours]},
                             RESULTS, "S", ["tables/e2_timing.csv"]) is None
