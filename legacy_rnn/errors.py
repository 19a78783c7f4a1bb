"""The one exception type whose message is meant for the user."""


class UserError(Exception):
    """Bad input (flags, files, checkpoints) or an environment problem the user can fix.

    The message is a complete paragraph: what is wrong and how to fix it. Programs print it
    without a traceback and exit non-zero.
    """
