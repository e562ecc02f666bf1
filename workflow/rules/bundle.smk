# Bundle mode (`make report BUNDLE=<archive>`, i.e. `snakemake --config bundle=<archive>`): render
# the report from a results bundle (klvae.bundle) -- no data, no training, no figure rules, and no
# TensorFlow needed. The Snakefile includes this file *instead of* every other rule file.
#
#   bundle_extract  verify every member against the manifest, then write them all to
#                   results/from_bundle/<stem>/ (nothing is written if one member fails)
#   report_render   the same render as a normal run, from the bundle's generated fragments,
#                   variables and figures, to results/from_bundle/<stem>/report/klvae.{html,pdf}
#
# The bundle is verified here, when the workflow is parsed, so a tampered bundle is refused
# (naming the file) before any job is scheduled, and again by bundle_extract.

import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from klvae import bundle as klvae_bundle


include: "call.smk"


BUNDLE_ARCHIVE = os.path.abspath(os.path.expanduser(str(config["bundle"])))
try:
    BUNDLE = klvae_bundle.verify_bundle(BUNDLE_ARCHIVE)
except klvae_bundle.BundleError as err:
    raise WorkflowError(str(err)) from None
if not BUNDLE["complete"]:
    raise WorkflowError(
        f"{BUNDLE_ARCHIVE}: a partial bundle (made with --partial from an unfinished run): "
        f"{', '.join(BUNDLE['missing'])} missing, so the report cannot be rendered from it. "
        "Finish the run and make the bundle again."
    )
BUNDLE_DIR = klvae_bundle.render_dir(BUNDLE_ARCHIVE)
# The config the run used (from the verified bundle): only the renderer matters here.
BUNDLE_CONFIG = BUNDLE["config"]
BUNDLE_RENDERER = str(config.get("renderer") or BUNDLE_CONFIG.get("report", {}).get("renderer", "auto"))
BUNDLE_FILES = [f"{BUNDLE_DIR}/{p}" for p in BUNDLE["paths"]]
BUNDLE_GEN = f"{BUNDLE_DIR}/report/generated"
BUNDLE_FRAGMENTS = {
    f"_generated/{Path(p).name}": p for p in BUNDLE_FILES if p.startswith(BUNDLE_GEN + "/") and p.endswith(".md")
}
BUNDLE_VARIABLES = [p for p in BUNDLE_FILES if p.startswith(BUNDLE_GEN + "/") and p.endswith(".vars.yml")]
BUNDLE_FIGURES = [p for p in BUNDLE_FILES if p.startswith(f"{BUNDLE_DIR}/figures/") and p.endswith(".png")]
BUNDLE_REPORT = [f"{BUNDLE_DIR}/report/klvae.html", f"{BUNDLE_DIR}/report/klvae.pdf"]
REPORT_SOURCES = os.path.join(workflow.basedir, "report")

if not BUNDLE_FRAGMENTS or not BUNDLE_VARIABLES:
    raise WorkflowError(
        f"{BUNDLE_ARCHIVE}: the bundle holds no report fragments (report/generated/*.md and "
        "*.vars.yml); it cannot be rendered. Make it with `make bundle` after a finished run."
    )


rule bundle_extract:
    """Verify every member of the bundle against its manifest (SHA-256, size), then extract."""
    input:
        archive=BUNDLE_ARCHIVE,
    output:
        BUNDLE_FILES,
    log:
        f"{BUNDLE_DIR}.extract.log",
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.bundle:extract_bundle"),
        kwargs={"dest": BUNDLE_DIR, "replace": True, "expected_manifest_sha256": BUNDLE["manifest_sha256"]},
    script:
        CALL


rule report_render:
    """Render report/ from the bundle's fragments, variables and figures (no recomputation)."""
    input:
        report_sources=sorted(str(p) for p in Path(REPORT_SOURCES).rglob("*") if p.is_file()),
        fragments=list(BUNDLE_FRAGMENTS.values()),
        variables=BUNDLE_VARIABLES,
        figures=BUNDLE_FIGURES,
    output:
        html=BUNDLE_REPORT[0],
        pdf=BUNDLE_REPORT[1],
    log:
        f"{BUNDLE_DIR}/report/render.log",
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.report.render:render", deps_only=["report_sources", "fragments"]),
        kwargs={
            "sources": REPORT_SOURCES,
            "build": f"{BUNDLE_DIR}/report/build",
            "generated": BUNDLE_FRAGMENTS,
            "figures_root": f"{BUNDLE_DIR}/figures",
            "renderer": BUNDLE_RENDERER,
            "bundle": {
                k: BUNDLE[k]
                for k in ("name", "archive_sha256", "manifest_sha256", "members", "created_utc", "created_host")
            },
        },
    script:
        CALL
