"""Generic thin rule body: call one klvae library function with the rule's files and params.

A rule sets ``params: **library_call("klvae.module:function"), kwargs={...}``, ``log:`` and
``script: CALL`` (``workflow/rules/call.smk``). The function is called with the rule's named
inputs and named outputs that it has parameters for (other named inputs are dependencies
only, e.g. the report waiting for every result), plus ``params.kwargs`` and ``threads`` when
it accepts that. Snakemake runs this in its own Python process.

At the end the job's time split (process start-up, imports, compilation, training; see
``klvae.bench.phases``) is written next to its log as ``<log>.phases.json``.

What the job prints (Python's stdout and stderr: progress, Keras logs, tracebacks) goes to the
console as before and is also copied to the rule's log file. Messages that native libraries
write straight to file descriptor 2 (TensorFlow's C++ logging) reach the console only.
"""

import importlib
import inspect
import sys
import time
import traceback


class _Tee:
    """A text stream that writes to the console stream and to the job's log file."""

    def __init__(self, console, log):
        self.console, self.log = console, log

    def write(self, text):
        self.log.write(text)
        return self.console.write(text)

    def flush(self):
        self.log.flush()
        self.console.flush()

    def isatty(self):
        return False

    def __getattr__(self, name):  # encoding, fileno, ... as the console stream has them
        return getattr(self.console, name)


T_CALL = time.time()  # the job's phases (klvae.bench.phases): start-up ends here
smk = snakemake  # noqa: F821  (injected by Snakemake's script directive)
console = sys.stdout, sys.stderr
log = open(smk.log[0], "w", buffering=1) if smk.log else None  # open for the job's lifetime
if log is not None:
    sys.stdout, sys.stderr = _Tee(sys.stdout, log), _Tee(sys.stderr, log)
try:
    module_name, func_name = smk.params.func.split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    t_imported = time.time()
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
    if smk.log:  # <log>.phases.json: start-up, imports, compilation, training (klvae.bench.phases)
        from klvae.bench.phases import record

        record(smk.log[0], smk.rule, dict(smk.wildcards.items()), T_CALL, t_imported)
except BaseException:
    if log is not None:  # the traceback in the log too (Snakemake prints it on the console)
        log.write(traceback.format_exc())
    raise
finally:
    if log is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = console
        log.close()
