"""Writing files and directories so that a failure or a signal leaves the old ones or the new
ones, never half of either."""
import contextlib
import json
import os
import shutil
import tempfile

from legacy_rnn.cli import interrupts
from legacy_rnn.errors import UserError


def write_json(path, obj):
    """`path` replaced by the JSON of `obj` (written beside it, then renamed)."""
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def directory(target, flag, create=True):
    """Yields a fresh path beside `target` to fill (created when `create`); when the block
    succeeds it replaces `target` (renamed, a signal waiting for it). On any failure nothing is
    left behind and `target` is untouched. `flag` names the option the user picks it with."""
    parent = os.path.dirname(os.path.abspath(target))
    try:
        os.makedirs(parent, exist_ok=True)
        work = tempfile.mkdtemp(prefix=".partial-", dir=parent)
    except OSError as e:
        raise UserError(f"Cannot write into {parent} ({e.strerror}). Choose a writable "
                        f"{flag}.") from None
    fresh = os.path.join(work, "new")
    try:
        if create:
            os.mkdir(fresh)
        yield fresh
        with interrupts.deferred():
            if os.path.exists(target):
                shutil.rmtree(target)
            os.replace(fresh, target)
    except OSError as e:
        raise UserError(f"Writing {target} failed ({e.strerror}); nothing was written. Free "
                        f"space or choose another {flag}.") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    interrupts.raise_pending(f"writing {target}: it was written completely")
