"""Generic thin rule body: call one klvae library function with the rule's files and params.

A rule sets ``params: func="klvae.module:function", kwargs={...}`` and
``script: "../scripts/call.py"``. The function is called with the rule's named inputs and
named outputs that it has parameters for (other named inputs are dependencies only, e.g.
the report waiting for every result), plus ``params.kwargs`` and ``threads`` when it
accepts that. Snakemake runs this in its own Python process.
"""

import importlib
import inspect
import sys
import time

smk = snakemake  # noqa: F821  (injected by Snakemake's script directive)
module_name, func_name = smk.params.func.split(":")
func = getattr(importlib.import_module(module_name), func_name)
accepted = inspect.signature(func).parameters
files = {**dict(smk.input.items()), **dict(smk.output.items())}
kwargs = {k: v for k, v in files.items() if k in accepted}
kwargs.update(smk.params.get("kwargs", {}))
if "threads" in accepted:
    kwargs["threads"] = smk.threads
start = time.time()
print(f"[{smk.rule}] {smk.params.func}({', '.join(sorted(kwargs))})", file=sys.stderr, flush=True)
func(**kwargs)
print(f"[{smk.rule}] done in {time.time() - start:.1f} s", file=sys.stderr, flush=True)
