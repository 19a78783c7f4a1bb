"""How every command-line entry point starts, reports what went wrong, and exits.

    if __name__ == "__main__":                # in legacy_rnn/<program>.py, a shim
        from legacy_rnn.cli import entry
        entry.program("mnist_rnn")            # an experiment's program, or a tool:
        entry.tool("legacy_rnn.regression.golden", "golden")  # define_flags(), main(holders, argv)

Signal handlers go in before anything heavy is imported (`interrupts`), so Ctrl-C and SIGTERM
stop a run at any moment. What a user can fix ends in one paragraph on stderr, prefixed with the
program's name, and exit status 1: bad input (`UserError`), memory or disk running out, a file or
directory that cannot be read or written. A signal ends with the line saying what was saved and
status 128 + signal. Anything else is a bug and keeps its traceback.

This module imports no TensorFlow: it must be importable in the first milliseconds.
"""
import errno
import importlib
import os
import sys
import tempfile

from legacy_rnn.cli import interrupts
from legacy_rnn.errors import UserError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
DISK_FULL_TEXTS = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT))


def program(experiment_name):
    """`python -m legacy_rnn.<experiment>`."""
    def load():
        from legacy_rnn import experiments
        from legacy_rnn.cli import programs
        experiment = experiments.get(experiment_name)
        return (lambda: programs.define(experiment),
                lambda holders, argv: programs.run(experiment, holders, argv))
    main(experiment_name, load)


def tool(module_name, name):
    """`python -m legacy_rnn.<name>` for a module with `define_flags()`, `main(holders, argv)`."""
    def load():
        module = importlib.import_module(module_name)
        return module.define_flags, module.main
    main(name, load)


def main(name, load):
    """`load()` imports the program and returns (define_flags, body); runs it under absl."""
    interrupts.install()
    # TensorFlow's C++ INFO lines (oneDNN, CPU features, "no CUDA drivers", checkpoint sharding
    # durations) are noise to a user; its warnings and errors stay. A value set by the user wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    sys.exit(guarded(name, lambda: _start(name, load)))


def _start(name, load):
    # The modules load TensorFlow only when a run needs it (`legacy_rnn/lazy.py`), and each
    # program and tool then calls `programs.start_tensorflow`: bad flags (and a program's
    # --model_dir / --export_dir) are refused before it. (`backends` loads it here.)
    with interrupts.phase("starting up (importing TensorFlow)"):
        define, body = load()
        holders = define()
        interrupts.raise_swallowed()
    check_flagfiles(sys.argv[1:])
    from absl import app
    app.run(lambda argv: guarded(name, lambda: body(holders, argv)))


def check_flagfiles(args, seen=()):
    """UserError naming a --flagfile that absl would choke on (unreadable, not text) or that holds
    a line which is not a flag (absl would take it for a stray argument, without saying where)."""
    for arg in args:
        if not arg.startswith(("--flagfile=", "-flagfile=")):
            continue
        path = arg.split("=", 1)[1]
        if path in seen:
            continue
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise UserError(f"--flagfile={path} cannot be read ({e.strerror}). Pass an existing "
                            "flagfile (flags/*.cfg holds the presets).") from None
        except UnicodeDecodeError:
            raise UserError(f"--flagfile={path} is not a text file of flags. A flagfile holds "
                            "one --name=value per line (# starts a comment); see flags/*.cfg.") \
                from None
        for number, line in enumerate(lines, 1):
            text = line.strip()
            if text and not text.startswith(("#", "//", "-")):
                raise UserError(f"Line {number} of --flagfile={path} is not a flag ({text[:60]!r})."
                                " A flagfile holds one --name=value per line (# starts a "
                                "comment); see flags/*.cfg.")
        check_flagfiles([line.strip() for line in lines], (*seen, path))


def guarded(name, body):
    """`body()`'s exit status; a user-fixable failure printed as one paragraph, with its status."""
    try:
        return body()
    except interrupts.Interrupted as e:
        interrupts.reported()
        print(f"{name}: {e.message}", file=sys.stderr)
        return e.exit_code
    except UserError as e:
        print(f"{name}: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 1)
    except Exception as e:  # noqa: BLE001 - re-raised unless it is a resource failure
        message = resource_failure(e)
        if message is None:
            raise
        print(f"{name}: {message}", file=sys.stderr)
        return 1


def resource_failure(error):
    """The paragraph for memory / disk / file-system failures, or None for anything else."""
    where = interrupts.phase_of(error)
    tf = sys.modules.get("tensorflow")
    tf_error = tf is not None and isinstance(error, tf.errors.OpError)
    if tf_error and any(text in str(error) for text in DISK_FULL_TEXTS):
        # TensorFlow's file writers report ENOSPC as RESOURCE_EXHAUSTED: not memory.
        detail = next(line for line in str(error).splitlines() if line.strip())[:300]
        return (f"The disk is full while {where} ({detail}). Free space and rerun the same "
                "command; files already saved are kept.")
    if isinstance(error, MemoryError) or (
            tf is not None and isinstance(error, tf.errors.ResourceExhaustedError)):
        detail = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        return (f"Out of memory while {where} ({detail}). The model or batch is too large for "
                "this machine: use a smaller --batch_size or --n_hidden (or free memory). Files "
                "already saved are kept.")
    if isinstance(error, OSError) and error.errno is not None:
        path = f" {error.filename}" if error.filename else ""
        if error.errno in DISK_FULL:
            # Without a file name (a library writing its caches) the likely places are named.
            on = path or (f" a file the system did not name (at start-up Python and TensorFlow "
                          f"write to {tempfile.gettempdir()} and ~/.cache)")
            return (f"The disk is full while {where}:{on} ({error.strerror}). Free space and "
                    "rerun the same command; files already saved are kept.")
        return (f"Cannot use{path} while {where} ({error.strerror}). Check that it exists and "
                "that you may read (or write) it, then rerun; files already saved are kept.")
    return None
