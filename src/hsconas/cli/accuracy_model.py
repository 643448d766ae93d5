"""``hsconas accuracy fit | predict``: accuracy predictors fitted on a table of measured accuracies."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hsconas.cli.output import (
    HelpFormatter,
    check_outputs,
    positive_int,
    print_json,
    print_json_line,
    print_table,
)

__all__ = ["add_commands"]

_KINDS_DEFAULT = "ridge,gbdt,ridge+gbdt"
_DATA_HELP = "digits | mnist:PATH | cifar10:PATH | folder:PATH"


def _add_input_options(p: argparse.ArgumentParser, *, fit: bool) -> None:
    """The options that give a model its extra inputs (proxies, a supernet's accuracy)."""
    p.add_argument(
        "--data",
        metavar="SPEC",
        default=None,
        help=f"images the proxies see and the supernet is evaluated on ({_DATA_HELP}); "
        + ("needed with --proxies or --supernet" if fit else "needed by models with inputs")
        + " (default none)",
    )
    p.add_argument(
        "--store",
        type=Path,
        metavar="DB",
        default=None,
        help="results store caching the proxy values (a repeat is free; default none)",
    )
    p.add_argument(
        "--supernet",
        type=Path,
        metavar="CKPT",
        default=None,
        help="supernet checkpoint.pt or its folder: each network's accuracy through it "
        + ("is an input" if fit else "(models fitted with a supernet input)")
        + " (default none)",
    )
    p.add_argument(
        "--calib-images",
        type=positive_int,
        default=2000,
        metavar="N",
        help="with --supernet: training images for BN recalibration (default 2000)",
    )
    p.add_argument("--device", default="cpu", help="torch device of the proxies (default cpu)")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fit`` and ``predict`` to the ``accuracy`` command group."""
    p = subparsers.add_parser(
        "fit",
        help="fit an accuracy predictor on a table of architectures and accuracies",
        description="Fit an accuracy predictor of SPACE on a CSV table (one architecture string "
        "and one measured top-1 accuracy, percent, per row). Every model kind of --models is "
        "cross-validated by --folds folds grouped by distinct architecture (a network measured "
        "twice never sits on both sides of a split) next to the MACs-only baseline; the kind "
        "with the lowest cross-validated RMSE is refitted on every row and written to --out as "
        "JSON (no pickle). Features: the space's feature vector (one-hot genes, resolution, unit "
        "depths) plus log MACs and log parameters; with --proxies, each network's zero-cost "
        "proxy values on --data images (computed once, cached in --store), and with --supernet "
        "or --supernet-column its accuracy through a supernet; each such input enters as its "
        "position among the table's values (robust to a proxy's heavy tail). A model with "
        "inputs needs them again to predict (--data, --supernet).",
        epilog="examples:\n"
        "  hsconas accuracy fit --space ofa-mbv3 \\\n"
        "      --table ../shared/data/ofa_mbv3/imagenet_accuracy_dynast.csv --out ofa_acc.json\n"
        "  hsconas accuracy fit --space nb201 --table cells.csv --column acc "
        "--proxies naswot,jacov \\\n"
        "      --data cifar10:../shared/data/images/cifar10_jpg.tar.gz --store proxies.db "
        "--out nb201_acc.json\n"
        "  hsconas accuracy fit --space ofa-mbv3 --table T.csv --column acc --models ridge "
        "--folds 5 --json",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--space", required=True, help="space of the table's architectures")
    p.add_argument("--table", required=True, metavar="CSV", help="table of architectures")
    p.add_argument("--column", default="top1", help="accuracy column, percent (default top1)")
    p.add_argument(
        "--arch-column", default="arch", help="architecture string column (default arch)"
    )
    p.add_argument(
        "--models",
        default=_KINDS_DEFAULT,
        help=f"comma-separated model kinds to compare: ridge, gbdt, ridge+gbdt, macs "
        f"(default {_KINDS_DEFAULT})",
    )
    p.add_argument("--folds", type=positive_int, default=10, help="CV folds (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of folds and models (default 0)")
    p.add_argument(
        "--proxies",
        default=None,
        metavar="LIST",
        help="comma-separated zero-cost proxies used as inputs: naswot, synflow, snip, "
        "grad_norm, jacov, params, macs (default none)",
    )
    p.add_argument(
        "--proxy-seed", type=int, default=0, help="seed of weights and minibatch (default 0)"
    )
    p.add_argument(
        "--proxy-batch-size",
        type=positive_int,
        default=64,
        help="images per minibatch (default 64)",
    )
    p.add_argument(
        "--supernet-column",
        default=None,
        metavar="COL",
        help="table column holding each network's supernet accuracy, percent, used as an "
        "input instead of evaluating --supernet (default none)",
    )
    _add_input_options(p, fit=True)
    p.add_argument("--out", metavar="MODEL.json", default=None, help="write the model here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_fit)

    p = subparsers.add_parser(
        "predict",
        help="predict accuracy of architectures with a saved accuracy model",
        description="Print the predicted top-1 accuracy (percent) and its standard deviation "
        "(cross-validated error plus the model members' disagreement) of each architecture. "
        "ARCH is SPACE:ARCH_STRING or a bare architecture string of the model's space; "
        "--archs-file holds one per line (blank lines and # comments skipped) or is an "
        "architecture JSON file. A model fitted with proxy inputs computes them on --data "
        "images (cached in --store); one fitted with a supernet input needs --supernet.",
        epilog="examples:\n"
        "  hsconas accuracy predict ofa_acc.json "
        "'r224|k3e4-k5e6|k3e3-k3e3|k5e4-k3e3|k7e6-k5e3|k3e6-k5e4'\n"
        "  hsconas accuracy predict ofa_acc.json --archs-file archs.txt --json",
        formatter_class=HelpFormatter,
    )
    p.add_argument("model", metavar="MODEL.json", help="model file of `hsconas accuracy fit`")
    p.add_argument("archs", metavar="ARCH", nargs="*", help="architectures (none: only the file)")
    p.add_argument("--archs-file", metavar="FILE", default=None, help="architectures, one a line")
    _add_input_options(p, fit=False)
    p.add_argument("--json", action="store_true", help="one JSON object per architecture")
    p.set_defaults(func=cmd_predict)


def _cv_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            r["kind"],
            f"{r['kendall']:.4f} ± {r['kendall_sd']:.4f}",
            f"{r['spearman']:.4f}",
            f"{r['rmse']:.4f} ± {r['rmse_sd']:.4f}",
            "-" if r["kind"] == "macs" else f"{r['folds_beating_macs']}/{r['n_folds']}",
        ]
        for r in rows
    ]


def _proxy_list(text: str | None) -> list[str]:
    from hsconas.accuracy.predictor import AccuracyModelError
    from hsconas.accuracy.proxies import PROXIES

    if text is None:
        return []
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise AccuracyModelError("--proxies is empty; give e.g. naswot,jacov")
    for m in names:
        if m not in PROXIES:
            raise AccuracyModelError(
                f"--proxies: {m!r} is not a zero-cost proxy; choose from {', '.join(PROXIES)}"
            )
    if len(set(names)) < len(names):
        raise AccuracyModelError(f"--proxies names a proxy twice: {text}")
    return names


def _check_input_options(args: argparse.Namespace, proxies: list[str]) -> None:
    from hsconas.errors import HsconasError

    if args.supernet is not None and args.supernet_column is not None:
        raise HsconasError("give --supernet CKPT or --supernet-column COL, not both")
    if (proxies or args.supernet is not None) and args.data is None:
        what = "--proxies" if proxies else "--supernet"
        raise HsconasError(f"{what} needs --data SPEC ({_DATA_HELP}): the images it sees")
    if args.data is not None and not proxies and args.supernet is None:
        raise HsconasError("--data is only used with --proxies or --supernet")
    if args.store is not None:
        from hsconas.cli.output import check_output_file

        check_output_file("--store", args.store)


def _supernet(args: argparse.Namespace, space_name: str) -> Any:
    from hsconas.cli.search_sources import supernet_source

    args.json = getattr(args, "json", False)
    return supernet_source(args, space_name)


def _fit_inputs(
    args: argparse.Namespace, space: Any, archs: list[Any], proxies: list[str]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The extra inputs of every table row, and how the proxies were computed."""
    import numpy as np

    from hsconas.accuracy.accuracy_table import read_accuracy_table
    from hsconas.accuracy.predictor import SUPERNET_INPUT
    from hsconas.cli.progress import progress

    inputs: dict[str, Any] = {}
    settings = None
    if proxies:
        from hsconas.accuracy.predictor_inputs import proxy_settings
        from hsconas.accuracy.zero_cost import ProxyConfig, ZeroCostScorer
        from hsconas.store import ResultStore

        config = ProxyConfig(
            data=args.data,
            seed=args.proxy_seed,
            batch_size=args.proxy_batch_size,
            device=args.device,
        )
        store = ResultStore(args.store) if args.store is not None else None
        scorer = ZeroCostScorer(space, config, store=store)
        scorer.batches()  # a missing dataset fails before any network is built
        uniq = list(dict.fromkeys(archs))
        got: dict[str, list[float]] = {m: [] for m in proxies}
        with progress(f"proxies of {len(uniq)} networks", total=len(uniq)) as update:
            for lo in range(0, len(uniq), 16):
                part = scorer.values_of(uniq[lo : lo + 16], proxies)
                for m in proxies:
                    got[m].extend(part[m].tolist())
                update(min(lo + 16, len(uniq)))
        where = {a: i for i, a in enumerate(uniq)}
        for m in proxies:
            inputs[m] = np.array([got[m][where[a]] for a in archs])
        settings = proxy_settings(config)
    if args.supernet_column is not None:
        _, inputs[SUPERNET_INPUT] = read_accuracy_table(
            args.table, space, arch_column=args.arch_column, accuracy_column=args.supernet_column
        )
    elif args.supernet is not None:
        source = _supernet(args, space.name)
        uniq = list(dict.fromkeys(archs))
        values = np.asarray(source.evaluate(uniq), dtype=np.float64)
        where = {a: i for i, a in enumerate(uniq)}
        inputs[SUPERNET_INPUT] = np.array([values[where[a]] for a in archs])
    return inputs, settings


def cmd_fit(args: argparse.Namespace) -> int:
    check_outputs(files={"--out": args.out})
    from hsconas.accuracy.accuracy_table import read_accuracy_table
    from hsconas.accuracy.predictor import AccuracyModelError, fit_accuracy_model
    from hsconas.space import get_space

    space = get_space(args.space)
    kinds = [k.strip() for k in str(args.models).split(",") if k.strip()]
    if not kinds:
        raise AccuracyModelError("--models is empty; give e.g. ridge,gbdt")
    proxies = _proxy_list(args.proxies)
    _check_input_options(args, proxies)
    archs, acc = read_accuracy_table(
        args.table, space, arch_column=args.arch_column, accuracy_column=args.column
    )
    inputs, settings = _fit_inputs(args, space, archs, proxies)
    meta: dict[str, Any] = {"table": Path(args.table).name, "column": args.column}
    if args.supernet_column is not None:
        meta["supernet_column"] = args.supernet_column
    if args.supernet is not None:
        meta["supernet"] = Path(args.supernet).name
    model, rows = fit_accuracy_model(
        space,
        archs,
        acc,
        kinds=kinds,
        folds=args.folds,
        seed=args.seed,
        meta=meta,
        inputs=inputs or None,
        proxy_settings=settings,
    )
    if args.out:
        model.save(args.out)
    summary: dict[str, Any] = {
        "space": space.name,
        "table": str(args.table),
        "column": args.column,
        "rows": len(acc),
        "distinct_archs": model.meta["distinct_archs"],
        "folds": args.folds,
        "seed": args.seed,
        "selected": model.kind,
        "inputs": list(model.inputs),
        "cv": [r.as_dict() for r in rows],
        "out": str(args.out) if args.out else None,
    }
    if args.json:
        print_json(summary)
        return 0
    print_table(
        ["model", "kendall tau", "spearman", "rmse (top-1 points)", "folds beating macs"],
        _cv_rows(summary["cv"]),
        title=f"{space.name}: {len(acc)} rows ({summary['distinct_archs']} distinct), "
        f"{args.folds}-fold CV grouped by architecture (mean ± sd over folds)",
        align_right=[False, True, True, True, True],
    )
    print(f"selected: {model.kind} (lowest cross-validated RMSE)")
    if args.out:
        print(f"model written to {args.out}")
    return 0


def _read_archs_file(path: str, space_name: str) -> list[tuple[str, Any]]:
    from hsconas.errors import DataNotFoundError
    from hsconas.spaces.resolve import resolve_source

    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"--archs-file not found: {p}")
    text = p.read_text(encoding="utf-8", errors="replace")
    if text.lstrip()[:1] in ("{", "["):
        return [(r.name, r.arch) for r in resolve_source(str(p))]
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if s and not s.startswith("#"):
            out.append((s, _parse_arch(s, space_name, where=f"{p}:{i}")))
    return out


