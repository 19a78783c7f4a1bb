"""SIGINT and SIGTERM at any moment of a program: stop promptly, exit 128 + signal, say what was
saved, and never interrupt a save half-way.

`install()` runs first in every entry point, before TensorFlow is imported: from then on a signal
raises `Interrupted` where the program is (importing, reading data, building the graph,
evaluating), except inside `deferred()` blocks (a training step, a save), which finish first and
leave the signal `pending()` for the code that can save and report. A second Ctrl-C while saving
is recorded too, so it cannot corrupt the checkpoint either.

Installing the handlers also undoes an inherited SIG_IGN: a process started in the background by
a non-interactive shell ignores SIGINT, and Python then never raises KeyboardInterrupt at all.
And a signal whose `Interrupted` is raised where Python cannot propagate an exception (inside a
gc callback, such as JAX's, or a `__del__`: "Exception ignored in ...") is delivered again, to
stop the program at its next statement instead of being lost; one that a C extension catches and
prints while TensorFlow imports is raised again after the imports (`raise_swallowed`).
"""
import _thread
import contextlib
import signal
import sys
import threading
import time

SIGNALS = (signal.SIGINT, signal.SIGTERM)
REDELIVER_SECONDS = 0.001
_received = []
_state = {"deferred": 0, "installed": False, "phase": "starting up", "in_hook": False,
          "raised": None}


class Interrupted(BaseException):
    """A signal stopped the program. Not an Exception, so `except Exception` cannot swallow it."""

    def __init__(self, signum, message=None):
        self.signum = signum
        self.exit_code = 128 + signum
        self.message = message or (f"{signal.Signals(signum).name} received while "
                                   f"{_state['phase']}: stopped; nothing was written.")
        super().__init__(self.message)


def _handler(signum, frame):
    if _state["in_hook"]:
        return  # raised here it would be lost too; the redelivery under way stops the program
    _received.append(signum)
    if not _state["deferred"]:
        _received.clear()
        _state["raised"] = signum
        raise Interrupted(signum)


def reported():
    """The entry point caught the Interrupted of the last signal: it was not swallowed (an
    in-process rerun, as the tests make, starts clean)."""
    _state["raised"] = None


def raise_swallowed():
    """Raises Interrupted again for a signal whose Interrupted some C extension caught and only
    printed (protobuf's descriptor pool, called from C++ while TensorFlow imports, prints
    "Traceback ... Interrupted" and goes on): called after the imports, where a signal that
    stopped the program as it should never returns here."""
    signum, _state["raised"] = _state["raised"], None
    if signum is not None:
        raise Interrupted(signum)


def _redeliver(signum):
    # Only once the hook has returned: delivered while the hook still runs (starting this very
    # thread waits, and a wait runs signal handlers), it was lost as well (CI, 1 run in 3).
    while _state["in_hook"]:
        time.sleep(REDELIVER_SECONDS)
    _thread.interrupt_main(signum)


def _unraisable_hook(previous):
    def hook(unraisable):
        if isinstance(unraisable.exc_value, Interrupted):
            # Not from here: the hook runs inside the same callback. From another thread, the
            # signal reaches the main thread again at its next statement after the callback.
            _state["in_hook"] = True
            try:
                threading.Thread(target=_redeliver, args=(unraisable.exc_value.signum,),
                                 daemon=True).start()
            finally:
                _state["in_hook"] = False
            return
        previous(unraisable)
    hook.previous = previous
    return hook


def install():
    """Program start: SIGINT/SIGTERM raise Interrupted (or wait, inside `deferred()`). Returns
    the previous handlers, for `restore`."""
    previous = {s: signal.signal(s, _handler) for s in SIGNALS}
    sys.unraisablehook = _unraisable_hook(sys.unraisablehook)
    _state["installed"] = True
    return previous


def restore(previous):
    """Puts back the handlers `install` replaced (tests, embedding)."""
    for s, handler in previous.items():
        signal.signal(s, handler)
    sys.unraisablehook = getattr(sys.unraisablehook, "previous", sys.unraisablehook)
    _state["installed"] = False
    _state["raised"] = None
    _received.clear()


@contextlib.contextmanager
def deferred():
    """Signals inside are recorded, not raised; callers poll `pending()`. Usable in any process:
    where `install()` has not run (a library call), the handlers are installed for the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = None if _state["installed"] else {s: signal.signal(s, _handler) for s in SIGNALS}
    _state["deferred"] += 1
    try:
        yield
    finally:
        _state["deferred"] -= 1
        if previous:
            for s, handler in previous.items():
                signal.signal(s, handler)


def pending():
    """The first signal received inside a deferred block and not yet taken, or None."""
    return _received[0] if _received else None


def take():
    """`pending()`, and forget it."""
    signum = pending()
    _received.clear()
    return signum


@contextlib.contextmanager
def phase(description):
    """Names what the program is doing, for the message of a signal that stops it there, and
    for any exception leaving the block (`phase_of`)."""
    previous, _state["phase"] = _state["phase"], description
    try:
        yield
    except Exception as e:
        if not hasattr(e, "_legacy_rnn_phase"):
            e._legacy_rnn_phase = description
        raise
    finally:
        _state["phase"] = previous


def phase_of(error):
    """Where `error` was raised: the innermost `phase` it left, else the current one."""
    return getattr(error, "_legacy_rnn_phase", _state["phase"])


def raise_pending(what):
    """After a deferred block: raise Interrupted for a signal received during it, its message
    saying `what` happened ("... received while <what>")."""
    signum = take()
    if signum is not None:
        raise Interrupted(signum, f"{signal.Signals(signum).name} received while {what}; "
                                  "stopped.")
