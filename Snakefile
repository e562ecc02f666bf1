# klvae: the Kullback-Leibler loss in Variational Autoencoders -- the whole reproduction.
#
#   snakemake --cores all --configfile config/default.yaml          # everything, report included
#   snakemake --cores all --configfile config/default.yaml results/figures/e1/scatter_panel.png
#   snakemake --cores all --config bundle=results/bundle/<name>.tar.gz   # report from a results bundle
#
# The rule graph: data -> training (one job per KL coefficient) -> analysis -> figures and
# tables -> report. Figures never train; training never plots; the report only includes
# files that rules wrote.

import os

from snakemake.utils import min_version

from klvae.config import check_config

min_version("9.0")

# Without --configfile the default profile runs (--config values still apply on top). With
# one, only that file counts (no merge with default.yaml, so a profile is exactly what its
# file says plus the schema's defaults).
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, "config", "default.yaml")


if config.get("bundle"):
    # Bundle mode (`make report BUNDLE=<archive>`): render the report from a results bundle
    # (klvae.bundle) -- verify it, extract it to results/from_bundle/<stem>/, run report_render.
    # No data, training or figure rule is in the DAG; the bundle carries the run's config.

    include: "workflow/rules/bundle.smk"

    # The report rendered from the bundle: results/from_bundle/<stem>/report/klvae.html and .pdf.
    # (A comment, not a docstring: snakefmt 2.1 moves `default_target` above a docstring.)
    rule bundle_report:
        default_target: True
        input:
            BUNDLE_REPORT,

else:
    # snakemake.utils.validate (fills the schema's defaults); on failure a ConfigError (a
    # WorkflowError) lists every bad key, the value given, what is expected and what to do --
    # before any job is scheduled, so nothing runs and no result is touched.
    check_config(
        config,
        os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml"),
        source=workflow.configfiles,
        example=os.path.join(workflow.basedir, "config", "default.yaml"),
        overrides=workflow.config_settings.config,
    )

    include: "workflow/rules/common.smk"
    include: "workflow/rules/data.smk"
    include: "workflow/rules/e1.smk"
    include: "workflow/rules/e2.smk"
    include: "workflow/rules/e3.smk"
    include: "workflow/rules/study.smk"
    include: "workflow/rules/report.smk"

    rule all:
        default_target: True
        input:
            REPORT_FILES,
