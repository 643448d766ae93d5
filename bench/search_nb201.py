"""Benchmark: search quality on NAS-Bench-201 (tabular accuracy x HELP device latencies).

For every (device, dataset, seed, algorithm) one Pareto search runs to the largest query count;
quality is read at 100/300/1000 distinct queries from the prefix of its queries (the algorithms do
not depend on the total budget, so a prefix is exactly a shorter run). Constraint mode: HSCoNAS with
budgets at the 25/50/75th latency percentile of the device (others with --constraint-percentiles),
success = the true best accuracy under the budget was found within 300 queries.

Usage:
    python bench/search_nb201.py --quick        # 3 contrasting devices x 3 datasets x 3 seeds
    python bench/search_nb201.py                # every device x 3 datasets x 10 seeds
    python bench/search_nb201.py --devices pixel3 gold_6240 --seeds 10

Writes bench/results/search_nb201_<machine>_py<version>_numpy<version>.{md,csv}. At most 2 worker
processes (the machine is shared). Finished tasks go to a ``.partial.jsonl`` log beside them as
they finish; rerunning an interrupted grid with the same arguments skips them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from multiprocessing import Pool
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from tasklog import TaskLog, task_key

if TYPE_CHECKING:
    from hsconas.search.pareto import TrueFront

QUERIES = (100, 300, 1000)
DATASETS = ("cifar10", "cifar100", "imagenet16-120")
QUICK_DEVICES = ("pixel3", "2080ti_256", "gold_6240")
ALGOS = {
    "hsconas": ("hsconas", {"shrinking": True}),
    "hsconas-noshrink": ("hsconas", {"shrinking": False}),
    "random": ("random", {}),
    "re": ("re", {}),
    "nsga2": ("nsga2", {}),
}
_CACHE: dict[str, object] = {}


def nb201_tables():  # type: ignore[no-untyped-def]
    """The NB201 accuracy table and the HELP latency table (loaded once per process)."""
    if not _CACHE:
        import hsconas.spaces  # noqa: F401
        from hsconas.data.tables import data_dir, load_latency_table, load_nb201_accuracy

        _CACHE["lat"] = load_latency_table(data_dir() / "nb201" / "latency_help.csv.gz")
        _CACHE["acc"] = load_nb201_accuracy()
    return _CACHE["acc"], _CACHE["lat"]


def nb201_evaluator(device: str, dataset: str):  # type: ignore[no-untyped-def]
    """Tabular evaluator of one device column and one dataset's accuracy."""
    from hsconas.search import TabularEvaluator
    from hsconas.space import get_space

    acc, lat = nb201_tables()
    return TabularEvaluator.from_tables(get_space("nb201"), acc, dataset, lat, device)


def pareto_search(
    device: str, dataset: str, seed: int, algo: str, max_q: int, extra: dict | None = None
) -> tuple[TrueFront, np.ndarray, np.ndarray, float, int]:
    """One Pareto search of ``algo`` (a key of ``ALGOS``; ``extra``: more HSCoNAS options) to
    ``max_q`` distinct queries: (true front, accuracies and latencies in query order, wall
    seconds, distinct queries)."""
    from hsconas.search import Problem, make_algorithm, run_search
    from hsconas.search.pareto import TrueFront

    ev = nb201_evaluator(device, dataset)
    truth = TrueFront.from_table(ev.accuracy, ev.latency_ms)
    problem = Problem(ev.space)
    name, opts = ALGOS[algo]
    if name == "hsconas":
        opts = {**opts, **(extra or {})}
    t0 = time.perf_counter()
    res = run_search(problem, make_algorithm(name, problem, seed=seed, **opts), ev, max_q)
    total = time.perf_counter() - t0
    acc = np.array([r.accuracy for r in res.records])
    lat = np.array([r.latency_ms for r in res.records])
    return truth, acc, lat, total, res.n_queries


def pareto_task(task: tuple[str, str, int, str, int, dict]) -> list[dict]:
    device, dataset, seed, algo, max_q, extra = task
    truth, acc, lat, total, n_queries = pareto_search(device, dataset, seed, algo, max_q, extra)
    rows = []
    for q in QUERIES:
        if q > max_q:
            continue
        rows.append(
            {
                "kind": "pareto", "device": device, "dataset": dataset, "seed": seed,
                "algorithm": algo, "queries": q,
                "front_share": truth.front_share(acc[:q], lat[:q]),
                "hv_ratio": truth.hv_ratio(acc[:q], lat[:q]),
                "igd": truth.igd(acc[:q], lat[:q]),
                "time_s": total, "n_queries": n_queries,
            }
        )  # fmt: skip
    return rows


