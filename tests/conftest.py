"""Shared fixtures: a tiny configuration of the quick start that trains in seconds."""

import os
import sys
import textwrap

# Compiling dominates this suite (tiny models, many freshly jitted steps), and LLVM's
# optimization level 0 compiles much faster: measured on a clean clone of a quiet machine,
# the whole suite took 252 s with it against 349 s without (-28 %), every test passing.
# Set before JAX starts, inherited by the subprocesses the tests launch, and only where
# the caller has not chosen a level.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                             + " --xla_backend_optimization_level=0").strip()

# Measured choices (``xferlab.decisions``, e.g. vectorize="auto") go to a file of this test
# process, never the user's ~/.cache, so that no test reads another run's decision.
if "XFERLAB_DECISIONS" not in os.environ:
  import tempfile
  os.environ["XFERLAB_DECISIONS"] = os.path.join(tempfile.mkdtemp(prefix="xferlab-tests-"),
                                                 "decisions.json")

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART = os.path.join(ROOT, "experiments", "quickstart.py")


def xla_flags_with_devices(count: int | None) -> str:
  """This process's ``XLA_FLAGS`` (the optimization level above included) for a subprocess
  that sees ``count`` CPU devices (None: XLA's default of one), so that tests which choose
  the device count still compile at the suite's level."""
  kept = [flag for flag in os.environ.get("XLA_FLAGS", "").split()
          if not flag.startswith("--xla_force_host_platform_device_count")]
  if count is not None:
    kept.append(f"--xla_force_host_platform_device_count={count}")
  return " ".join(kept)

# Tiny model and corpus; every test that trains uses these sizes so jit caches are shared.
TINY = {
    "model.embed_dim": 8, "model.hidden_size": 8, "transfer.discriminator_hidden": (8,),
    "data.synthetic.num_source_train": 64, "data.synthetic.num_source_val": 32,
    "data.synthetic.num_target_unlabeled": 64, "data.synthetic.num_target_test": 32,
    "data.batch_size": 16, "data.eval_batch_size": 32, "data.buckets": (40,),
    "train.num_steps": 6, "train.eval_every": 2, "train.log_every": 1,
}


@pytest.fixture
def tiny_config():
  from xferlab.config import apply_overrides, load_experiment
  config, _ = load_experiment(QUICKSTART + ":dann")
  return apply_overrides(config, TINY)


# GPUs multiply float32 in TF32 by default; the tests compare implementations
# at float32 tolerances, so ask for full float32 there (no effect on CPU).
import jax  # noqa: E402
if jax.default_backend() == "gpu":
  jax.config.update("jax_default_matmul_precision", "highest")

if ROOT not in sys.path:
  sys.path.insert(0, ROOT)


# A run started by a subprocess that SIGKILLs itself right after the checkpoint of step
# argv[2] (printing the data position it saved): the kill-and-resume tests.
KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from xferlab import checkpoint, launch
    from xferlab.config import from_json
    kill_at = int(sys.argv[2])
    save = checkpoint.Checkpointer.save
    def save_then_die(self, step, state, meta):
      save(self, step, state, meta)
      if step == kill_at and self.directory.endswith("checkpoints"):
        print("KILLED AT DATA POSITION", meta["data"].get("position"), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)      # a hard kill: no cleanup runs
    checkpoint.Checkpointer.save = save_then_die
    launch.run_config(from_json(open(sys.argv[1]).read()), sys.argv[3])
""")

