"""``hsconas search``: hardware-aware architecture search with table, supernet or model evaluators."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hsconas.cli.output import (
    HelpFormatter,
    check_output_dir,
    check_output_file,
    positive_int,
    print_json,
    print_table,
)
from hsconas.cli.progress import progress
from hsconas.errors import DataFormatError, HsconasError
from hsconas.space import get_space

_DATA_HELP = "digits | mnist:PATH | cifar10:PATH | folder:PATH"


#: the HSCoNAS EA's default batch size, for the help text (importing the EA to read it would
#: slow every command's start; tests/cli/test_cli.py checks that the two agree)
EA_DEFAULT_BATCH_SIZE = 4


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``search`` command."""
    p = subparsers.add_parser(
        "search",
        help="search a space for the accuracy-latency front or the best net under a budget",
        description="Search a space with the HSCoNAS evolutionary algorithm (or a baseline). "
        "A query is one distinct architecture.\n"
        "Accuracy: a table (--accuracy-table, --accuracy-column; the NB201 table by default for "
        "nb201) or a trained supernet (--supernet CHECKPOINT --data SPEC: each member is "
        "extracted, its batch norms recalibrated on --calib-images training images and its top-1 "
        "measured on the validation split the supernet was trained without).\n"
        "Latency: a recorded table (--latency-table with a --device column, maybe your own file; "
        "the HELP table by default for nb201) or a saved latency model (--latency-model: an "
        "HSCoNAS hardware model from `latency profile` or a predictor from `latency fit-table`).\n"
        "Any accuracy source goes with any latency source of the same space; with two tables "
        "the result is also scored against the exact Pareto front. With --store every "
        "evaluation is saved as it happens and --resume continues a run.",
        epilog="examples:\n"
        "  hsconas search --space nb201 --accuracy-table accuracy.csv --accuracy-column cifar10 \\\n"
        "      --latency-table latency_help.csv.gz --device pixel3 --queries 300 --seed 0 --json\n"
        "  hsconas search ... --mode constraint --budget-ms 10 --out results/\n"
        "  hsconas search ... --store runs.db --run-id s1 --resume\n"
        "  hsconas search --space hsconas-digits --supernet runs/sn --data digits \\\n"
        "      --latency-model hw_model.json --queries 200 --seed 0 --json\n"
        "  hsconas search --space nb201 --latency-model pixel3.json --queries 300   "
        "# table accuracy\n"
        "  hsconas search --space nb201 --supernet runs/nb201-sn --data cifar10:PATH \\\n"
        "      --latency-table my_phones.csv --device my_phone --mode constraint --budget-ms 5",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--space", default="nb201", help="search space (default nb201)")
    acc = p.add_argument_group("accuracy (one of)")
    acc.add_argument("--accuracy-table", type=Path, help="accuracy CSV (default for nb201: NB201)")
    acc.add_argument(
        "--accuracy-column", default="cifar10", help="accuracy column (default cifar10)"
    )
    acc.add_argument(
        "--supernet", type=Path, metavar="CHECKPOINT", help="supernet checkpoint.pt or its folder"
    )
    acc.add_argument(
        "--accuracy",
        metavar="proxy:METHOD",
        help="a label-free estimate on --data images: proxy:ensemble (zero-cost proxies "
        "combined) or one proxy (proxy:naswot, synflow, snip, grad_norm, jacov, params, macs); a "
        "score of about 0..100 against a fixed sample of the space, not a percent",
    )
    acc.add_argument(
        "--data",
        metavar="SPEC",
        help="with --supernet or --accuracy: " + _DATA_HELP + " (the checkpoint's subset and "
        "validation split are reused when SPEC is the one it was trained on)",
    )
    acc.add_argument(
        "--calib-images", type=positive_int, default=2000, metavar="N",
        help="with --supernet: training images for BN recalibration (default 2000)",
    )  # fmt: skip
    acc.add_argument(
        "--accuracy-model", type=Path, metavar="MODEL.json",
        help="saved accuracy model of `hsconas accuracy fit` (predicted top-1 %%)",
    )  # fmt: skip
    lat = p.add_argument_group("latency (one of)")
    lat.add_argument("--latency-table", type=Path, help="latency CSV (default for nb201: HELP)")
    lat.add_argument("--latency-model", type=Path, metavar="MODEL.json", help="saved latency model")
    lat.add_argument(
        "--device", help="latency table column (required with a table; checked against a model)"
    )
    p.add_argument(
        "--queries",
        type=positive_int,
        default=300,
        help="distinct architectures to evaluate (default 300); a repeated architecture costs "
        "nothing",
    )
    p.add_argument(
        "--seed", type=int, default=0,
        help="seed of the search (default 0): the same seed and options give the same result",
    )  # fmt: skip
    p.add_argument(
        "--mode",
        choices=("pareto", "constraint", "weighted"),
        default="pareto",
        help="pareto (default): the accuracy-latency front; constraint: the most accurate "
        "architecture within --budget-ms; weighted: the accuracy-latency reward around "
        "--budget-ms (MnasNet style)",
    )
    p.add_argument(
        "--budget-ms",
        type=float,
        default=None,
        help="latency budget (ms): required by constraint and weighted modes; in pareto mode "
        "it also reports the best architecture within it",
    )
    p.add_argument(
        "--algorithm",
        choices=("hsconas", "random", "re", "nsga2", "optuna-nsga2", "optuna-tpe"),
        default="hsconas",
        help="hsconas (default): surrogate-assisted evolution with space shrinking; baselines: "
        "random search, regularised evolution (re), NSGA-II (pymoo), Optuna's NSGA-II and TPE "
        "samplers (optuna-nsga2, optuna-tpe; needs optuna)",
    )
    p.add_argument(
        "--no-shrinking", action="store_true", help="hsconas: disable progressive space shrinking"
    )
    p.add_argument(
        "--channel-scaling",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="hsconas: dynamic channel scaling of the offspring in constraint and weighted modes "
        "on spaces with channel genes (default off: no measured gain on OFA-MBv3 yet, see "
        "bench/README.md; --no-channel-scaling ablates it)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"hsconas: architectures evaluated per generation (default {EA_DEFAULT_BATCH_SIZE})."
        " Smaller batches refit the surrogates more often: better fronts per query for more search "
        "overhead (8 halves it; 4 is worth it when each query is a real measurement or training)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--store", type=Path, help="results database (SQLite)")
    p.add_argument("--run-id", help="run id in the store (default: derived from the options)")
    p.add_argument("--resume", action="store_true", help="continue the stored run")
    p.add_argument(
        "--out", type=Path, help="write front.csv, front.json, result.json and plots here"
    )
    p.add_argument(
        "--space-restrict",
        type=Path,
        metavar="FILE",
        help='JSON {"space": NAME, "restrict": {gene: [choices]}}: search only this subspace',
    )
    p.set_defaults(func=cmd_search)


def _load_restrict(path: Path, space_name: str) -> dict[str, list[Any]]:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise HsconasError(f"--space-restrict file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("restrict"), dict):
        raise DataFormatError(f'{path}: expected {{"space": ..., "restrict": {{gene: [choices]}}}}')
    if doc.get("space", space_name) != space_name:
        raise DataFormatError(f"{path} restricts space {doc['space']!r}, not {space_name!r}")
    return dict(doc["restrict"])


@dataclass
class _Sources:
    """The evaluator of a search and what the command reports about it."""

    evaluator: Any
    truth: Any  # TrueFront when both sources are tables (known optimum), else None
    device: str
    accuracy_label: str
    space: Any
    min_latency_ms: float | None  # fastest latency of the space when known (tables)


def _check_choice(args: argparse.Namespace) -> None:
    """Option combinations that cannot work, and unwritable outputs, before anything is loaded."""
    get_space(args.space)  # an unknown space is named before anything else
    if args.out is not None:
        check_output_dir("--out", args.out)
    if args.store is not None:
        check_output_file("--store", args.store)
    if args.resume and args.store is None:
        raise HsconasError("--resume needs --store DB (and the same --run-id)")
    given = [
        f for f, v in (("--supernet", args.supernet), ("--accuracy-table", args.accuracy_table),
                       ("--accuracy-model", args.accuracy_model),
                       ("--accuracy", args.accuracy)) if v is not None
    ]  # fmt: skip
    if len(given) > 1:
        raise HsconasError(f"give one accuracy source, not both {given[0]} and {given[1]}")
    if args.latency_model is not None and args.latency_table is not None:
        raise HsconasError("give --latency-model or --latency-table for latency, not both")
    if args.supernet is not None and args.data is None:
        raise HsconasError(
            "--supernet needs --data SPEC (digits | mnist:PATH | cifar10:PATH | folder:PATH) "
            "to recalibrate batch norms and measure accuracy on"
        )
    if args.supernet is None and args.accuracy is None and args.data is not None:
        raise HsconasError("--data is only used with --supernet CHECKPOINT or --accuracy proxy:M")
    if not given and args.space != "nb201":
        raise HsconasError(
            f"no accuracy source for space {args.space!r}: give --supernet CHECKPOINT --data SPEC, "
            "--accuracy-model MODEL.json or --accuracy proxy:ensemble --data SPEC (accuracy "
            "tables exist for nb201 only)"
        )
    if args.latency_model is None and args.latency_table is None and args.space != "nb201":
        raise HsconasError(
            f"no latency source for space {args.space!r}: give --latency-model MODEL.json or "
            "--latency-table CSV --device COLUMN"
        )
    if args.latency_model is None and args.device is None:
        raise HsconasError("--device COLUMN is required with a latency table")


def _supernet_source(args: argparse.Namespace, space_name: str) -> Any:
    """Load the checkpoint and the data; the accuracy source of a supernet."""
    from hsconas.accuracy.evaluate import EvalBatches
    from hsconas.accuracy.train import CHECKPOINT_NAME, load_trained
    from hsconas.data.datasets import load_dataset
    from hsconas.evaluation import SupernetAccuracy
    from hsconas.latency.base import file_digest
    from hsconas.nn.supernet import Supernet

    model, ckpt = load_trained(args.supernet)
    if not isinstance(model, Supernet):
        raise HsconasError(f"{args.supernet} holds a standalone network, not a supernet")
    if model.space.name != space_name:
        raise HsconasError(
            f"{args.supernet} is a supernet of space {model.space.name!r}, not of --space "
            f"{space_name!r}"
        )
    # the validation split the supernet was trained without: same subset, fraction and seed
    info = dict(ckpt.get("extra", {}).get("data", {}))
    same = info.get("spec") == args.data
    subset = info.get("subset") if same else None
    val_fraction = float(info.get("val_fraction", 0.1)) if same else 0.1
    data_seed = int(info.get("seed", 0)) if same else 0
    data = load_dataset(
        args.data, subset=subset, val_fraction=val_fraction, seed=data_seed, progress=not args.json
    )
    batches = EvalBatches.from_dataset(data, split="val", calib_images=args.calib_images)
    path = args.supernet / CHECKPOINT_NAME if args.supernet.is_dir() else args.supernet
    settings = {
        "kind": "supernet",
        "checkpoint": path.name,
        "sha256": file_digest(path),
        "data": args.data,
        "subset": subset,
        "val_fraction": val_fraction,
        "data_seed": data_seed,
        "split": "val",
        "calib_images": args.calib_images,
    }
    return SupernetAccuracy(model, batches, settings=settings)


def _sources(args: argparse.Namespace) -> _Sources:
    import hsconas.spaces  # noqa: F401  (registers the spaces)
    from hsconas.data.tables import data_dir, load_latency_table, load_nb201_accuracy
    from hsconas.evaluation import (
        ModelLatency,
        TableAccuracy,
        TableLatency,
        TabularEvaluator,
        make_evaluator,
    )
    from hsconas.evaluation.factory import accuracy_model_source
    from hsconas.search.indicators import TrueFront
    from hsconas.space import get_space

    _check_choice(args)
    full = get_space(args.space)
    lat_source: Any = None
    if args.latency_model is not None:  # cheap: check it before loading a checkpoint
        lat_source = ModelLatency.from_file(args.latency_model, space=full.name, device=args.device)
    space = full
    acc_source: Any = None
    if args.supernet is not None:
        acc_source = _supernet_source(args, full.name)
        space = acc_source.space  # a supernet trained on a subspace searches that subspace
    if args.space_restrict is not None:
        space = space.restrict(_load_restrict(args.space_restrict, args.space))
    if acc_source is None and args.accuracy_model is not None:
        acc_source = accuracy_model_source(args.accuracy_model, space=full.name)
        space = _within_coverage(space, acc_source.covered, args.accuracy_model)
    if acc_source is None and args.accuracy is not None:
        from hsconas.evaluation.proxy import proxy_accuracy_source
        from hsconas.store import ResultStore

        store = ResultStore(args.store) if args.store is not None else None
        acc_source = proxy_accuracy_source(args.accuracy, space=space, data=args.data, store=store)
    if acc_source is None:
        acc_table = load_nb201_accuracy(
            args.accuracy_table or data_dir() / "nb201" / "accuracy.csv"
        )
        acc_source = TableAccuracy(acc_table, args.accuracy_column)
    min_ms = None
    if lat_source is None:
        lat_table = load_latency_table(
            args.latency_table or data_dir() / "nb201" / "latency_help.csv.gz",
            space=args.space,
            devices=[args.device],
        )
        lat_source = TableLatency(lat_table, args.device)
        column = lat_table.column(args.device)
        if space.is_restricted:
            column = column[[i for i, a in enumerate(lat_table.archs) if space.contains(a)]]
        min_ms = float(column.min())
    evaluator = make_evaluator(space, acc_source, lat_source)
    if isinstance(evaluator, TabularEvaluator):  # both tables: the known true front
        return _Sources(
            evaluator,
            TrueFront.from_table(evaluator.accuracy, evaluator.latency_ms),
            args.device,
            args.accuracy_column,
            space,
            float(evaluator.latency_ms.min()),
        )
    device = args.device or lat_source.device
    label = "supernet" if args.supernet is not None else args.accuracy_column
    if args.accuracy_model is not None or args.accuracy is not None:
        label = acc_source.name
    return _Sources(evaluator, None, device, label, space, min_ms)


def _within_coverage(space: Any, covered: dict[str, list[Any]], path: Path) -> Any:
    """``space`` restricted to the gene values an accuracy model's table held (a table measured
    at resolution 224 says nothing about 160), with a note on stderr when that narrows it."""
    narrowed = {
        g: [c for c in space.gene(g).choices if c in values]
        for g, values in covered.items()
        if g in space.gene_names
    }
    for g, kept in narrowed.items():
        if not kept:
            raise HsconasError(
                f"{path}: the accuracy model knows {g} {covered[g]} only, none of which the "
                f"searched space allows"
            )
    changed = {g: v for g, v in narrowed.items() if len(v) < len(space.gene(g).choices)}
    if changed:
        shown = "; ".join(f"{g} in {v}" for g, v in changed.items())
        print(
            f"note: searching {shown} only: the accuracy model's table covers no other values",
            file=sys.stderr,
        )
        space = space.restrict(changed)
    return space


def cmd_search(args: argparse.Namespace) -> int:
    from hsconas.search import Problem, make_algorithm, run_search
    from hsconas.search.core.problem import BudgetInfeasibleError, SearchConfigError
    from hsconas.search.runner import stage_ranges
    from hsconas.store import ResultStore

    src = _sources(args)
    evaluator, truth, space = src.evaluator, src.truth, src.space
    fastest = src.min_latency_ms
    if args.budget_ms is not None and fastest is not None and args.budget_ms < fastest:
        raise BudgetInfeasibleError(
            f"nothing meets the budget: the fastest architecture takes "
            f"{fastest:.3g} ms on {src.device}, above --budget-ms {args.budget_ms}"
        )
    problem = Problem(space, mode=args.mode, budget_ms=args.budget_ms)
    options: dict[str, Any] = {}
    if args.algorithm == "hsconas":
        options["shrinking"] = not args.no_shrinking
        options["channel_scaling"] = args.channel_scaling
        if args.batch_size is not None:
            options["batch_size"] = args.batch_size
    elif args.batch_size is not None:
        raise SearchConfigError(
            f"--batch-size applies to --algorithm hsconas only, not {args.algorithm}"
        )
    algorithm = make_algorithm(args.algorithm, problem, seed=args.seed, **options)
    store = ResultStore(args.store) if args.store is not None else None
    run_id = args.run_id
    if store is not None and run_id is None:
        run_id = (
            f"search-{args.space}-{src.device}-{src.accuracy_label}-{args.algorithm}-"
            f"{args.mode}-s{args.seed}"
        )
    with progress(f"search {space.name} on {src.device}", total=args.queries) as update:
        result = run_search(
            problem, algorithm, evaluator, args.queries, store=store, run_id=run_id,
            resume=args.resume, on_batch=lambda n: update(n, args.queries, "queries"),
        )  # fmt: skip
    acc = [r.accuracy for r in result.records]
    lat = [r.latency_ms for r in result.records]
    summary = result.summary()
    summary["run_id"] = run_id
    summary["space"] = space.name
    summary["device"] = src.device
    summary["accuracy_column"] = src.accuracy_label
    summary["evaluator"] = dict(evaluator.settings)
    summary["algorithm"] = dict(result.config.get("algorithm", {}))  # its name, seed and options
    summary["n_accuracy_evals"] = int(getattr(evaluator, "n_accuracy_evals", 0))
    stages = summary["info"].get("stages", [])
    for stage, (start, end) in zip(stages, stage_ranges(stages, len(acc)), strict=True):
        stage["queries"] = [start, end]  # the queries the stage evaluated
    summary["quality"] = None  # the true front is known only when both sources are tables
    if truth is not None:
        summary["quality"] = {
            "hv_ratio": truth.hv_ratio(acc, lat),
            "front_share": truth.front_share(acc, lat),
            "igd": truth.igd(acc, lat),
            "true_front_points": truth.n_points,
        }
        for stage in stages:  # front quality when each shrinking stage ended
            n = stage["queries"][1]
            stage["hv_ratio"] = truth.hv_ratio(acc[:n], lat[:n]) if n else 0.0
            stage["front_share"] = truth.front_share(acc[:n], lat[:n]) if n else 0.0
        if args.budget_ms is not None:
            summary["quality"]["regret"] = truth.regret(acc, lat, args.budget_ms)
            summary["true_best_under_budget"] = truth.best_under(args.budget_ms)
    if args.out is not None:
        _write_outputs(args.out, summary, result, truth, acc, lat, args, src)
        summary["out"] = str(args.out)
    if args.json:
        print_json(summary)
        return 0
    print_table(
        ["latency_ms", "accuracy", "arch"],
        [[f"{r.latency_ms:.3f}", f"{r.accuracy:.2f}", r.key] for r in result.front],
        title=f"found front ({len(result.front)} points) after {result.n_queries} distinct queries",
        align_right=[True, True, False],
    )
    q = summary["quality"]
    if q is not None:
        print(
            f"HV ratio {q['hv_ratio']:.4f}  front share {q['front_share']:.1%}  "
            f"IGD {q['igd']:.4f}  time {result.time_s:.2f} s"
        )
    else:
        n_sn = summary["n_accuracy_evals"]
        what = "networks scored by proxies" if args.accuracy else "supernet evaluations"
        print(f"time {result.time_s:.2f} s" + (f" ({n_sn} {what})" if n_sn else ""))
    for stage in stages:
        start, end = stage["queries"]
        quality = (
            f"; at its end HV ratio {stage['hv_ratio']:.4f}, front share {stage['front_share']:.1%}"
            if q is not None
            else ""
        )
        dropped = "" if stage["stage"] == 0 else f" after dropping {stage['dropped'] or 'nothing'}"
        print(
            f"stage {stage['stage']} (queries {start}-{end}): {stage['space_size']} "
            f"architectures{dropped}{quality}"
        )
    if args.budget_ms is not None:
        if result.best is None:
            print(f"nothing found meets the budget of {args.budget_ms} ms")
        else:
            b = result.best
            regret = f"  (regret {q['regret']:.2f} points)" if q is not None else ""
            print(
                f"best under {args.budget_ms} ms: {b.key}  acc {b.accuracy:.2f}  "
                f"lat {b.latency_ms:.3f} ms{regret}"
            )
    return 0


def _write_outputs(
    out: Path,
    summary: dict[str, Any],
    result: Any,
    truth: Any,
    acc: list[float],
    lat: list[float],
    args: argparse.Namespace,
    src: _Sources,
) -> None:
    from hsconas.report.search_plots import front_plot_data, hv_curve, render_front, render_hv_curve

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "front.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["arch", "accuracy", "latency_ms"])
        for r in result.front:
            w.writerow([r.key, r.accuracy, r.latency_ms])
    (out / "front.json").write_text(json.dumps(summary["front"], indent=2))
    (out / "result.json").write_text(json.dumps(summary, indent=2))
    title = f"{args.algorithm} on {src.device} / {src.accuracy_label}"
    render_front(
        front_plot_data(acc, lat, truth=truth, budget_ms=args.budget_ms),
        out / "front.png",
        title=title,
    )
    if truth is not None:  # the hypervolume ratio needs the true front
        qs, hv = hv_curve(acc, lat, truth)
        render_hv_curve(qs, hv, out / "hv.png", title=title)