CONSTRAINT_PERCENTILES = (25, 50, 75)


def constraint_task(task: tuple) -> list[dict]:
    """Constraint-mode searches of one (device, dataset, seed), one per budget percentile.

    ``task``: (device, dataset, seed, queries, EA options[, percentiles]); without percentiles
    the budgets are at ``CONSTRAINT_PERCENTILES`` (the key of a default task stays unchanged).
    """
    device, dataset, seed, q, extra, *rest = task
    percentiles = tuple(rest[0]) if rest else CONSTRAINT_PERCENTILES
    from hsconas.search import Problem, make_algorithm, run_search
    from hsconas.search.pareto import TrueFront

    ev = nb201_evaluator(device, dataset)
    truth = TrueFront.from_table(ev.accuracy, ev.latency_ms)
    rows = []
    for pct in percentiles:
        budget = float(np.percentile(ev.latency_ms, pct))
        problem = Problem(ev.space, mode="constraint", budget_ms=budget)
        res = run_search(problem, make_algorithm("hsconas", problem, seed=seed, **extra), ev, q)
        acc = np.array([r.accuracy for r in res.records])
        lat = np.array([r.latency_ms for r in res.records])
        regret = truth.regret(acc, lat, budget)
        rows.append(
            {
                "kind": "constraint", "device": device, "dataset": dataset, "seed": seed,
                "algorithm": "hsconas", "queries": q, "percentile": pct, "budget_ms": budget,
                "regret": regret, "found_best": float(regret <= 1e-9), "time_s": res.time_s,
            }
        )  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--devices", nargs="*")
    ap.add_argument("--seeds", type=int, help="seeds 0..N-1 (default: 3 with --quick, else 10)")
    ap.add_argument(
        "--first-seed",
        type=int,
        default=0,
        metavar="F",
        help="run seeds F..N-1 only (the grid's first seeds ran earlier: add their rows with "
        "--merge)",
    )
    ap.add_argument(
        "--merge",
        nargs="+",
        default=[],
        metavar="CSV",
        type=Path,
        help="results CSVs of this script whose rows join the tables (e.g. the first seeds of "
        "the same grid, or constraint runs of other devices, run earlier with the same code "
        "and options): their constraint rows and the Pareto rows of this grid's algorithms "
        "and devices",
    )
    ap.add_argument("--max-queries", type=int, default=max(QUERIES))
    ap.add_argument("--algorithms", nargs="*", default=list(ALGOS))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--constraint-devices", nargs="*", help="devices of the constraint-mode runs (default: all)"
    )
    ap.add_argument("--constraint-seeds", type=int, help="seeds of the constraint-mode runs")
    ap.add_argument(
        "--constraint-percentiles",
        type=int,
        nargs="+",
        default=list(CONSTRAINT_PERCENTILES),
        metavar="P",
        help="latency percentiles of the device at which the constraint-mode budgets are set "
        "(default: 25 50 75)",
    )
    ap.add_argument(
        "--hsconas-options",
        type=json.loads,
        default={},
        metavar="JSON",
        help="options of the HSCoNAS EA for an ablation, e.g. '{\"batch_size\": 4}'",
    )
    ap.add_argument("--suffix", default="", help="appended to the results file names")
    ap.add_argument("--note", default="", help="text added to the results file (e.g. subset used)")
    ap.add_argument(
        "--interim",
        action="store_true",
        help="run nothing: write the tables of the seeds an interrupted grid has finished for "
        "every task (the log is kept, so the grid can still be resumed)",
    )
    args = ap.parse_args()
    _, lat_table = nb201_tables()
    devices = args.devices or (list(QUICK_DEVICES) if args.quick else list(lat_table.devices))
    seeds = args.seeds or (3 if args.quick else 10)
    workers = _workers(args)
    # seed-major order (both kinds): an interrupted grid has whole seeds of every task
    ptasks = [
        (d, ds, s, a, args.max_queries, args.hsconas_options)
        for s in range(args.first_seed, seeds) for a in args.algorithms for d in devices
        for ds in DATASETS
    ]  # fmt: skip
    c_devices = devices if args.constraint_devices is None else args.constraint_devices
    c_seeds = args.constraint_seeds or seeds
    pcts = tuple(args.constraint_percentiles)
    ctasks = [
        (d, ds, s, 300, args.hsconas_options, *([pcts] if pcts != CONSTRAINT_PERCENTILES else []))
        for s in range(args.first_seed, c_seeds) for d in c_devices for ds in DATASETS
    ]  # fmt: skip
    t0 = time.perf_counter()
    # finished tasks are logged as they finish: rerunning an interrupted grid resumes it
    wanted = [task_key("pareto", t) for t in ptasks] + [task_key("constraint", t) for t in ctasks]
    log = TaskLog(_results_dir() / f"search_nb201_{_tag(args)}.partial.jsonl", wanted)
    if args.interim:
        write_interim(log, ptasks, ctasks, devices, seeds, args)
        return
    with Pool(workers) as pool:
        rows = log.run(pool, "pareto", pareto_task, ptasks)
        rows += log.run(pool, "constraint", constraint_task, ctasks)
    wall = time.perf_counter() - t0
    rows += merged_rows(args, devices)
    write(rows, devices, len({r["seed"] for r in rows}), wall, args)
    log.remove()


