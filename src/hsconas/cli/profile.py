"""``hsconas profile``: block and design-space profiling, space reduction, reports."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hsconas.cli.output import HelpFormatter, check_outputs, print_json, print_table
from hsconas.cli.progress import callback, progress
from hsconas.errors import HsconasError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``profile`` command group (blocks, reduce, report)."""
    group = subparsers.add_parser(
        "profile",
        help="profile blocks per device, reduce the space, write reports",
        description="Block and design-space profiling from end-to-end measurements: for every "
        "(layer, block) specification, sample networks with that block forced there, measure "
        "them, and compare with a random baseline; attribute latency and accuracy to "
        "block-positions by regression; reduce the space per device.",
        epilog="examples:\n"
        "  hsconas profile blocks nb201 --source table:latency_help.csv.gz --device pixel3 \\\n"
        "      --accuracy-table accuracy.csv --accuracy-column cifar100 --samples 20 --out prof/\n"
        "  hsconas profile reduce prof/profile.json --out pixel3_space.json --keep-min 2\n"
        "  hsconas profile report prof_a/profile.json prof_b/profile.json --html report.html",
        formatter_class=HelpFormatter,
    )
    sub = group.add_subparsers(dest="profile_command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "blocks",
        help="profile every block specification of a space on one device",
        description="Sample --samples networks per (layer, block) specification with the block "
        "forced at that layer, measure them end to end (each distinct network once, reused "
        "across specifications and through --store), compare with a random baseline, and fit "
        "the block-position regression. Writes CSV and Parquet tables, profile.json, heatmap "
        "PNGs and insights.txt into --out.",
        epilog="examples:\n"
        "  hsconas profile blocks nb201 --source table:latency_help.csv.gz --device pixel3 \\\n"
        "      --accuracy-table accuracy.csv --accuracy-column cifar100 --samples 20 --out prof/\n"
        "  hsconas profile blocks nb201 --source model:pixel3_model.json --samples 10 --out p/\n"
        "  hsconas profile blocks ofa-mbv3 --source backend:onnxruntime --samples 3 --out cpu/\n"
        "  hsconas profile blocks ofa-mbv3 --source backend:onnxruntime \\\n"
        "      --accuracy-model ofa_imagenet.json --samples 3 --out cpu_acc/",
        formatter_class=HelpFormatter,
    )
    p.add_argument("space", metavar="SPACE", help="registered space name")
    p.add_argument(
        "--source",
        required=True,
        help="backend:NAME (torch, onnxruntime, openvino, cuda, remote:http(s)://HOST:PORT), "
        "model:FILE or table:CSV",
    )
    p.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="backend:remote:URL: file holding the agent's token (default: $HSCONAS_DEVICE_TOKEN)",
    )
    p.add_argument("--device", help="device column of a table source; device name otherwise")
    p.add_argument(
        "--reference",
        action="store_true",
        help="backend sources: pair every timed run with a run of the space's middle network "
        "(cancels the machine's speed drift, about twice the measuring time)",
    )
    p.add_argument("--accuracy-table", type=Path, help="accuracy CSV (NB201 schema)")
    p.add_argument("--accuracy-column", default=None, help="accuracy column (e.g. cifar100)")
    p.add_argument(
        "--accuracy-model",
        type=Path,
        metavar="MODEL",
        help="accuracy from a saved accuracy model (hsconas accuracy fit; e.g. OFA-MBv3's "
        "ImageNet predictor); the space keeps to the gene values its table covered "
        "(resolution 224 for OFA-MBv3)",
    )
    p.add_argument("--samples", type=int, default=20, help="networks per specification")
    p.add_argument("--baseline", type=int, default=None, help="random baseline size (default 4x)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--blocks", nargs="+", help="profile only these blocks (choice names)")
    p.add_argument("--positions", nargs="+", help="profile only these layers (index or name)")
    p.add_argument("--space-restrict", type=Path, help="profile inside a reduced space (JSON)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--store", type=Path, help="results database (SQLite); reuses measurements")
    p.add_argument("--no-figures", action="store_true", help="skip the heatmap PNGs")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_blocks)

    p = sub.add_parser(
        "reduce",
        help="reduce a space for the profiled device",
        description="Drop, per layer, the blocks the profile shows to be unhelpful on this device, "
        "keeping at least --keep-min per layer. Rule `front-rate` (default): a block stays when "
        "it is among the two cheapest or the most accurate of its layer, when a Pareto-optimal "
        "profiled network uses it, or when the networks holding it reach the near-front (best "
        "quarter by non-dominated sorting) at least --min-rate-ratio as often as the layer's best "
        "block. Rule "
        "`dominated`: drop blocks that another block of the layer beats in both marginal "
        "latency and accuracy effects. The output is accepted by `hsconas search "
        "--space-restrict`.",
        epilog="examples:\n"
        "  hsconas profile reduce prof/profile.json --out pixel3_space.json\n"
        "  hsconas profile reduce prof/ --out r.json --keep-min 3 --random-control rnd.json --seed 1",
        formatter_class=HelpFormatter,
    )
    p.add_argument("profile", metavar="PROFILE", type=Path, help="profile.json (or its directory)")
    p.add_argument("--out", type=Path, required=True, help="reduced space JSON")
    p.add_argument("--keep-min", type=int, default=2, help="minimum choices kept per layer")
    p.add_argument(
        "--rule",
        choices=("front-rate", "dominated"),
        default="front-rate",
        help="how dropped blocks are chosen (see above)",
    )
    p.add_argument(
        "--min-rate-ratio",
        type=float,
        default=0.35,
        metavar="R",
        help="front-rate rule: a block needs at least R times its layer's best near-front rate "
        "(0-1; higher drops more; a larger profile supports a higher R)",
    )
    p.add_argument(
        "--random-control", type=Path, help="also write a random reduction of equal size"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random control")
    p.add_argument("--json", action="store_true", help="print the reduction as JSON")
    p.set_defaults(func=cmd_reduce)

    p = sub.add_parser(
        "report",
        help="HTML report of one or more profiles",
        description="Bundle heatmaps, the cross-device comparison, tables and insights of the "
        "given profiles into one self-contained HTML file.",
        epilog="examples:\n  hsconas profile report a/profile.json b/profile.json --html report.html",
        formatter_class=HelpFormatter,
    )
    p.add_argument("profiles", metavar="PROFILE", type=Path, nargs="+")
    p.add_argument("--html", type=Path, required=True, help="output HTML file")
    p.add_argument("--title", default="Block profiles")
    p.set_defaults(func=cmd_report)


def cmd_blocks(args: argparse.Namespace) -> int:
    check_outputs(files={"--store": args.store}, dirs={"--out": args.out})
    import hsconas.spaces  # noqa: F401  (registers the spaces)
    from hsconas.evaluation import AccuracySource, TableAccuracy, parse_latency_source
    from hsconas.profiling import enumerate_specs, profile_blocks
    from hsconas.profiling.insights import device_insights, format_insights
    from hsconas.profiling.reduce import load_reduction
    from hsconas.space import get_space
    from hsconas.store import ResultStore

    space = get_space(args.space)
    if args.source.startswith("backend:remote:"):
        from hsconas.hardware.remote import resolve_token, use_token_file

        use_token_file(args.token_file)
        resolve_token()  # an unusable token file: one line before any work
    if args.space_restrict is not None:
        red = load_reduction(args.space_restrict)
        if red.space != space.name:
            raise HsconasError(
                f"{args.space_restrict} restricts space {red.space!r}, not {space.name!r}"
            )
        space = red.apply(space)
    accuracy: AccuracySource | None = None
    if args.accuracy_model is not None:
        if args.accuracy_table is not None or args.accuracy_column is not None:
            raise HsconasError("--accuracy-model and --accuracy-table exclude each other")
        from hsconas.cli.search_sources import within_coverage
        from hsconas.evaluation.factory import accuracy_model_source

        model = accuracy_model_source(args.accuracy_model, space=space.name)
        space = within_coverage(space, model.covered, args.accuracy_model)
        accuracy = model
    specs = enumerate_specs(space, blocks=args.blocks, positions=args.positions)
    source = parse_latency_source(
        args.source, space=space.name, device=args.device, reference=args.reference
    )
    if args.accuracy_table is not None or args.accuracy_column is not None:
        if args.accuracy_column is None:
            raise HsconasError("--accuracy-table needs --accuracy-column (e.g. cifar100)")
        accuracy = TableAccuracy.from_path(args.accuracy_table, args.accuracy_column)
    store = ResultStore(args.store) if args.store is not None else None
    with progress(f"profile blocks {space.name}") as update:
        prof = profile_blocks(
            space, specs, source, accuracy=accuracy, samples=args.samples,
            baseline_samples=args.baseline, seed=args.seed, store=store,
            progress=callback(update, "measuring networks"),
        )  # fmt: skip
    paths = prof.save(args.out)
    insights = device_insights(prof)
    (args.out / "insights.txt").write_text(format_insights(insights), encoding="utf-8")
    figures: list[str] = []
    if not args.no_figures:
        from hsconas.report.profile_report import write_profile_figures

        figures = [str(p) for p in write_profile_figures(prof, args.out)]
    summary: dict[str, Any] = {
        "space": prof.space,
        "device": prof.device,
        "source": dict(prof.source),
        "accuracy": prof.accuracy,
        "n_specs": len(prof.specs),
        "samples": prof.samples,
        "n_distinct": prof.n_distinct,
        "n_new": prof.n_new,
        "latency_r2": prof.regression["latency_ms"].r2,
        "profile": str(paths["profile"]),
        "figures": figures,
        "insights": [i.text for i in insights],
    }
    if args.json:
        print_json(summary)
        return 0
    print(
        f"profiled {len(prof.specs)} specifications on {prof.device}: {prof.n_distinct} distinct "
        f"networks ({prof.n_new} newly measured), latency R2 {summary['latency_r2']:.3f}"
    )
    from hsconas.profiling.friendliness import block_friendliness

    bf = block_friendliness(prof).sort_values("rank")
    print_table(
        ["block", "latency %", "placement spread %", "accuracy pts", "score", "rank"],
        [
            [
                r.block,
                f"{r.lat_effect_pct:+.1f}",
                f"{r.placement_spread_pct:.1f}",
                f"{r.acc_effect:+.2f}",
                f"{r.score:+.2f}",
                r.rank,
            ]
            for r in bf.itertuples()
        ],
        title=f"blocks on {prof.device}",
        align_right=[False, True, True, True, True, True],
    )
    for i in insights:
        print(f"- {i.text}")
    print(f"wrote {args.out}/ (profile.json, CSV/Parquet tables, insights.txt, heatmaps)")
    return 0


def cmd_reduce(args: argparse.Namespace) -> int:
    check_outputs(files={"--out": args.out, "--random-control": args.random_control})
    import hsconas.spaces  # noqa: F401
    from hsconas.profiling import load_profile
    from hsconas.profiling.reduce import random_reduction, reduce_space

    prof = load_profile(args.profile)
    red = reduce_space(
        prof, rule=args.rule, keep_min=args.keep_min, min_rate_ratio=args.min_rate_ratio
    )
    red.save(args.out)
    doc: dict[str, Any] = {"reduction": red.to_json(), "out": str(args.out)}
    if args.random_control is not None:
        ctrl = random_reduction(red, seed=args.seed)
        ctrl.save(args.random_control)
        doc["random_control"] = ctrl.to_json()
    if args.json:
        print_json(doc)
        return 0
    print(
        f"{red.space} on {red.device}: {red.full_size} -> {red.size} architectures "
        f"({red.n_choices} choices kept, at least {red.keep_min} per layer)"
    )
    for key, why in red.reasons.items():
        print(f"  drop {key}: {why}")
    print(f"wrote {args.out}" + (f" and {args.random_control}" if args.random_control else ""))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    check_outputs(files={"--html": args.html})
    import hsconas.spaces  # noqa: F401
    from hsconas.profiling import load_profile
    from hsconas.report.profile_report import write_html

    profiles = [load_profile(p) for p in args.profiles]
    spaces = {p.space for p in profiles}
    if len(spaces) > 1:
        raise HsconasError(f"profiles of different spaces cannot share a report: {sorted(spaces)}")
    out = write_html(profiles, args.html, title=args.title)
    print(f"wrote {out}")
    return 0
