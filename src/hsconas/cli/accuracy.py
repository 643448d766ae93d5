"""The ``hsconas accuracy`` command group: each sub-command module adds its commands to it."""

from __future__ import annotations

import argparse

from hsconas.cli import accuracy_model, accuracy_rank
from hsconas.cli.output import HelpFormatter


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``accuracy`` group and every sub-command module's commands to it."""
    group = subparsers.add_parser(
        "accuracy",
        help="predict and rank accuracy without training every network",
        description="Accuracy without training every network: predictors fitted on tables of "
        "measured accuracies.",
        epilog="examples:\n"
        "  hsconas accuracy fit --space ofa-mbv3 --table imagenet_accuracy_dynast.csv "
        "--out ofa_acc.json\n"
        "  hsconas accuracy predict ofa_acc.json 'ofa-mbv3:r224|k3e4-k5e6|k3e3-k3e3|k5e4-k3e3|"
        "k7e6-k5e3|k3e6-k5e4'",
        formatter_class=HelpFormatter,
    )
    sub = group.add_subparsers(dest="accuracy_command", metavar="COMMAND", required=True)
    accuracy_model.add_commands(sub)
    accuracy_rank.add_commands(sub)
