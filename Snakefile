# klvae: the Kullback-Leibler loss in Variational Autoencoders -- the whole reproduction.
#
#   snakemake --cores all --configfile config/default.yaml          # everything, report included
#   snakemake --cores all --configfile config/default.yaml results/figures/e1/scatter_panel.png
#
# The rule graph: data -> training (one job per KL coefficient) -> analysis -> figures and
# tables -> report. Figures never train; training never plots; the report only includes
# files that rules wrote.

import os

from snakemake.utils import min_version, validate

min_version("9.0")

# Without --configfile the default profile runs. With one, only that file counts (no merge
# with default.yaml, so a profile is exactly what its file says plus the schema's defaults).
if not config:

    configfile: os.path.join(workflow.basedir, "config", "default.yaml")


validate(config, "workflow/schemas/config.schema.yaml", set_default=True)


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/e1.smk"
include: "workflow/rules/e2.smk"
include: "workflow/rules/e3.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        REPORT_FILES,
    default_target: True
