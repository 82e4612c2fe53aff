"""The one exception type users see: a message naming what is wrong, exit code 2."""


def one_line(text: str) -> str:
    """Escape control characters (a file name or YAML key may hold a newline) so a message stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def first_line(text, limit: int | None = None) -> str:
    """The first line of a message or exception (cut to `limit` characters), to quote it inside one line."""
    lines = str(text).strip().splitlines()
    return lines[0][:limit] if lines else ""


class HamtuneError(Exception):
    """A problem with the user's input or environment, reported as one line (exit code 2)."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(one_line(message))
