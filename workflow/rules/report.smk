# The report: one fragment rule per chapter (every number, as markdown + YAML variables),
# then the Quarto project in report/ rendered to results/<profile>/report/klvae.html and klvae.pdf.
# (Rendering from a results bundle instead uses workflow/rules/bundle.smk; see the Snakefile.)

REPORT_SOURCES = os.path.join(REPO_ROOT, "report")
REPORT_FILES = [f"{REPORT_DIR}/klvae.html", f"{REPORT_DIR}/klvae.pdf"]
# Every registered experiment's figures and tables (EXPERIMENTS, workflow/rules/common.smk).
ALL_FIGURES = registered("figures") + STUDY_REPORT_FIGURES
# The methods chapter summarises every job's benchmark file, so it waits for every result.
ALL_TABLES = registered("tables")
ALL_RESULTS = ALL_FIGURES + ALL_TABLES


rule report_backend:
    """The run's Keras backend, its versions and the accelerators it sees, for the report (which imports no Keras)."""
    input:
        # recorded at the end of the run's computations, as the rest of the run record (a redrawn
        # figure does not re-record the run)
        after=ALL_TABLES,
    output:
        facts=f"{REPORT_DIR}/backend.json",
    log:
        f"{LOGS}/report/backend.log",
    benchmark:
        f"{BENCH}/report/backend.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.backend:write_facts", deps_only=["after"]),
        backend=KERAS_BACKEND,  # rerun trigger: the facts name the backend
    script:
        CALL


rule run_record:
    """The run's record (Keras backend, hardware, host, date, commit, every package) and its config as used."""
    input:
        backend=rules.report_backend.output.facts,
        # written at the end of the run's computations, once every table is there (a redrawn
        # figure or a fresh checkout of the same code does not re-record the run)
        after=ALL_TABLES,
    output:
        # data that travel in a results bundle (klvae.bundle): a report rendered from the bundle
        # shows where and how the numbers were made, not where it was rendered
        run_json=f"{GEN}/run.json",
        config_yaml=f"{GEN}/config.yaml",
    log:
        f"{LOGS}/report/run_record.log",
    benchmark:
        f"{BENCH}/report/run_record.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.record:write_run_record", deps_only=["after"]),
        backend=KERAS_BACKEND,  # rerun trigger: the record names the backend
        kwargs={"config": config},
    script:
        CALL


rule report_methods:
    """Provenance, versions, hardware, per-rule times, deviations from the posts, run variables."""
    input:
        run_json=rules.run_record.output.run_json,
        mnist_provenance=rules.mnist_canonical.output.provenance,
        paper_config=os.path.join(REPO_ROOT, "config", "paper.yaml"),
        schema=os.path.join(REPO_ROOT, "workflow", "schemas", "config.schema.yaml"),
        after=ALL_RESULTS,
    output:
        provenance_md=f"{GEN}/provenance.md",
        versions_md=f"{GEN}/versions.md",
        hardware_md=f"{GEN}/hardware.md",
        experiment_times_md=f"{GEN}/experiment_times.md",
        rule_times_md=f"{GEN}/rule_times.md",
        deviations=f"{GEN}/deviations.md",
        banner=f"{GEN}/banner.md",
        parts_md=f"{GEN}/parts.md",
        parts_include=f"{GEN}/methods_parts.md",
        variables=f"{GEN}/methods.vars.yml",
    log:
        f"{LOGS}/report/methods.log",
    benchmark:
        f"{BENCH}/report/methods.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.report.methods:write_methods", deps_only=["after"]),
        kwargs={
            "config": config,
            "benchmarks_dir": BENCH,
            # the folders as the run names them (results/<profile>/...), also in bundle mode
            "benchmarks_shown": f"{RUN_RESULTS}/benchmarks",
            "results_shown": RUN_RESULTS,
            "experiments": EXPERIMENTS,
        },
    script:
        CALL


# The shipped run this one is set beside (report.compare_with; klvae.report.compare): by default the
# newest paper-profile bundle committed under bundles/, verified when the workflow is parsed.
from klvae.report.compare import choose_reference, renders_the_reference
from klvae.report.shipped import SHIPPED_FOLDER, needed_members, reference_facts, shipped_inputs

