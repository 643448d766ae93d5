"""``hsconas latency transfer | fit-table | predict``: learned latency models on recorded tables."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from hsconas.cli.latency_group import get_latency_subparsers
from hsconas.cli.output import check_outputs, positive_int, print_json, print_json_line, print_table

_RAW = argparse.RawDescriptionHelpFormatter


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``transfer``, ``fit-table`` and ``predict`` to the ``latency`` command group."""
    from hsconas.latency.predictors import PREDICTORS

    sub = get_latency_subparsers(subparsers)

    p = sub.add_parser(
        "transfer",
        help="few-shot transfer of latency to a new device from recorded devices",
        description="Fit TARGET_DEVICE from --shots seeded rows of the target table, using every "
        "device column of the source tables except the target column as source devices, and "
        "report rank correlation and error on all other rows of the target table. The shots are "
        "numpy.random.default_rng(SEED).choice over the rows above 0.05 ms, without replacement. "
        "The prediction mixes a twin-device model (best-fitting source lines) and a Bayesian "
        "hardware-embedding model (SVD of the source latencies), weighted by how well one source "
        "line explains the shots (twin_share).",
        epilog="examples:\n  hsconas latency transfer --space nb201 "
        "--source-table nb201/latency_help.csv.gz \\\n"
        "      --target-table nb201/latency_help.csv.gz --target-device pixel3 --shots 10 --json",
        formatter_class=_RAW,
    )
    p.add_argument("--space", required=True, help="space of the tables (nb201, fbnet, ofa-mbv3)")
    p.add_argument(
        "--source-table",
        action="append",
        required=True,
        metavar="CSV",
        help="table of source devices (repeatable; may be the target table)",
    )
    p.add_argument("--target-table", required=True, metavar="CSV", help="table of the target")
    p.add_argument("--target-device", required=True, metavar="COLUMN", help="target column")
    p.add_argument("--shots", type=positive_int, default=10, help="measured targets (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shot sample (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_transfer)

    p = sub.add_parser(
        "fit-table",
        help="fit a latency predictor on recorded rows of one device and save it",
        description="Fit a predictor on --train seeded rows of a recorded device column, report "
        "RMSE, MAPE, within +/-5%/10%, Kendall and Spearman on the held-out rows, and write a "
        "JSON model file.",
        epilog="examples:\n  hsconas latency fit-table --table fbnet/latency_help.csv.gz "
        "--device pixel3 --model gbdt --train 1000 --out pixel3.json",
        formatter_class=_RAW,
    )
    p.add_argument("--table", required=True, metavar="CSV", help="recorded latency table")
    p.add_argument("--space", default=None, help="expected space (detected if omitted)")
    p.add_argument("--device", required=True, metavar="COLUMN", help="device column")
    p.add_argument("--model", choices=sorted(PREDICTORS), default="linear", help="predictor")
    p.add_argument("--train", type=positive_int, default=1000, help="training rows (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the training rows (default 0)")
    p.add_argument(
        "--max-test", type=positive_int, default=5000, help="held-out rows scored (default 5000)"
    )
    p.add_argument("--out", metavar="MODEL.json", default=None, help="write the model here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_fit_table)

    p = sub.add_parser(
        "predict",
        help="predict latency of architectures with a saved model",
        description="Predict the latency (ms, with a standard deviation) of each architecture "
        "named by SOURCE (SPACE:ARCH_STRING or an architecture JSON file) with MODEL.",
        epilog="examples:\n  hsconas latency predict pixel3.json "
        "'nb201:|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|'\n"
        "  hsconas latency predict cpu_ofa.json "
        "'ofa-mbv3:r160|k3e4-k5e6|k3e3-k3e3|k5e4-k3e3|k7e6-k5e3|k3e6-k5e4'"
        "   # a model from `latency profile` (at its resolution)",
        formatter_class=_RAW,
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        help="model file written by `latency fit-table` or `latency profile`",
    )
    p.add_argument("sources", metavar="SOURCE", nargs="+", help="architectures")
    p.add_argument("--json", action="store_true", help="one JSON object per architecture")
    p.set_defaults(func=cmd_predict)


def _metric_row(d: dict[str, Any]) -> list[str]:
    return [
        f"{d['spearman']:.4f}",
        f"{d['kendall']:.4f}",
        f"{100 * d['within_5pct']:.1f}",
        f"{100 * d['within_10pct']:.1f}",
        f"{d['rmse_ms']:.3f}",
        f"{d['mape_pct']:.2f}",
        str(d["n_test"]),
    ]


_METRIC_HEADERS = ["spearman", "kendall", "±5% %", "±10% %", "rmse ms", "mape %", "n_test"]


def cmd_transfer(args: argparse.Namespace) -> int:
    from hsconas.data.tables import load_latency_table
    from hsconas.latency.transfer import few_shot_transfer
    from hsconas.space import get_space

    space = get_space(args.space).name
    target = load_latency_table(args.target_table, space=space)
    target.column(args.target_device)  # unknown column -> error listing the columns
    target_path = Path(args.target_table).resolve()
    sources = [
        target if Path(s).resolve() == target_path else load_latency_table(s, space=space)
        for s in args.source_table
    ]
    res = few_shot_transfer(sources, target, args.target_device, shots=args.shots, seed=args.seed)
    m = res.metrics.as_dict()
    out: dict[str, Any] = {
        "space": space,
        "target_device": res.target_device,
        "shots": res.shots,
        "seed": res.seed,
        "n_sources": res.n_sources,
        **{k: v for k, v in m.items() if k != "n"},
        "n_test": m["n"],
        "top_sources": [{"device": n, "weight": w} for n, w in res.top_sources],
        "twin_share": res.twin_share,
    }
    if args.json:
        print_json(out)
        return 0
    print_table(
        _METRIC_HEADERS,
        [_metric_row(out)],
        title=f"{res.target_device}: {res.shots} shots (seed {res.seed}), "
        f"{res.n_sources} source devices",
        align_right=[True] * len(_METRIC_HEADERS),
    )
    top = ", ".join(f"{n} ({w:.2f})" for n, w in res.top_sources)
    print(f"most weighted sources: {top}")
    print(
        f"mix: {res.twin_share:.2f} twin-device model, {1 - res.twin_share:.2f} "
        "hardware-embedding model"
    )
    return 0


def cmd_fit_table(args: argparse.Namespace) -> int:
    check_outputs(files={"--out": args.out})
    from hsconas.data.tables import load_latency_table
    from hsconas.latency.metrics import evaluate
    from hsconas.latency.model_io import save_model
    from hsconas.latency.predictors import make_predictor
    from hsconas.latency.transfer import DEGENERATE_MS, TransferError

    table = load_latency_table(args.table, space=args.space)
    y = table.column(args.device)
    ok = np.flatnonzero(y > DEGENERATE_MS)
    if ok.size <= args.train:
        raise TransferError(
            f"--train {args.train} leaves no held-out rows: {args.device!r} has {ok.size} usable rows"
        )
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(ok)
    train, test = perm[: args.train], perm[args.train : args.train + args.max_test]
    model = make_predictor(args.model)
    model.fit([table.archs[i] for i in train], y[train])
    metrics = evaluate(model.predict([table.archs[i] for i in test]), y[test]).as_dict()
    summary: dict[str, Any] = {
        "table": str(args.table),
        "space": table.space,
        "device": args.device,
        "model": args.model,
        "train": int(train.size),
        "seed": args.seed,
        **{k: v for k, v in metrics.items() if k != "n"},
        "n_test": metrics["n"],
    }
    if args.out:
        save_model(model, args.out, space=table.space, device=args.device, meta=summary)
        summary["out"] = str(args.out)
    if args.json:
        print_json(summary)
        return 0
    print_table(
        _METRIC_HEADERS,
        [_metric_row(summary)],
        title=f"{args.model} on {args.device} ({table.space}), {train.size} training rows",
        align_right=[True] * len(_METRIC_HEADERS),
    )
    if args.out:
        print(f"model written to {args.out}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from hsconas.latency.base import ModelFileError, load_latency_model
    from hsconas.spaces.resolve import resolve_source

    # a learned predictor (`latency fit-table`) or an HSCoNAS hardware model (`latency profile`)
    model = load_latency_model(args.model)
    resolved = [r for s in args.sources for r in resolve_source(s)]
    for r in resolved:
        if r.arch.space != model.space:
            raise ModelFileError(
                f"{args.model} is a latency model of space {model.space!r} (device "
                f"{model.device!r}) but {r.name} is an architecture of space {r.arch.space!r}"
            )
    mean, std = model.predict_with_uncertainty([r.arch for r in resolved])
    rows = [
        {
            "name": r.name,
            "space": model.space,
            "device": model.device,
            "latency_ms": float(m),
            "std_ms": float(s),
        }
        for r, m, s in zip(resolved, mean, std, strict=True)
    ]
    if args.json:
        for row in rows:
            print_json_line(row)
        return 0
    print_table(
        ["architecture", "device", "latency ms", "± ms"],
        [[r["name"], r["device"], f"{r['latency_ms']:.3f}", f"{r['std_ms']:.3f}"] for r in rows],
        align_right=[False, False, True, True],
    )
    return 0