def _parse_arch(text: str, space_name: str, *, where: str = "") -> Any:
    from hsconas.accuracy.predictor import IncompatibleAccuracyModelError
    from hsconas.errors import InvalidArchitectureError
    from hsconas.space import get_space, list_spaces

    head, sep, rest = text.partition(":")
    if sep and head.strip() in list_spaces():
        if head.strip() != space_name:
            raise IncompatibleAccuracyModelError(
                f"{where + ': ' if where else ''}{text!r} is an architecture of space "
                f"{head.strip()!r}; the model predicts {space_name!r}"
            )
        text = rest
    try:
        return get_space(space_name).from_string(text)
    except InvalidArchitectureError as exc:
        if not where:
            raise
        raise type(exc)(
            f"{where}: {exc}", space=exc.space, gene=exc.gene, value=exc.value
        ) from None


def cmd_predict(args: argparse.Namespace) -> int:
    from hsconas.accuracy.predictor import AccuracyModelError, load_accuracy_model

    model = load_accuracy_model(args.model)
    named = [(a, _parse_arch(a, model.space)) for a in args.archs]
    if args.archs_file:
        named += _read_archs_file(args.archs_file, model.space)
    if not named:
        raise AccuracyModelError("no architectures: give ARCH arguments or --archs-file FILE")
    inputs = None
    if model.inputs:
        from hsconas.accuracy.predictor_inputs import PredictorInputs
        from hsconas.store import ResultStore

        if args.store is not None:
            from hsconas.cli.output import check_output_file

            check_output_file("--store", args.store)
        store = ResultStore(args.store) if args.store is not None else None
        supernet = None
        if model.features.supernet and args.supernet is not None:
            if args.data is None:
                raise AccuracyModelError(f"--supernet needs --data SPEC ({_DATA_HELP})")
            supernet = _supernet(args, model.space)
        provider = PredictorInputs(
            model, data=args.data, store=store, supernet=supernet, device=args.device
        )
        inputs = provider([a for _, a in named])
    mean, sd = model.predict([a for _, a in named], inputs)
    from hsconas.space import get_space

    space = get_space(model.space)
    rows = [
        {"arch": space.to_string(a), "accuracy": float(m), "sd": float(s)}
        for (_, a), m, s in zip(named, mean, sd, strict=True)
    ]
    if args.json:
        for row in rows:
            print_json_line(row)
        return 0
    print_table(
        ["arch", "accuracy %", "sd"],
        [[r["arch"], f"{r['accuracy']:.3f}", f"{r['sd']:.3f}"] for r in rows],
        align_right=[False, True, True],
    )
    return 0