# A report rendered from a bundle (BUNDLE_ARCHIVE, bundle mode) is never set beside that same bundle.
COMPARE_WITH = choose_reference(config["report"]["compare_with"], os.path.join(REPO_ROOT, "bundles"), BUNDLE_ARCHIVE)
COMPARE_ITSELF = renders_the_reference(
    config["report"]["compare_with"], os.path.join(REPO_ROOT, "bundles"), BUNDLE_ARCHIVE
)
# The shipped run's verdicts under today's rules (klvae.report.shipped): each experiment its bundle
# holds is judged again by that experiment's own scorecard rule's function, on the bundle's
# verified data extracted to <results>/shipped/data, with the shipped run's profile and backend.
SHIPPED_REF = reference_facts(COMPARE_WITH)
SHIPPED = f"{RESULTS}/{SHIPPED_FOLDER}"
SHIPPED_DATA = f"{SHIPPED}/data"
SHIPPED_CALLS = {}
for _e in SHIPPED_REF["experiments"] if SHIPPED_REF else []:
    _call = EXPERIMENT_PARTS[_e]["scorecard_call"]
    _inputs = shipped_inputs(_call["func"], _call["inputs"], RESULTS, SHIPPED_DATA, SHIPPED_REF["members"])
    if _inputs is not None:
        _kwargs = {**_call["kwargs"], "profile": SHIPPED_REF["profile"]}
        if "backend" in _kwargs:
            _kwargs["backend"] = SHIPPED_REF["backend"]
        SHIPPED_CALLS[_e] = {"func": _call["func"], "inputs": _inputs, "kwargs": _kwargs}
SHIPPED_MEMBERS = needed_members({e: c["inputs"] for e, c in SHIPPED_CALLS.items()}, SHIPPED_DATA)


if SHIPPED_MEMBERS:

    rule report_shipped_extract:
        """The shipped bundle verified member by member, and the data its experiments' scorecards read extracted."""
        input:
            archive=COMPARE_WITH,
        output:
            [f"{SHIPPED_DATA}/{m}" for m in SHIPPED_MEMBERS],
        log:
            f"{LOGS}/report/shipped_extract.log",
        benchmark:
            f"{BENCH}/report/shipped_extract.tsv"
        conda:
            CONDA_ENV
        params:
            **library_call("klvae.bundle.core:extract_bundle"),
            kwargs={
                "dest": SHIPPED_DATA,
                "replace": True,
                "expected_manifest_sha256": SHIPPED_REF["manifest_sha256"],
                "only": SHIPPED_MEMBERS,
            },
        script:
            CALL


for _e, _call in SHIPPED_CALLS.items():

    rule:
        name:
            f"report_shipped_scorecard_{_e}"
        input:
            **_call["inputs"],
        output:
            table=f"{SHIPPED}/scorecard_{_e}.csv",
        log:
            f"{LOGS}/report/shipped_scorecard_{_e}.log",
        benchmark:
            f"{BENCH}/report/shipped_scorecard_{_e}.tsv"
        conda:
            CONDA_ENV
        params:
            **library_call(_call["func"]),
            kwargs=_call["kwargs"],
        script:
            CALL


rule report_scorecard:
    """Reproduction scorecard: the experiments' scorecard parts joined (every numeric claim of the posts, ours, a verdict), the shipped run's verdicts beside them."""
    input:
        parts=registered("scorecard"),
        # the shipped run's, judged anew from its data (empty without a shipped run)
        shipped_parts=[f"{SHIPPED}/scorecard_{e}.csv" for e in SHIPPED_CALLS],
    output:
        table=f"{RESULTS}/tables/scorecard.csv",
        md=f"{GEN}/scorecard.md",
        shipped_md=f"{GEN}/scorecard_shipped.md",
        variables=f"{GEN}/scorecard.vars.yml",
    log:
        f"{LOGS}/report/scorecard.log",
    benchmark:
        f"{BENCH}/report/scorecard.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.report.scorecard:write_scorecard"),
        kwargs={
            "profile": config["profile"],
            "titles": {e.label: e.title for e in REGISTRY},
            "shipped": (
                {k: SHIPPED_REF[k] for k in ("name", "profile", "backend", "experiments")} if SHIPPED_REF else None
            ),
        },
    script:
        CALL


