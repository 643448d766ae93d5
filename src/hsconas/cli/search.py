"""``hsconas search``: hardware-aware architecture search with table, supernet or model evaluators."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from hsconas.cli.output import (
    HelpFormatter,
    positive_int,
    print_json,
    print_table,
)
from hsconas.cli.progress import progress
from hsconas.cli.search_sources import Sources, search_sources

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
        help=f"with --supernet, --accuracy or an --accuracy-model fitted with proxy inputs: "
        f"{_DATA_HELP} (the checkpoint's subset and validation split are reused when SPEC is "
        "the one it was trained on)",
    )
    acc.add_argument(
        "--calib-images", type=positive_int, default=2000, metavar="N",
        help="with --supernet: training images for BN recalibration (default 2000)",
    )  # fmt: skip
    acc.add_argument(
        "--accuracy-model", type=Path, metavar="MODEL.json",
        help="saved accuracy model of `hsconas accuracy fit` (predicted top-1 %%); one fitted "
        "with proxy inputs needs --data (proxy values cached in --store), one with a supernet "
        "input --supernet",
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


def cmd_search(args: argparse.Namespace) -> int:
    from hsconas.search import Problem, make_algorithm, run_search
    from hsconas.search.core.problem import BudgetInfeasibleError, SearchConfigError
    from hsconas.search.runner import stage_ranges
    from hsconas.store import ResultStore

    src = search_sources(args)
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
    src: Sources,
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