def merged_rows(args: argparse.Namespace, devices: list[str]) -> list[dict]:
    """Rows of the ``--merge`` files that join this grid's tables: every constraint row, and the
    Pareto rows of the grid's algorithms and devices."""
    return [
        r
        for path in args.merge
        for r in read_rows(path)
        if r["kind"] == "constraint"
        or (r["algorithm"] in args.algorithms and r["device"] in devices)
    ]


def read_rows(path: Path) -> list[dict]:
    """The rows of a results CSV written by :func:`write`, with their numbers as numbers."""
    if not path.exists():
        raise SystemExit(f"--merge: no such results file: {path}")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    ints = {"seed", "queries", "n_queries", "percentile"}
    numbers = {"front_share", "hv_ratio", "igd", "time_s", "budget_ms", "regret", "found_best"}
    return [
        {
            k: int(float(v)) if k in ints else float(v) if k in numbers else v
            for k, v in row.items()
            if v != ""
        }
        for row in rows
    ]


def write_interim(
    log: TaskLog,
    ptasks: list[tuple],
    ctasks: list[tuple],
    devices: list[str],
    seeds: int,
    args: argparse.Namespace,
) -> None:
    """Tables of the seeds whose every task (Pareto and constraint) is in the log."""
    pdone = log.finished("pareto", ptasks)
    cdone = log.finished("constraint", ctasks)
    done = pdone + cdone
    finished_seeds = [t[2] for t, _ in pdone] + [t[2] for t, _ in cdone]
    wanted_seeds = [t[2] for t in ptasks] + [t[2] for t in ctasks]
    complete = [
        s for s in range(args.first_seed, seeds) if finished_seeds.count(s) == wanted_seeds.count(s)
    ]
    rows = [r for t, out in done if t[2] in complete for r in out] + merged_rows(args, devices)
    note = (
        f"Interim tables of an unfinished grid: {len(done)} of {len(ptasks) + len(ctasks)} "
        f"tasks finished; only the seeds whose every task is finished are used: "
        f"{', '.join(map(str, complete)) or 'none'} (of {seeds})"
        f"{'; the rows of the --merge files are added' if args.merge else ''}. {args.note}"
    ).strip()
    n_seeds = len({r["seed"] for r in rows})
    write(rows, devices, n_seeds, None, argparse.Namespace(**{**vars(args), "note": note}))


def _found(rows: list[dict]) -> str:
    """Share and count of constraint-mode runs that found the true best, e.g. '90.0% (9 / 10)'."""
    n = int(sum(r["found_best"] for r in rows))
    return f"{n / len(rows):.1%} ({n} / {len(rows)})"


def _workers(args: argparse.Namespace) -> int:
    """Worker processes actually used: 1 or 2 (the machine is shared)."""
    return max(1, min(args.workers, 2))


def _workers_phrase(workers: int | None) -> str:
    """'1 worker', '2 workers', or (None: tables from a task log) 'workers as logged'."""
    if workers is None:
        return "workers as logged"
    return f"{workers} worker{'s' * (workers > 1)}"


def _results_dir() -> Path:
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    return out


def _tag(args: argparse.Namespace) -> str:
    machine = platform.node() or "machine"
    return f"{machine}_py{platform.python_version()}_numpy{np.__version__}{args.suffix}"


