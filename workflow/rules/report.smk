# The report: generated fragments (every number) + figures -> Quarto project -> HTML and PDF.

REPORT_DIR = f"{RESULTS}/report"
GEN = f"{REPORT_DIR}/generated"
REPORT_SOURCES = os.path.join(workflow.basedir, "report")
REPORT_FILES = [f"{REPORT_DIR}/klvae.html", f"{REPORT_DIR}/klvae.pdf"]
ALL_FIGURES = E1_FIGURES
# The fragments summarise every job's benchmark file, so they wait for every result.
ALL_RESULTS = ALL_FIGURES + [rules.e1_table.output.table]


rule report_fragments:
    """Every number the report shows: variables, tables, facts, provenance, per-rule times."""
    input:
        e1_table=rules.e1_table.output.table,
        mnist_provenance=rules.mnist_canonical.output.provenance,
        latents=expand(f"{E1_DIR}/r0/c{{c}}/latent.npz", c=E1_COEFS),
        paper_config=os.path.join(workflow.basedir, "config", "paper.yaml"),
        after=ALL_RESULTS,
    output:
        variables=f"{GEN}/_variables.yml",
        e1=f"{GEN}/e1.md",
        methods=f"{GEN}/methods.md",
        deviations=f"{GEN}/deviations.md",
        banner=f"{GEN}/banner.md",
    params:
        func="klvae.report.fragments:write_fragments",
        kwargs={"config": config, "coefficients": [float(c) for c in E1_COEFS], "benchmarks_dir": BENCH,
                "repo": workflow.basedir},
    benchmark:
        f"{BENCH}/report/fragments.tsv"
    script:
        CALL


rule report_render:
    """Render report/ (Quarto project) to results/report/klvae.html and klvae.pdf."""
    input:
        report_sources=sorted(str(p) for p in Path(REPORT_SOURCES).rglob("*") if p.is_file()),
        report_generated=rules.report_fragments.output,
        figures=ALL_FIGURES,
    output:
        html=REPORT_FILES[0],
        pdf=REPORT_FILES[1],
    params:
        func="klvae.report.render:render",
        kwargs={
            "sources": REPORT_SOURCES,
            "build": f"{REPORT_DIR}/build",
            "generated": {"_variables.yml": f"{GEN}/_variables.yml",
                          **{f"_generated/{n}.md": f"{GEN}/{n}.md" for n in ("e1", "methods", "deviations", "banner")}},
            "figures_root": f"{RESULTS}/figures",
            "renderer": config["report"]["renderer"],
        },
    benchmark:
        f"{BENCH}/report/render.tsv"
    script:
        CALL
