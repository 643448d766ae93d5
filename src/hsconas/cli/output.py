"""Printing helpers of the CLI: tables (rich on a terminal, plain text when piped) and JSON Lines."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO, TypeVar

from hsconas.argtypes import positive_int
from hsconas.errors import HsconasError

__all__ = [
    "ArgumentParser", "HelpFormatter", "check_output_dir", "check_output_file", "check_outputs",
    "error_line", "positive_int", "print_json", "print_json_line", "print_table", "shorten",
]  # fmt: skip

_ActionT = TypeVar("_ActionT", bound=argparse.Action)

MAX_ECHO_CHARS = 80
"""Longest piece of user input an error message repeats verbatim; longer pieces are shortened."""


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


def shorten(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """``text`` cut to ``limit`` characters with a note of how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[{len(text) - limit} more characters]"


_QUOTED = re.compile(rf"'([^']{{{MAX_ECHO_CHARS + 1},}})'")
_LONG_WORD = re.compile(rf"\S{{{4 * MAX_ECHO_CHARS + 1},}}")


def error_line(message: object) -> str:
    """The one-line ``hsconas: error: ...`` message of a user error.

    Quoted user input longer than :data:`MAX_ECHO_CHARS` and any single word longer than four
    times that are shortened, so a pasted blob is not echoed back whole.
    """
    text = " ".join(str(message).split())
    text = _QUOTED.sub(lambda m: f"'{shorten(m.group(1))}'", text)
    text = _LONG_WORD.sub(lambda m: shorten(m.group(0), 4 * MAX_ECHO_CHARS), text)
    return f"hsconas: error: {text}"


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose usage errors are one shortened line (plus the usage) and exit 2,
    and whose help (with every subcommand's) shows each option's default."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("formatter_class") in (
            None, argparse.HelpFormatter, argparse.RawDescriptionHelpFormatter,
        ):  # fmt: skip
            kwargs["formatter_class"] = HelpFormatter
        super().__init__(*args, **kwargs)

    def _add_action(self, action: _ActionT) -> _ActionT:
        if action.help is None and _has_default(action):
            action.help = "(default: %(default)s)"
        return super()._add_action(action)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(
            2, f"{self.prog}: error: {error_line(message).removeprefix('hsconas: error: ')}\n"
        )


def check_output_file(flag: str, path: Path) -> None:
    """Fail before any work if the file ``path`` (given with ``flag``) cannot be written.

    Creates missing parent directories. Raises :class:`HsconasError` if ``path`` is a directory,
    its directory cannot be created, or is not writable.
    """
    if path.is_dir():
        raise HsconasError(f"{flag} {path}: is a directory; give a file name")
    _check_dir(flag, path, path.parent)
    if path.exists() and not os.access(path, os.W_OK):
        raise HsconasError(f"{flag} {path}: the file exists and is not writable")


def check_output_dir(flag: str, path: Path) -> None:
    """Fail before any work if the directory ``path`` (given with ``flag``) cannot be written.

    Creates it if missing. Raises :class:`HsconasError` if ``path`` is an existing file, cannot be
    created, or is not writable.
    """
    if path.exists() and not path.is_dir():
        raise HsconasError(f"{flag} {path}: is a file, not a directory; give a folder")
    _check_dir(flag, path, path)


def check_outputs(
    files: Mapping[str, Path | str | None] | None = None,
    dirs: Mapping[str, Path | str | None] | None = None,
) -> None:
    """:func:`check_output_file` / :func:`check_output_dir` for every ``{flag: path}`` given.

    Call it first in a command, so a bad ``--out`` fails in one line before any work is done;
    ``None`` paths (options not given) are skipped.
    """
    for flag, path in (files or {}).items():
        if path is not None:
            check_output_file(flag, Path(path))
    for flag, path in (dirs or {}).items():
        if path is not None:
            check_output_dir(flag, Path(path))


def _check_dir(flag: str, path: Path, folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise HsconasError(
            f"{flag} {path}: cannot create its directory {folder}: a file is in the way"
        ) from None
    except OSError as exc:
        raise HsconasError(
            f"{flag} {path}: cannot create its directory {folder} ({exc.strerror})"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise HsconasError(f"{flag} {path}: directory {folder} is not writable")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Wraps prose lines of descriptions and epilogs; keeps indented lines (examples) verbatim;
    ends every option's help with its default unless the help already states one."""

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

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text.lower() or not _has_default(action):
            return action.help
        return f"{text} (default: %(default)s)".lstrip()


def _has_default(action: argparse.Action) -> bool:
    """Whether ``action`` is an option whose default is worth printing."""
    default = action.default
    if not action.option_strings or default is None or default is argparse.SUPPRESS:
        return False
    if isinstance(action, argparse._StoreConstAction | argparse._AppendAction):
        return bool(default) and not isinstance(action, argparse._StoreConstAction)
    return not (isinstance(default, list | tuple) and not default)
