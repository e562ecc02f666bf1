"""No silent plumbing: ``workflow/scripts/call.py`` passes every named input and output of a rule
to its function, and a name the function has no parameter for is an error -- unless the input
is declared a dependency only (``library_call(..., deps_only=[...])``)."""

from __future__ import annotations

import importlib
import os
import re
import runpy
import subprocess
import sys

import pytest

from conftest import REPO

CALL = runpy.run_path(str(REPO / "workflow" / "scripts" / "call.py"), run_name="klvae_call")
call_kwargs, CallError, unnamed_files = CALL["call_kwargs"], CALL["CallError"], CALL["unnamed_files"]


def write_methods(md, variables, mnist_provenance, config, threads=1):
    """A stand-in with the shape of a rule's function."""


FUNC = "klvae.report.methods:write_methods"
INPUTS = {"mnist_provenance": "p.json", "after": ["a.png", "b.csv"]}
OUTPUTS = {"md": "m.md", "variables": "v.yml"}


def test_a_named_input_the_function_does_not_take_is_an_error_naming_rule_input_and_parameters():
    with pytest.raises(CallError) as err:
        call_kwargs("report_methods", FUNC, write_methods, INPUTS, OUTPUTS, {"config": {}})
    assert str(err.value) == (
        "rule report_methods: named input 'after' is not a parameter of klvae.report.methods:write_methods. "
        "Rename each to the parameter that should receive it, or, if the job only waits for it, declare it a "
        "dependency only: **library_call('klvae.report.methods:write_methods', deps_only=['after']). "
        "klvae.report.methods:write_methods accepts: md, variables, mnist_provenance, config, threads.")
    with pytest.raises(CallError, match=re.escape(
            "rule r: named inputs 'sources', 'after' are not parameters of klvae.report.methods:write_methods. "
            "Rename each to")):
        call_kwargs("r", FUNC, write_methods, {"sources": "s", **INPUTS}, OUTPUTS)


def test_a_dependency_only_input_is_passed_to_no_one():
    kwargs = call_kwargs("report_methods", FUNC, write_methods, INPUTS, OUTPUTS, {"config": {"seed": 1}},
                         deps_only=["after"], threads=3)
    assert kwargs == {"mnist_provenance": "p.json", "md": "m.md", "variables": "v.yml", "config": {"seed": 1},
                      "threads": 3}


def test_deps_only_must_name_an_input_the_function_does_not_take():
    with pytest.raises(CallError, match=r"^rule r: deps_only names 'aftr', which is not a named input of the rule "
                                        r"\(named inputs: mnist_provenance, after\); named input 'after' is not"):
        call_kwargs("r", FUNC, write_methods, INPUTS, OUTPUTS, deps_only=["aftr"])
    with pytest.raises(CallError, match=re.escape(
            "rule r: input 'mnist_provenance' is declared deps_only, but klvae.report.methods:write_methods has a "
            "parameter 'mnist_provenance': drop it from deps_only to pass it, or rename the input. ")):
        call_kwargs("r", FUNC, write_methods, INPUTS, OUTPUTS, deps_only=["after", "mnist_provenance"])


def test_a_named_output_the_function_does_not_take_is_an_error():
    with pytest.raises(CallError, match=re.escape(
            "rule r: named output 'pdf' is not a parameter of klvae.report.methods:write_methods, so nothing would "
            "write it. Rename it to the parameter that receives its path. klvae.report.methods:write_methods "
            "accepts: md, variables, mnist_provenance, config, threads.")):
        call_kwargs("r", FUNC, write_methods, {"mnist_provenance": "p.json"}, {**OUTPUTS, "pdf": "x.pdf"})


def test_threads_and_kwargs_as_before():
    def f(csv, threads=1, n=1):
        """Takes threads."""

    def g(csv, **rest):
        """Takes anything."""

    # the job's threads win over a `threads` in params.kwargs (as call.py always did)
    assert call_kwargs("r", "m:f", f, {}, {"csv": "t.csv"}, {"threads": 1, "n": 2}, threads=4) == \
        {"csv": "t.csv", "threads": 4, "n": 2}
    assert call_kwargs("r", "m:f", f, {}, {"csv": "t.csv"}, None, threads=None) == {"csv": "t.csv"}
    assert call_kwargs("r", "m:g", g, {"extra": "e.npz"}, {"csv": "t.csv"}, threads=2) == \
        {"extra": "e.npz", "csv": "t.csv", "threads": 2}


