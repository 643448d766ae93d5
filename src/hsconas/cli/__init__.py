"""The ``hsconas`` command line: thin wrappers over the Python API (the only place that prints)."""

from hsconas.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
