"""One escaping rule per output format, so a string from a results folder or a file name (which whoever sent
the folder chose) is shown as text and never runs: LaTeX, Markdown, CSV cells, HTML and the terminal.

Every writer of those formats calls these; none escapes by itself.
"""

from __future__ import annotations

import html as _html
import re

import pandas as pd

from hamtune.errors import one_line

LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    '"': r"\textquotedbl{}",
}
SPREADSHEET_FORMULA = ("=", "+", "-", "@", "\t", "\r", "\n")  # OWASP's CSV injection prefixes
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|nan)", re.IGNORECASE)
MARKDOWN_SPECIAL = re.compile(r"([\\`|])")


def latex(text: object) -> str:
    """Text for LaTeX's running text (or \\texttt): every special character as its command, control characters
    shown escaped, so no string can end an environment, \\input a file or \\write18 a shell command."""
    return "".join(LATEX_SPECIAL.get(c, c) for c in one_line(text))


def latex_code(text: object) -> str:
    """A command or folder string as typewriter text: \\texttt{} of the escaped text (never `verbatim`, which a
    string holding \\end{verbatim} would close)."""
    return r"\texttt{" + latex(text) + "}"


def markdown(text: object) -> str:
    """Text for a Markdown table cell or bullet: HTML's &, <, > as entities (no tag is rendered), then backslash,
    pipe and backtick backslash-escaped (a pipe cannot split the cell, a backtick cannot open code) and `](` broken
    (no link is made), one line. Brackets alone and emphasis characters stay: they change no more than the look."""
    text = one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("](", "]\\(")


def markdown_code(lines: list[str], language: str = "") -> list[str]:
    """Lines as a fenced code block whose fence is longer than any run of backticks in them (so none closes it),
    each line one line."""
    shown = [one_line(line) for line in lines]
    longest = max((len(run) for line in shown for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + language, *shown, fence]


def spreadsheet(value: object) -> object:
    """A CSV cell a spreadsheet will not run: a text starting with = + - @, a tab, CR or LF gets a leading single
    quote (OWASP); numbers, and text that reads as a number, stay as they are."""
    if not isinstance(value, str) or not value.startswith(SPREADSHEET_FORMULA) or NUMBER.fullmatch(value):
        return value
    return "'" + value


def spreadsheet_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell (and header) passed through spreadsheet(), for DataFrame.to_csv."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column].dtype):
            out[column] = out[column].map(spreadsheet).astype(object)
    out.columns = [spreadsheet(str(c)) for c in out.columns]
    return out


def html(text: object) -> str:
    """Text for HTML content or a quoted attribute (html.escape, quotes included)."""
    return _html.escape(str(text), quote=True)


def terminal(text: object, keep_layout: bool = False) -> str:
    """Text for the terminal: control characters (ESC sequences that would retitle or clear it) shown escaped;
    `keep_layout` keeps the line breaks and tabs of a table."""
    if not keep_layout:
        return one_line(text)
    return "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in str(text))
