"""The shared ``hsconas latency`` command group, created once and extended by several modules.

Modules adding ``latency`` sub-commands call :func:`get_latency_subparsers` with the top-level
sub-parsers and add their commands to the returned object; the group parser exists only once.
"""

from __future__ import annotations

import argparse

_ATTR = "_hsconas_latency_subparsers"


def get_latency_subparsers(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """The sub-parsers of the ``latency`` group, creating the group on first use."""
    existing = getattr(subparsers, _ATTR, None)
    if existing is not None:
        return existing
    group = subparsers.add_parser(
        "latency",
        help="measure, model and transfer device latency",
        description="Latency on devices: measurement, learned predictors and few-shot transfer.",
        epilog="examples:\n"
        "  hsconas latency measure 'nb201:|nor_conv_3x3~0|+|none~0|skip_connect~1|+"
        "|none~0|none~1|nor_conv_3x3~2|' --backend onnxruntime\n"
        "  hsconas latency profile ofa-mbv3 --backend torch --resolution 160 --out cpu_ofa.json\n"
        "  hsconas latency transfer --space nb201 --source-table T.csv --target-table T.csv "
        "--target-device pixel3 --shots 10 --seed 0 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = group.add_subparsers(dest="latency_command", metavar="COMMAND", required=True)
    setattr(subparsers, _ATTR, sub)
    return sub
