"""``hsconas spaces``: list, show and sample the registered search spaces."""

from __future__ import annotations

import argparse
from typing import Any

from hsconas.cli.output import (
    HelpFormatter,
    format_count,
    positive_int,
    print_json,
    print_json_line,
    print_table,
)
from hsconas.space import get_space, list_spaces

_RAW = HelpFormatter


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``spaces`` command group."""
    group = subparsers.add_parser(
        "spaces",
        help="list, show and sample search spaces",
        description="Inspect the registered search spaces (framework-free genomes).",
        epilog="examples:\n  hsconas spaces list\n  hsconas spaces show nb201\n"
        "  hsconas spaces sample fbnet -n 5 --seed 0",
        formatter_class=_RAW,
    )
    sub = group.add_subparsers(dest="spaces_command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "list",
        help="names, sizes and descriptions of all spaces",
        description="List every registered search space with its size (number of distinct "
        "architectures), its number of genes (layer choices) and a description.",
        epilog="examples:\n  hsconas spaces list\n  hsconas spaces list --json | jq .name",
        formatter_class=_RAW,
    )
    p.add_argument("--json", action="store_true", help="one JSON object per space per line")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "show",
        help="the genes (layer choices) of one space",
        description="Show every gene (searchable layer choice) of SPACE with its allowed values, "
        "and the size of the space.",
        epilog="examples:\n  hsconas spaces show nb201\n  hsconas spaces show fbnet --json",
        formatter_class=_RAW,
    )
    p.add_argument("space", metavar="SPACE", help="registered space name (see `spaces list`)")
    p.add_argument("--json", action="store_true", help="print the description as one JSON object")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "sample",
        help="draw random architectures of a space",
        description="Draw N architectures uniformly per gene with a seeded generator and print "
        "their canonical strings, one per line (the same seed gives the same list).",
        epilog="examples:\n  hsconas spaces sample nb201 -n 3 --seed 0\n"
        "  hsconas spaces sample fbnet -n 100 --seed 1 --unique --json > archs.jsonl\n"
        "  hsconas model info archs.jsonl   # cost of each sampled architecture",
        formatter_class=_RAW,
    )
    p.add_argument("space", metavar="SPACE", help="registered space name")
    p.add_argument("-n", "--num", type=positive_int, default=1, help="how many (default 1)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: fresh entropy)")
    p.add_argument("--unique", action="store_true", help="no architecture repeats")
    p.add_argument(
        "--json", action="store_true", help="JSON Lines: one architecture JSON object per line"
    )
    p.set_defaults(func=cmd_sample)


def cmd_list(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for name in list_spaces():
        space = get_space(name)
        rows.append(
            {
                "name": name,
                "size": space.size(),
                "num_genes": len(space.genes),
                "description": space.description,
            }
        )
    if args.json:
        for row in rows:
            print_json_line(row)
        return 0
    print_table(
        ["space", "size", "genes", "description"],
        [[r["name"], format_count(r["size"]), r["num_genes"], r["description"]] for r in rows],
        align_right=[False, True, True, False],
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    space = get_space(args.space)
    genes = space.describe()
    if args.json:
        print_json(
            {
                "name": space.name,
                "description": space.description,
                "size": space.size(),
                "num_genes": len(space.genes),
                "genes": genes,
            }
        )
        return 0
    print(f"{space.name}: {space.description}")
    print(f"size: {format_count(space.size())} architectures, {len(space.genes)} genes")
    print_table(
        ["gene", "n", "choices"],
        [[g["gene"], len(g["choices"]), ", ".join(str(c) for c in g["choices"])] for g in genes],
        align_right=[False, True, False],
    )
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    space = get_space(args.space)
    if args.unique and args.num > space.size():
        from hsconas.errors import HsconasError

        raise HsconasError(
            f"{space.name} has only {space.size()} architectures; cannot draw {args.num} unique ones"
        )
    for arch in space.sample_many(args.num, args.seed, unique=args.unique):
        if args.json:
            print_json_line(space.to_json(arch))
        else:
            print(space.to_string(arch))
    return 0
