"""The Python API's arguments checked at the edge: a value of the wrong type (an int for a path, a str for a
count, a list for a flag) is a one-line UsageError naming the argument, before anything is read or written,
never a bare TypeError from deep inside pandas, torch or Ray."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from pathlib import Path

from hamtune.errors import UsageError


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _refuse(name: str, wanted: str, value: object) -> UsageError:
    return UsageError(f"{name} must be {wanted}, got {_shown(value)}")


def path(value: object, name: str) -> Path:
    """A path argument as a Path (a non-empty str or os.PathLike)."""
    if isinstance(value, (str, os.PathLike)) and os.fspath(value):
        return Path(value)
    raise _refuse(name, "a path (str or pathlib.Path)", value)


def optional_path(value: object, name: str) -> Path | None:
    return None if value is None else path(value, name)


def integer(value: object, name: str, low: int | None = None, high: int | None = None) -> int:
    """A whole number in [low, high] (True and 3.0 are not whole numbers here)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _refuse(name, "a whole number", value)
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (
            f"between {low} and {high}"
            if low is not None and high is not None
            else (f"at least {low}" if low is not None else f"at most {high}")
        )
        raise UsageError(f"{name} must be {bounds}, got {value}")
    return value


def optional_integer(value: object, name: str, low: int | None = None, high: int | None = None) -> int | None:
    return None if value is None else integer(value, name, low, high)


def number(value: object, name: str, low: float | None = None, finite: bool = True) -> float:
    """A finite real number, at least `low`; `finite=False` leaves the value (nan, inf) to the check that owns its range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or (finite and not math.isfinite(float(value))):
        raise _refuse(name, "a finite number", value)
    if low is not None and float(value) < low:
        raise UsageError(f"{name} must be at least {low:g}, got {float(value):g}")
    return float(value)


def optional_number(value: object, name: str, low: float | None = None, finite: bool = True) -> float | None:
    return None if value is None else number(value, name, low, finite)


def flag(value: object, name: str) -> bool:
    """True or False (a "no" string is true in Python: refused rather than read so)."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise _refuse(name, "True or False", value)


def text(value: object, name: str, choices: tuple[str, ...] | None = None) -> str:
    """A non-empty str, one of `choices` when given."""
    if not isinstance(value, str) or not value:
        raise _refuse(name, "a non-empty string" if choices is None else f"one of {', '.join(choices)}", value)
    if choices is not None and value not in choices:
        raise UsageError(f"{name} must be one of {', '.join(choices)}, got {_shown(value)}")
    return value


def optional_text(value: object, name: str, choices: tuple[str, ...] | None = None) -> str | None:
    return None if value is None else text(value, name, choices)


def texts(value: object, name: str) -> tuple[str, ...]:
    """A list or tuple of strings (a bare str would be taken letter by letter)."""
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise _refuse(name, "a list of strings", value)


def mapping(value: object, name: str) -> dict:
    """A mapping with string keys (None: empty)."""
    if value is None:
        return {}
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return dict(value)
    raise _refuse(name, "a mapping of names to values (a dict)", value)


def function(value: object, name: str):
    if value is None or callable(value):
        return value
    raise _refuse(name, "a function", value)
