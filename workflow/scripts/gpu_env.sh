# Source this before Snakemake on a GPU machine (workflow/profiles/gpu, docs/gpu.md):
#   source workflow/scripts/gpu_env.sh
# Values already set in the environment win (e.g. XLA_PYTHON_CLIENT_MEM_FRACTION=0.45 for two jobs).

# Keras 3 on JAX: models, losses and training are backend-neutral (klvae.backend).
export KERAS_BACKEND="${KERAS_BACKEND:-jax}"
# Each JAX process may use at most 15% of the card, so the 6 training jobs the gpu profile
# runs at once (resources gpu=6, one slot each) share it ...
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.15}"
# ... and takes memory as it needs it instead of grabbing the 15% at start-up: the analysis,
# evaluation and figure jobs that load a model beside them (no gpu slot) stay small.
export XLA_PYTHON_CLIENT_PREALLOCATE="${XLA_PYTHON_CLIENT_PREALLOCATE:-false}"
# Deterministic GPU reductions/scatters: a rerun gives the same weights (klvae.backend.configure
# adds it too, but only in processes that call it before JAX starts).
case " ${XLA_FLAGS:-} " in
  *" --xla_gpu_deterministic_ops=true "*) ;;
  *) export XLA_FLAGS="${XLA_FLAGS:+$XLA_FLAGS }--xla_gpu_deterministic_ops=true" ;;
esac
# Full float32 matmuls and convolutions: on Ampere/Hopper cards XLA may otherwise use TF32
# (10-bit mantissa) for them, while the CPU path (TensorFlow) is full float32. The run records
# the value in its provenance (run.json).
export JAX_DEFAULT_MATMUL_PRECISION="${JAX_DEFAULT_MATMUL_PRECISION:-float32}"
# JAX's persistent compilation cache, shared by every job of the run: jobs of one shape (the 24
# E1 trainings, the 10 E2 trainings) compile their programs once; the rest read them from disk.
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-$PWD/results/jax-cache}"
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="${JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS:-0}"
# TensorFlow is not needed on the GPU node: keep anything that probes for it quiet.
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export PYTHONUNBUFFERED=1