def test_an_unnamed_input_is_an_error_that_says_how_to_name_it():
    assert unnamed_files(["p.json", "a.png", "x.csv", "b.csv"], INPUTS) == ["x.csv"]
    assert unnamed_files(["p.json", "p.json"], {"a": "p.json", "b": ["p.json"]}) == []
    assert unnamed_files(["p.json", "p.json"], {"a": "p.json"}) == ["p.json"]
    with pytest.raises(CallError) as err:
        call_kwargs("report_methods", FUNC, write_methods, INPUTS, OUTPUTS, {"config": {}}, deps_only=["after"],
                    unnamed_inputs=["x.csv"])
    assert str(err.value) == (
        "rule report_methods: unnamed input 'x.csv': klvae.report.methods:write_methods would never see it. Name it "
        "after the parameter that should receive it (input: name=...), or, if the job only waits for it, name it "
        "and declare it a dependency only (deps_only). klvae.report.methods:write_methods accepts: md, variables, "
        "mnist_provenance, config, threads.")


def test_a_parameter_that_shadows_a_file_is_an_error():
    for kwargs, kind in (({"config": {}, "mnist_provenance": "other.json"}, "input"),
                         ({"config": {}, "md": "elsewhere.md"}, "output")):
        name = next(k for k in kwargs if k != "config")
        with pytest.raises(CallError, match=re.escape(
                f"rule r: params.kwargs[{name!r}] has the name of a named {kind} of the rule: one of the two would "
                f"be lost. Rename the {kind} or the parameter.")):
            call_kwargs("r", FUNC, write_methods, INPUTS, OUTPUTS, kwargs, deps_only=["after"])


def test_every_rule_of_the_workflow_passes_all_its_named_files(tmp_path):
    """Parse the workflow (quick profile; nothing runs) and bind every rule's named files as call.py does."""
    from conftest import workflow_rules

    rules = {name: r for name, r in workflow_rules(tmp_path).items() if r["func"]}
    assert {"e3_decode", "report_backend", "report_methods", "report_render"} <= set(rules)
    assert rules["report_methods"]["deps_only"] == ["after"]
    for name, r in rules.items():
        module, func = r["func"].split(":")
        call_kwargs(name, r["func"], getattr(importlib.import_module(module), func),
                    {k: "in" for k in r["input_names"]}, {k: "out" for k in r["output_names"]},
                    {k: None for k in r["kwargs"]}, deps_only=r["deps_only"], unnamed_inputs=r["unnamed"])


_TINY_SNAKEFILE = """
rule wrote:
    input:
        extra="in.txt",
    output:
        path="out_{how}.txt",
    log:
        "log_{how}.txt",
    params:
        func="klvae.io:write_text",
        kwargs={"text": "written by call.py"},
        deps_only=lambda w: ["extra"] if w.how == "declared" else [],
    script:
        "CALL"
"""


@pytest.mark.parametrize("how", ["declared", "undeclared"])
def test_call_py_under_snakemake(tmp_path, how):
    """The real script under Snakemake's ``script:``: a declared dependency runs, an undeclared one fails the job."""
    (tmp_path / "Snakefile").write_text(_TINY_SNAKEFILE.replace("CALL", str(REPO / "workflow" / "scripts" / "call.py")))
    (tmp_path / "in.txt").write_text("a dependency\n")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--directory", str(tmp_path),
                           "--snakefile", str(tmp_path / "Snakefile"), f"out_{how}.txt"],
                          capture_output=True, text=True, timeout=300, env=env)
    log = (tmp_path / f"log_{how}.txt").read_text()
    if how == "declared":
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert (tmp_path / "out_declared.txt").read_text() == "written by call.py"
        assert "[wrote] klvae.io:write_text(path, text)" in log
    else:
        assert proc.returncode != 0 and not (tmp_path / "out_undeclared.txt").exists()
        assert ("CallError: rule wrote: named input 'extra' is not a parameter of klvae.io:write_text. Rename each "
                "to the parameter that should receive it") in log
        assert "klvae.io:write_text accepts: path, text." in log