rule report_compare:
    """Section "This run against a shipped run": every number of this run's tables beside a committed bundle's."""
    input:
        tables=ALL_TABLES + [rules.report_scorecard.output.table],
        reference=[COMPARE_WITH] if COMPARE_WITH else [],
    output:
        md=f"{GEN}/compare.md",
        table_md=f"{GEN}/compare_table.md",
        parts_md=f"{GEN}/compare_parts.md",
        variables=f"{GEN}/compare.vars.yml",
        diff_csv=f"{GEN}/compare.csv",
    log:
        f"{LOGS}/report/compare.log",
    benchmark:
        f"{BENCH}/report/compare.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.report.compare:write_compare"),
        kwargs={"itself": COMPARE_ITSELF},
    script:
        CALL


rule report_summary:
    """The summary page: verdict counts per experiment (and the shipped run's), headline findings by a fixed rule, compute used."""
    input:
        scorecard=rules.report_scorecard.output.table,
        methods_variables=rules.report_methods.output.variables,
        run_json=rules.run_record.output.run_json,
    output:
        verdicts_md=f"{GEN}/summary_verdicts.md",
        headlines_md=f"{GEN}/summary_headlines.md",
        bases_md=f"{GEN}/summary_bases.md",
        variables=f"{GEN}/summary.vars.yml",
    log:
        f"{LOGS}/report/summary.log",
    benchmark:
        f"{BENCH}/report/summary.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.report.summary:write_summary"),
    script:
        CALL


# Which rule made each figure and table, and with which function: read from the DAG itself
# (every rule defined so far that calls the library), so captions cannot name a wrong rule.
MADE_BY = {
    r.name: {"func": r.params.get("func"), "outputs": [results_relative(o) for o in r.output]}
    for r in workflow.rules
    if r.params.get("func")
}


rule report_made_by:
    """Caption provenance: per rule, its name, function (linked to its source) and output files."""
    output:
        variables=f"{GEN}/made_by.vars.yml",
    log:
        f"{LOGS}/report/made_by.log",
    benchmark:
        f"{BENCH}/report/made_by.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.report.provenance:write_made_by"),
        kwargs={"rules": MADE_BY, "report_dir": REPORT_DIR, "repository": config["report"]["repository"]},
    script:
        CALL


REPORT_FRAGMENTS = {
    f"_generated/{os.path.basename(f)}": str(f)
    for f in [
        *registered("fragments"),
        *rules.report_study.output,
        *rules.report_scorecard.output,
        *rules.report_methods.output,
        *rules.report_summary.output,
        *rules.report_compare.output,
    ]
    if f.endswith(".md")
}
REPORT_VARIABLES = [
    str(f)
    for f in (
        *registered("variables"),
        rules.report_study.output.variables,
        rules.report_scorecard.output.variables,
        rules.report_methods.output.variables,
        rules.report_summary.output.variables,
        rules.report_compare.output.variables,
        rules.report_made_by.output.variables,
    )
]


rule report_render:
    """Render report/ (Quarto project) to results/<profile>/report/klvae.html and klvae.pdf."""
    input:
        report_sources=sorted(str(p) for p in Path(REPORT_SOURCES).rglob("*") if p.is_file()),
        fragments=list(REPORT_FRAGMENTS.values()),
        variables=REPORT_VARIABLES,
        figures=ALL_FIGURES,
    output:
        html=REPORT_FILES[0],
        pdf=REPORT_FILES[1],
    log:
        f"{LOGS}/report/render.log",
    benchmark:
        f"{BENCH}/report/render.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.report.render:render", deps_only=["report_sources", "fragments"]),
        kwargs={
            "sources": REPORT_SOURCES,
            "build": f"{REPORT_DIR}/build",
            "generated": REPORT_FRAGMENTS,
            "figures_root": f"{RESULTS}/figures",
            "renderer": config["report"]["renderer"],
            # the verified results bundle this report is rendered from (bundle mode), else None
            "bundle": BUNDLE_INFO,
        },
    script:
        CALL
