"""Running the programs and tools as a user does: in a subprocess (`python -m legacy_rnn.<name>`)
or in this process through the same entry code. Shared by the test modules."""
import os
import subprocess
import sys

from absl import flags

from legacy_rnn import experiments
from legacy_rnn.cli import entry, programs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_program_module(module, *args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)


def run_program(experiment, *args):
    return run_program_module(f"legacy_rnn.{experiment}", *args)


def program_output(name, argv, capsys):
    """Runs program `name` as its entry point does, in this process; (status, stdout, stderr)."""
    experiment = experiments.get(name)
    flag_values = flags.FlagValues()
    holders = programs.define(experiment, flag_values)
    flag_values(["prog", *argv])
    capsys.readouterr()
    status = entry.guarded(name, lambda: programs.run(experiment, holders, ["prog"]))
    out, err = capsys.readouterr()
    return status, out, err


def tool_output(module, name, argv, capsys):
    """Runs tool `name` (a module with `define_flags` and `main`, as `entry.tool` runs it) in
    this process; (status, stdout, stderr)."""
    flag_values = flags.FlagValues()
    holders = module.define_flags(flag_values)
    flag_values(["prog", *argv])
    capsys.readouterr()
    status = entry.guarded(name, lambda: module.main(holders, ["prog"]))
    out, err = capsys.readouterr()
    return status, out, err


def program_in_process(name, argv, capsys):
    """Runs program `name` as its entry point does, in this process; (status, stderr)."""
    status, _, err = program_output(name, argv, capsys)
    return status, err
