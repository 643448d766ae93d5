"""Printing helpers of the CLI: tables (rich on a terminal, plain text when piped) and JSON Lines."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence
from typing import Any, TextIO


def _stream(file: TextIO | None) -> TextIO:
    return sys.stdout if file is None else file


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    title: str | None = None,
    align_right: Sequence[bool] | None = None,
    file: TextIO | None = None,
) -> None:
    """Print a table: a rich table on an interactive terminal, aligned plain columns otherwise."""
    out = _stream(file)
    right = list(align_right) if align_right is not None else [False] * len(headers)
    cells = [[str(c) for c in row] for row in rows]
    if out.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        for h, r in zip(headers, right, strict=True):
            table.add_column(h, justify="right" if r else "left", overflow="fold")
        for row in cells:
            table.add_row(*row)
        Console(file=out).print(table)
        return
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        ]
        return "  ".join(parts).rstrip()

    if title:
        print(title, file=out)
    print(line(headers), file=out)
    print(line(["-" * w for w in widths]), file=out)
    for row in cells:
        print(line(row), file=out)


def print_json_line(obj: Any, *, file: TextIO | None = None) -> None:
    """Print ``obj`` as one line of JSON (JSON Lines)."""
    print(json.dumps(obj, separators=(", ", ": ")), file=_stream(file))


def print_json(obj: Any, *, file: TextIO | None = None) -> None:
    """Print ``obj`` as indented JSON."""
    print(json.dumps(obj, indent=2), file=_stream(file))


def format_count(n: int) -> str:
    """A count for humans: exact below a million, else three significant digits (``1.1e+21``)."""
    return str(n) if n < 1_000_000 else f"{n:.3g}"


def error_line(message: object) -> str:
    """The one-line ``hsconas: error: ...`` message of a user error."""
    text = " ".join(str(message).split())
    return f"hsconas: error: {text}"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Wraps prose lines of descriptions and epilogs; keeps indented lines (examples) verbatim."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = []
        for line in text.splitlines():
            if not line or line[0].isspace():
                lines.append(indent + line)
            else:
                lines.append(
                    textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent)
                )
        return "\n".join(lines)


def positive_int(text: str) -> int:
    """argparse type for counts: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value
