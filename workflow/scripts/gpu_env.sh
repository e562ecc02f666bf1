# Source this before Snakemake on a GPU machine (workflow/profiles/gpu, docs/gpu_section.md):
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
# No TensorFlow on the device: keep anything that probes for it quiet.
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export PYTHONUNBUFFERED=1
