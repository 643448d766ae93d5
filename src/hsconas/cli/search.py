"""``hsconas search``: hardware-aware architecture search against an evaluator (tables for now)."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from hsconas.cli.output import print_json, print_table
from hsconas.errors import DataFormatError, HsconasError

_RAW = argparse.RawDescriptionHelpFormatter


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``search`` command."""
    p = subparsers.add_parser(
        "search",
        help="search a space for the accuracy-latency front or the best net under a budget",
        description="Search a space with the HSCoNAS evolutionary algorithm (or a baseline) using "
        "tabular accuracy and latency. A query is one distinct architecture read from the tables. "
        "With --store every evaluation is saved as it happens and --resume continues a run.",
        epilog="examples:\n"
        "  hsconas search --space nb201 --accuracy-table accuracy.csv --accuracy-column cifar10 \\\n"
        "      --latency-table latency_help.csv.gz --device pixel3 --queries 300 --seed 0 --json\n"
        "  hsconas search ... --mode constraint --budget-ms 10 --out results/\n"
        "  hsconas search ... --store runs.db --run-id s1 --resume",
        formatter_class=_RAW,
    )
    p.add_argument("--space", default="nb201", help="search space (default nb201)")
    p.add_argument("--accuracy-table", type=Path, help="accuracy CSV (default: the NB201 table)")
    p.add_argument("--accuracy-column", default="cifar10", help="accuracy column (default cifar10)")
    p.add_argument("--latency-table", type=Path, help="latency CSV (default: the HELP NB201 table)")
    p.add_argument("--device", required=True, help="latency column of the target device")
    p.add_argument("--queries", type=int, default=300, help="distinct architectures to query")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mode", choices=("pareto", "constraint", "weighted"), default="pareto")
    p.add_argument("--budget-ms", type=float, default=None, help="latency budget (ms)")
    p.add_argument("--algorithm", choices=("hsconas", "random", "re", "nsga2"), default="hsconas")
    p.add_argument("--no-shrinking", action="store_true", help="disable space shrinking")
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


def cmd_search(args: argparse.Namespace) -> int:
    import hsconas.spaces  # noqa: F401  (registers the spaces)
    from hsconas.data.tables import data_dir, load_latency_table, load_nb201_accuracy
    from hsconas.search import Problem, TabularEvaluator, make_algorithm, run_search
    from hsconas.search.pareto import TrueFront
    from hsconas.search.problem import BudgetInfeasibleError
    from hsconas.space import get_space
    from hsconas.store import ResultStore

    if args.space != "nb201":
        raise HsconasError(
            f"tabular search supports --space nb201 only for now (got {args.space!r}); "
            "supernet and latency-model evaluators will add other spaces"
        )
    if args.resume and args.store is None:
        raise HsconasError("--resume needs --store DB (and the same --run-id)")
    space = get_space(args.space)
    if args.space_restrict is not None:
        space = space.restrict(_load_restrict(args.space_restrict, args.space))
    acc_path = args.accuracy_table or data_dir() / "nb201" / "accuracy.csv"
    lat_path = args.latency_table or data_dir() / "nb201" / "latency_help.csv.gz"
    acc_table = load_nb201_accuracy(acc_path)
    lat_table = load_latency_table(lat_path, space=args.space, devices=[args.device])
    evaluator = TabularEvaluator.from_tables(
        get_space(args.space), acc_table, args.accuracy_column, lat_table, args.device
    )
    if space.is_restricted:
        evaluator = evaluator.restricted_to(space)
    if args.budget_ms is not None and args.budget_ms < float(evaluator.latency_ms.min()):
        raise BudgetInfeasibleError(
            f"nothing meets the budget: the fastest architecture takes "
            f"{evaluator.latency_ms.min():.3g} ms on {args.device}, above --budget-ms {args.budget_ms}"
        )
    problem = Problem(space, mode=args.mode, budget_ms=args.budget_ms)
    algorithm = make_algorithm(
        args.algorithm,
        problem,
        seed=args.seed,
        **({"shrinking": not args.no_shrinking} if args.algorithm == "hsconas" else {}),
    )
    store = ResultStore(args.store) if args.store is not None else None
    run_id = args.run_id
    if store is not None and run_id is None:
        run_id = f"search-{args.space}-{args.device}-{args.accuracy_column}-{args.algorithm}-{args.mode}-s{args.seed}"
    result = run_search(
        problem, algorithm, evaluator, args.queries, store=store, run_id=run_id, resume=args.resume
    )
    truth = TrueFront.from_table(evaluator.accuracy, evaluator.latency_ms)
    acc = [r.accuracy for r in result.records]
    lat = [r.latency_ms for r in result.records]
    summary = result.summary()
    summary["run_id"] = run_id
    summary["device"] = args.device
    summary["accuracy_column"] = args.accuracy_column
    summary["quality"] = {
        "hv_ratio": truth.hv_ratio(acc, lat),
        "front_share": truth.front_share(acc, lat),
        "igd": truth.igd(acc, lat),
        "true_front_points": truth.n_points,
    }
    stages = summary["info"].get("stages", [])
    for stage in stages:  # front quality when each shrinking stage ended
        n = int(stage["n_queries"])
        stage["hv_ratio"] = truth.hv_ratio(acc[:n], lat[:n]) if n else 0.0
        stage["front_share"] = truth.front_share(acc[:n], lat[:n]) if n else 0.0
    if args.budget_ms is not None:
        summary["quality"]["regret"] = truth.regret(acc, lat, args.budget_ms)
        summary["true_best_under_budget"] = truth.best_under(args.budget_ms)
    if args.out is not None:
        _write_outputs(args.out, summary, result, truth, acc, lat, args)
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
    print(
        f"HV ratio {q['hv_ratio']:.4f}  front share {q['front_share']:.1%}  IGD {q['igd']:.4f}  "
        f"time {result.time_s:.2f} s"
    )
    for stage in stages:
        print(
            f"stage {stage['stage']}: from query {stage['n_queries']} space size "
            f"{stage['space_size']}, HV ratio then {stage['hv_ratio']:.4f}, "
            f"front share {stage['front_share']:.1%}, dropped {stage['dropped'] or 'nothing'}"
        )
    if args.budget_ms is not None:
        if result.best is None:
            print(f"nothing found meets the budget of {args.budget_ms} ms")
        else:
            b = result.best
            print(
                f"best under {args.budget_ms} ms: {b.key}  acc {b.accuracy:.2f}  lat {b.latency_ms:.3f} ms  "
                f"(regret {q['regret']:.2f} points)"
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
    title = f"{args.algorithm} on {args.device} / {args.accuracy_column}"
    render_front(
        front_plot_data(acc, lat, truth=truth, budget_ms=args.budget_ms),
        out / "front.png",
        title=title,
    )
    qs, hv = hv_curve(acc, lat, truth)
    render_hv_curve(qs, hv, out / "hv.png", title=title)
