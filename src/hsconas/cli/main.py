"""Entry point of the ``hsconas`` command (``[project.scripts] hsconas``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from hsconas import __version__
from hsconas.cli import (
    accuracy,
    device,
    latency_measure,
    latency_models,
    model,
    profile,
    search,
    spaces,
    supernet,
)
from hsconas.cli import run as run_cmd
from hsconas.cli.output import ArgumentParser, HelpFormatter, error_line
from hsconas.errors import HsconasError

_GROUPS = (
    spaces,
    model,
    search,
    supernet,
    accuracy,
    latency_models,
    latency_measure,
    profile,
    run_cmd,
    device,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``hsconas`` with every command group."""
    parser = ArgumentParser(
        prog="hsconas",
        description="Hardware-aware neural architecture search: search spaces, models, latency.",
        epilog="examples:\n  hsconas spaces list\n  hsconas spaces sample nb201 -n 3 --seed 0\n"
        "  hsconas model info --ofa-config ofa_specialized_net_configs.jsonl\n"
        "run `hsconas COMMAND --help` for the options of each command.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hsconas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in _GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``hsconas`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    User errors (:class:`HsconasError`) print one ``hsconas: error: ...`` line on stderr and return
    2, like argparse usage errors; other exceptions propagate with their traceback.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except HsconasError as exc:
        print(error_line(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hsconas: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
