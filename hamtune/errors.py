"""The one exception type users see: a message naming what is wrong, exit code 2."""


def one_line(text: str) -> str:
    """Escape control characters (a file name or YAML key may hold a newline) so a message stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


class HamtuneError(Exception):
    """A problem with the user's input or environment, reported as one line (exit code 2)."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(one_line(message))
