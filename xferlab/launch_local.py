"""Multi-host on one machine: N processes on localhost, joined by ``jax.distributed``.

  python -m xferlab.launch_local --processes 2 -- experiments/quickstart.py:dann --workdir runs/mh

starts N copies of ``launch.py`` with the arguments after ``--``. Each child
reads ``XFERLAB_COORDINATOR``, ``XFERLAB_NUM_PROCESSES`` and
``XFERLAB_PROCESS_ID`` at startup (``initialize_from_env``, called by
``xferlab.launch.main``) and calls ``jax.distributed.initialize`` with them, on
the CPU backend with gloo collectives and ``--devices-per-process`` CPU
devices each (default 1). The trainer then builds its mesh over every
process's devices and each process feeds its own rows of every global batch
(``xferlab.train.batch_placer``); process 0 writes the run's files.

Process 0's output streams to this terminal; the others' goes to
``<logdir>/process_<i>.log`` (a temporary folder unless ``--logdir`` is given),
whose tail is printed when that process fails. When one process fails, the
others (left waiting in a collective) are stopped after ``--grace`` seconds.
The exit status is the worst of the processes' that ended on their own (a signal
counts as 128 + its number).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Sequence

ENV_COORDINATOR = "XFERLAB_COORDINATOR"
ENV_NUM_PROCESSES = "XFERLAB_NUM_PROCESSES"
ENV_PROCESS_ID = "XFERLAB_PROCESS_ID"
ENV_DEVICES = "XFERLAB_DEVICES_PER_PROCESS"

# What a child runs: ``launch.py``'s command line, from the package (any working directory).
CHILD = "import sys; from xferlab.launch import main; sys.exit(main(sys.argv[1:]))"


def initialize_from_env() -> bool:
  """Joins the ``jax.distributed`` job that ``launch_local`` (or a user) describes in the
  environment; returns whether it did (False, doing nothing, when ``XFERLAB_COORDINATOR`` is
  unset). Must run before JAX starts a backend."""
  address = os.environ.get(ENV_COORDINATOR)
  if not address:
    return False
  import jax   # pylint: disable=import-outside-toplevel  (launch.py stays light without it)
  if os.environ.get("JAX_PLATFORMS") == "cpu":   # launch_local's children
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.config.update("jax_num_cpu_devices", int(os.environ.get(ENV_DEVICES, "1")))
  jax.distributed.initialize(coordinator_address=address,
                             num_processes=int(os.environ[ENV_NUM_PROCESSES]),
                             process_id=int(os.environ[ENV_PROCESS_ID]))
  return True


def free_port() -> int:
  """A TCP port on 127.0.0.1 that nothing listens on now."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def child_env(process_id: int, processes: int, port: int, devices: int) -> dict[str, str]:
  """The environment of child ``process_id``: the job's coordinates, the CPU backend, and no
  inherited ``--xla_force_host_platform_device_count`` (``devices`` sets the count)."""
  env = dict(os.environ)
  env.update({ENV_COORDINATOR: f"127.0.0.1:{port}", ENV_NUM_PROCESSES: str(processes),
              ENV_PROCESS_ID: str(process_id), ENV_DEVICES: str(devices),
              "JAX_PLATFORMS": "cpu"})
  flags = re.sub(r"--xla_force_host_platform_device_count=\S*", "", env.get("XLA_FLAGS", ""))
  env["XLA_FLAGS"] = flags.strip()
  return env


def exit_status(code: int) -> int:
  """A child's status as a shell reports it: a signal ``-s`` is ``128 + s``."""
  return 128 - code if code < 0 else code


def _tail(path: str, lines: int = 20) -> str:
  with open(path, errors="replace") as f:
    return "".join(f.readlines()[-lines:])


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m xferlab.launch_local",
      description="Run launch.py as N jax.distributed processes on this machine (CPU, gloo).",
      epilog="example: python -m xferlab.launch_local --processes 2 -- "
             "experiments/quickstart.py:dann --workdir runs/mh")
  parser.add_argument("--processes", type=int, default=2, help="number of processes (default 2)")
  parser.add_argument("--devices-per-process", type=int, default=1,
                      help="CPU devices each process gets (default 1)")
  parser.add_argument("--port", type=int, default=0, help="coordinator port (default: a free one)")
  parser.add_argument("--logdir", default=None,
                      help="where processes 1..N-1 write their output (default: a temp folder)")
  parser.add_argument("--grace", type=float, default=20.0,
                      help="seconds the others get to finish after one process fails")
  parser.add_argument("args", nargs=argparse.REMAINDER, help="-- then launch.py's arguments")
  return parser


def start(args: Sequence[str], processes: int, devices: int = 1, port: int = 0,
          logdir: str | None = None) -> list[tuple[subprocess.Popen, str | None]]:
  """Starts the processes; ``(process, its log file or None for process 0)`` each."""
  port = port or free_port()
  logdir = logdir or tempfile.mkdtemp(prefix="xferlab-launch-local-")
  os.makedirs(logdir, exist_ok=True)
  children = []
  for i in range(processes):
    env = child_env(i, processes, port, devices)
    command = [sys.executable, "-c", CHILD, *args]
    if i == 0:
      children.append((subprocess.Popen(command, env=env), None))
    else:
      log = os.path.join(logdir, f"process_{i}.log")
      with open(log, "w") as f:
        children.append((subprocess.Popen(command, env=env, stdout=f, stderr=subprocess.STDOUT),
                         log))
  return children


def wait(children, grace: float) -> int:
  """Waits for every process; once one fails, the others get ``grace`` seconds, then are
  stopped. Returns the worst exit status of those that ended on their own (those stopped
  here only followed a failure)."""
  failed_at, stopped = None, set()
  while any(p.poll() is None for p, _ in children):
    if failed_at is None and any(p.returncode not in (None, 0) for p, _ in children):
      failed_at = time.monotonic()
    if failed_at is not None and time.monotonic() - failed_at > grace:
      for i, (p, _) in enumerate(children):
        if p.poll() is None:
          stopped.add(i)
          p.send_signal(signal.SIGTERM if time.monotonic() - failed_at < grace + 10 else
                        signal.SIGKILL)
    time.sleep(0.2)
  for i, (p, log) in enumerate(children):
    if p.returncode != 0 and log and i not in stopped:
      print(f"[launch_local] process {i} exited with status {exit_status(p.returncode)}; "
            f"the end of {log}:\n{_tail(log)}", file=sys.stderr, flush=True)
  own = [exit_status(p.returncode) for i, (p, _) in enumerate(children) if i not in stopped]
  return max(own or [exit_status(p.returncode) for p, _ in children])


def main(argv: Sequence[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  rest = args.args[1:] if args.args[:1] == ["--"] else args.args
  if args.processes < 1 or args.devices_per_process < 1:
    print("error: --processes and --devices-per-process must be at least 1", file=sys.stderr)
    return 2
  if not rest:
    print("error: give launch.py's arguments after --, e.g. -- experiments/quickstart.py:dann",
          file=sys.stderr)
    return 2
  children = start(rest, args.processes, args.devices_per_process, args.port, args.logdir)
  try:
    return wait(children, args.grace)
  except KeyboardInterrupt:
    for p, _ in children:
      if p.poll() is None:
        p.send_signal(signal.SIGINT)
    for p, _ in children:
      try:
        p.wait(timeout=10)
      except subprocess.TimeoutExpired:
        p.kill()
    return 130


if __name__ == "__main__":
  sys.exit(main())
