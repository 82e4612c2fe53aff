"""The one exception type users see: a message naming what is wrong, exit code 2."""


class HamtuneError(Exception):
    """A problem with the user's input or environment, reported as one line (exit code 2)."""

    exit_code = 2