def _pareto_lines(
    rows: list[dict], devices: list[str], algos: list[str], workers: int | None
) -> list[str]:
    lines = ["", "## Pareto mode: mean front share / mean HV ratio", ""]
    header = "| queries | " + " | ".join(algos) + " |"
    lines += [header, "|" + "---|" * (len(algos) + 1)]
    for q in QUERIES:
        cells = []
        for a in algos:
            sel = [
                r
                for r in rows
                if r["kind"] == "pareto" and r["algorithm"] == a and r["queries"] == q
            ]
            if not sel:
                cells.append("-")
                continue
            sh = np.mean([r["front_share"] for r in sel])
            hv = np.mean([r["hv_ratio"] for r in sel])
            cells.append(f"{sh:.1%} / {hv:.4f}")
        lines.append(f"| {q} | " + " | ".join(cells) + " |")
    times = []
    top_q = max((r["queries"] for r in rows if r["kind"] == "pareto"), default=0)
    for a in algos:
        sel = [
            r["time_s"]
            for r in rows
            if r["kind"] == "pareto" and r["algorithm"] == a and r["queries"] == top_q
        ]
        if sel:
            times.append(f"{a} {np.mean(sel):.2f} s (max {np.max(sel):.2f} s)")
    lines += [
        "",
        f"mean wall time per {top_q}-query run ({_workers_phrase(workers)}, shared machine): "
        + "; ".join(times),
        "",
    ]
    lines += ["## Per device (300 queries): front share / HV ratio", ""]
    lines += [header.replace("queries", "device"), "|" + "---|" * (len(algos) + 1)]
    for d in devices:
        cells = []
        for a in algos:
            sel = [
                r
                for r in rows
                if r["kind"] == "pareto"
                and r["algorithm"] == a
                and r["queries"] == 300
                and r["device"] == d
            ]
            cells.append(
                f"{np.mean([r['front_share'] for r in sel]):.1%} / {np.mean([r['hv_ratio'] for r in sel]):.4f}"
                if sel
                else "-"
            )
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    return lines


def write(
    rows: list[dict],
    devices: list[str],
    seeds: int,
    wall: float | None,
    args: argparse.Namespace,
) -> None:
    """Write the rows as CSV and the tables as markdown (``wall`` None: tables written from a
    task log, so neither the wall time nor the worker count is known)."""
    machine = platform.node() or "machine"
    workers = _workers(args) if wall is not None else None
    tag = _tag(args)
    out = _results_dir()
    keys = sorted({k for r in rows for k in r})
    with open(out / f"search_nb201_{tag}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    lines = [
        f"# NB201 search benchmark ({'quick' if args.quick else 'full/subset'})",
        "",
        f"machine `{machine}`, {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}, numpy {np.__version__}; "
        + (
            f"wall time {wall / 60:.1f} min with {_workers_phrase(workers)}."
            if wall is not None
            else "wall time not measured (tables written from the task log)."
        ),
        f"devices: {', '.join(devices)}; datasets: {', '.join(DATASETS)}; seeds: {seeds}.",
        "front share = share of true-front (accuracy, latency) vectors found; HV ratio with "
        "objectives normalised by the true front's ideal/nadir, reference point nadir + 1% range.",
    ]
    if args.hsconas_options:
        lines += ["", f"HSCoNAS EA options: `{json.dumps(args.hsconas_options)}`."]
    if args.note:
        lines += ["", args.note]
    algos = [a for a in ALGOS if a in args.algorithms]
    if algos:
        lines += _pareto_lines(rows, devices, algos, workers)
    crows = [r for r in rows if r["kind"] == "constraint"]
    if crows:
        lines += [
            "",
            "## Constraint mode (HSCoNAS, 300 queries): share of seeds finding the true best",
            "",
            "| budget percentile | found true best | mean regret (points) |",
            "|---|---|---|",
        ]
    for pct in sorted({r["percentile"] for r in crows}):
        sel = [r for r in crows if r["percentile"] == pct]
        lines.append(f"| {pct} | {_found(sel)} | {np.mean([r['regret'] for r in sel]):.3f} |")
    if crows:
        lines += ["", "Per device, every budget: " + "; ".join(
            f"{d} {_found([r for r in crows if r['device'] == d])}"
            for d in dict.fromkeys(r["device"] for r in crows)
        ) + "."]  # fmt: skip
    text = "\n".join(lines) + "\n"
    (out / f"search_nb201_{tag}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
