"""The exception types users see: a message naming what is wrong; exit code 1 for the work, 2 for the arguments."""


def one_line(text: object) -> str:
    """Escape control characters (a file name or YAML key may hold a newline) so a message stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def first_line(text, limit: int | None = None) -> str:
    """The first line of a message or exception (cut to `limit` characters), to quote it inside one line."""
    lines = str(text).strip().splitlines()
    return lines[0][:limit] if lines else ""


class HamtuneError(Exception):
    """A problem met while doing the work (a missing file, data or results that are wrong, the environment), reported
    as one line; the command exits 1."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(one_line(message))


class UsageError(HamtuneError):
    """An argument the caller gave that the command cannot take (a bad flag value, an unknown key, a destination
    that would destroy data): exit code 2, as argparse's own usage errors, so scripts can tell the two apart."""

    exit_code = 2
