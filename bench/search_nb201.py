"""Benchmark: search quality on NAS-Bench-201 (tabular accuracy x HELP device latencies).

For every (device, dataset, seed, algorithm) one Pareto search runs to the largest query count;
quality is read at 100/300/1000 distinct queries from the prefix of its queries (the algorithms do
not depend on the total budget, so a prefix is exactly a shorter run) and scored against the exact
Pareto front: share of the front found and hypervolume ratio. The tables pair HSCoNAS's runs with
the baselines' (the runs in which it is at least as good as the best of them) and, with
``--reference``, with the same runs of another results file (better / worse, Wilcoxon p).
Constraint mode: HSCoNAS with budgets at the 25/50/75th latency percentile of the device (others
with --constraint-percentiles), success = the true best accuracy under the budget was found within
300 queries.

Usage (from the repository root):
    python -m bench.search_nb201 --seeds 10 --max-queries 300 --constraint-devices
                                     # the headline Pareto grid: 21 devices x 3 datasets x 10 seeds
    python -m bench.search_nb201 --seeds 3 --algorithms --tag constraint
                                     # the headline constraint grid (3 seeds x 3 budgets)
    python -m bench.search_nb201 --quick --seeds 1 --constraint-devices --tag 1000q
                                     # 3 devices x 3 datasets, seed 0, to 1000 queries
    python -m bench.search_nb201 --devices pixel3 --seeds 1 --max-queries 300 --workers 1 \\
        --constraint-devices --tag trial   # one device: a few minutes
    python -m bench.search_nb201 --tables-from OLD.csv --reference REF.csv --tag compare
                                     # runs nothing: the tables of earlier results, paired

Writes bench/results/<machine>/search_nb201.{csv,md} (``search_nb201_<tag>`` with --tag). At most
2 worker processes (the machine is shared). Finished tasks go to a ``.partial.jsonl`` log beside
them as they finish; rerunning an interrupted grid with the same arguments skips them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from multiprocessing import Pool
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from bench.common import (
    TaskLog,
    add_tag_argument,
    machine_tag,
    results_stem,
    software,
    task_key,
    write_csv,
)

if TYPE_CHECKING:
    from hsconas.search.indicators import TrueFront

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
DEFAULT_ALGOS = ("hsconas", "random", "re", "nsga2")
BASELINES = ("random", "re", "nsga2")
RUN = ["device", "dataset", "seed", "queries"]
HV_TARGET, SHARE_TARGET = 0.995, 0.5
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
    from hsconas.search.indicators import TrueFront

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
    from hsconas.search.indicators import TrueFront

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
    ap.add_argument(
        "--algorithms",
        nargs="*",
        default=list(DEFAULT_ALGOS),
        choices=list(ALGOS),
        help="Pareto-mode algorithms (default: hsconas random re nsga2; none: constraint mode only)",
    )
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
    add_tag_argument(ap)
    ap.add_argument("--note", default="", help="text added to the results file (e.g. subset used)")
    ap.add_argument(
        "--interim",
        action="store_true",
        help="run nothing: write the tables of the seeds an interrupted grid has finished for "
        "every task (the log is kept, so the grid can still be resumed)",
    )
    ap.add_argument(
        "--tables-from",
        nargs="+",
        default=[],
        metavar="CSV",
        type=Path,
        help="run nothing: write the tables of the rows of these results CSVs (with --reference: "
        "paired with that file's runs)",
    )
    ap.add_argument(
        "--reference",
        nargs="+",
        default=[],
        metavar="CSV",
        type=Path,
        help="results CSVs of the same algorithm (e.g. earlier defaults) to pair HSCoNAS's runs "
        "with; a later file's rows replace an earlier one's of the same run",
    )
    args = ap.parse_args()
    if args.tables_from:
        write_tables_from(args)
        return
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
    stem = results_stem("search_nb201", args.tag)
    log = TaskLog(stem.with_name(stem.name + ".partial.jsonl"), wanted)
    if args.interim:
        write_interim(log, ptasks, ctasks, devices, seeds, args)
        return
    ran = any(k not in log.done for k in wanted)
    with Pool(workers) as pool:
        rows = log.run(pool, "pareto", pareto_task, ptasks)
        rows += log.run(pool, "constraint", constraint_task, ctasks)
    wall = time.perf_counter() - t0 if ran else None
    rows += merged_rows(args, devices)
    write(rows, devices, len({r["seed"] for r in rows}), wall, args)
    log.remove()


def write_tables_from(args: argparse.Namespace) -> None:
    """The tables of the rows of ``--tables-from`` (no search runs)."""
    rows = [r for path in args.tables_from for r in read_rows(path)]
    devices = list(dict.fromkeys(r["device"] for r in rows))
    args.algorithms = [a for a in ALGOS if any(r["algorithm"] == a for r in rows)]
    args.quick = False
    seeds = len({r["seed"] for r in rows})
    names = ", ".join(p.name for p in args.tables_from)
    args.note = f"Tables of the rows of {names}. {args.note}".strip()
    write(rows, devices, seeds, None, args)


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


def _workers(args: argparse.Namespace) -> int:
    """Worker processes actually used: 1 or 2 (the machine is shared)."""
    return max(1, min(args.workers, 2))


def _workers_phrase(workers: int | None) -> str:
    """'1 worker', '2 workers', or (None: tables from logged or earlier rows) 'workers as
    logged'."""
    if workers is None:
        return "workers as logged"
    return f"{workers} worker{'s' * (workers > 1)}"


def whole_ms_devices(devices: list[str]) -> list[str]:
    """The devices whose recorded latencies are whole milliseconds (the HELP phones)."""
    _, lat = nb201_tables()
    out = []
    for d in devices:
        if d in lat.devices:
            col = np.asarray(lat.column(d), dtype=float)
            if np.all(col == np.round(col)):
                out.append(d)
    return out


def _pareto_lines(
    rows: list[dict], devices: list[str], algos: list[str], workers: int | None
) -> list[str]:
    lines = ["", "## Pareto mode: mean front share / mean HV ratio", ""]
    header = "| queries | " + " | ".join(algos) + " |"
    lines += [header, "|" + "---|" * (len(algos) + 1)]
    for q in QUERIES:
        if not any(r["kind"] == "pareto" and r["queries"] == q for r in rows):
            continue
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


def pareto_rows(rows: pd.DataFrame, algorithm: str | None = None) -> pd.DataFrame:
    """The Pareto rows (of one algorithm if given); a later row replaces an earlier one of the
    same run."""
    rows = rows[rows["kind"] == "pareto"]
    if algorithm is not None:
        rows = rows[rows["algorithm"] == algorithm]
    return rows.drop_duplicates(subset=[*RUN, "algorithm"], keep="last")


def _mean(rows: pd.DataFrame) -> str:
    return f"{rows['front_share'].mean():.1%} / {rows['hv_ratio'].mean():.4f}"


def dataset_lines(cand: pd.DataFrame, label: str, whole_ms: list[str]) -> list[str]:
    """``label``'s runs per dataset and query count, the runs and devices at the targets, the
    devices that report whole milliseconds apart from the others, and the worst runs."""
    lines = [
        f"## {label} per dataset: mean front share / HV ratio",
        "",
        "| queries | " + " | ".join(sorted(cand["dataset"].unique()))
        + " | all | runs >= 0.995 HV | devices >= 0.995 HV (mean) | devices >= 50% share |",
        "|---|" + "---|" * (cand["dataset"].nunique() + 4),
    ]  # fmt: skip
    for q, at_q in cand.groupby("queries"):
        per_ds = [_mean(g) for _, g in at_q.groupby("dataset")]
        dev = at_q.groupby("device")[["front_share", "hv_ratio"]].mean()
        lines.append(
            f"| {q} | " + " | ".join(per_ds) + f" | **{_mean(at_q)}** | "
            f"{int((at_q['hv_ratio'] >= HV_TARGET).sum())} / {len(at_q)} | "
            f"{int((dev['hv_ratio'] >= HV_TARGET).sum())} / {len(dev)} | "
            f"{int((dev['front_share'] >= SHARE_TARGET).sum())} / {len(dev)} |"
        )
    ms = cand["device"].isin(whole_ms)
    if ms.any() and (~ms).any():
        lines += [
            "",
            f"The devices that report whole milliseconds ({', '.join(whole_ms)}) and the others: "
            + "; ".join(
                f"{q} queries {_mean(g[ms[g.index]])} and {_mean(g[~ms[g.index]])}"
                for q, g in cand.groupby("queries")
            )
            + ".",
        ]
    top = cand[cand["queries"] == cand["queries"].max()]
    worst = top.nsmallest(6, "hv_ratio")
    lines += [
        "",
        f"Worst runs at {top['queries'].max()} queries (device, dataset, seed: front share / HV): "
        + "; ".join(
            f"{r.device} {r.dataset} {r.seed}: {r.front_share:.1%} / {r.hv_ratio:.4f}"
            for r in worst.itertuples()
        )
        + ".",
        "",
    ]
    return lines


def baseline_lines(cand: pd.DataFrame, base: pd.DataFrame) -> list[str]:
    """The candidate's runs against the baselines' runs of the same (device, dataset, seed,
    queries): means, and the runs in which the candidate is at least as good as the best."""
    base = base[base["algorithm"].isin(BASELINES)].merge(cand[RUN].drop_duplicates(), on=RUN)
    if base.empty:
        return []
    wide = base.pivot_table(index=RUN, columns="algorithm", values=["front_share", "hv_ratio"])
    best = pd.DataFrame(
        {
            "best_share": wide["front_share"].max(axis=1),
            "best_hv": wide["hv_ratio"].max(axis=1),
        }
    ).reset_index()
    paired = cand.merge(best, on=RUN)
    algos = [a for a in BASELINES if a in set(base["algorithm"])]
    lines = [
        "## Against the baselines (the same runs)",
        "",
        "| queries | candidate | " + " | ".join(algos) + " | candidate >= best baseline: "
        "front share / HV ratio |",
        "|---|---|" + "---|" * (len(algos) + 1),
    ]
    for q, p in paired.groupby("queries"):
        at_q = base[base["queries"] == q]
        cells = [_mean(at_q[at_q["algorithm"] == a]) for a in algos]
        share_ok = int((p["front_share"] >= p["best_share"]).sum())
        hv_ok = int((p["hv_ratio"] >= p["best_hv"]).sum())
        lines.append(
            f"| {q} | {_mean(p)} | " + " | ".join(cells) + f" | {share_ok} / {hv_ok} of {len(p)} |"
        )
    below = paired[
        (paired["front_share"] < paired["best_share"]) | (paired["hv_ratio"] < paired["best_hv"])
    ]
    if len(below):
        lines += [
            "",
            "Runs below the best baseline in either measure (queries, device, dataset, seed: "
            "candidate / best baseline): "
            + "; ".join(
                f"{r.queries} {r.device} {r.dataset} {r.seed}: {r.front_share:.1%} / "
                f"{r.hv_ratio:.4f} against {r.best_share:.1%} / {r.best_hv:.4f}"
                for r in below.itertuples()
            )
            + ".",
        ]
    return [*lines, ""]


def _p(diff: pd.Series) -> str:
    """Wilcoxon signed-rank p-value of paired differences ('-' when all are zero)."""
    return f"{wilcoxon(diff).pvalue:.2g}" if np.any(diff != 0) else "-"


def reference_lines(cand: pd.DataFrame, ref: pd.DataFrame, label: str) -> list[str]:
    """The candidate's runs paired with a reference's runs of the same (device, dataset, seed,
    queries): means, runs better / worse and Wilcoxon p of HV ratio and front share."""
    paired = cand.merge(ref, on=RUN, suffixes=("", "_ref"))
    if paired.empty:
        return []
    lines = [
        f"## Against {label} (paired runs)",
        "",
        "| queries | runs | candidate | reference | HV better / worse | HV p | "
        "front share difference | share p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for q, p in paired.groupby("queries"):
        dh = p["hv_ratio"] - p["hv_ratio_ref"]
        dsh = p["front_share"] - p["front_share_ref"]
        ref_mean = f"{p['front_share_ref'].mean():.1%} / {p['hv_ratio_ref'].mean():.4f}"
        lines.append(
            f"| {q} | {len(p)} | {_mean(p)} | {ref_mean} | {int((dh > 0).sum())} / "
            f"{int((dh < 0).sum())} | {_p(dh)} | {100 * dsh.mean():+.1f} points | {_p(dsh)} |"
        )
    return [*lines, ""]


def constraint_lines(rows: pd.DataFrame, whole_ms: list[str]) -> list[str]:
    """Constraint mode: the runs that found the true best, per budget percentile and device."""
    rows = rows[rows["kind"] == "constraint"]
    if rows.empty:
        return []
    rows = rows.drop_duplicates(subset=["device", "dataset", "seed", "percentile"], keep="last")

    def found(g: pd.DataFrame) -> str:
        n = int(g["found_best"].sum())
        return f"{n / len(g):.1%} ({n} / {len(g)})"

    lines = [
        "## Constraint mode (HSCoNAS, 300 queries): runs that found the true best under the budget",
        "",
        "| budget percentile | found | mean regret (points) |",
        "|---|---|---|",
    ]
    for pct, g in rows.groupby("percentile"):
        lines.append(f"| {pct} | {found(g)} | {g['regret'].mean():.3f} |")
    lines.append(f"| all | **{found(rows)}** | {rows['regret'].mean():.3f} |")
    per_dev = rows.groupby("device")["found_best"].agg(["sum", "count"])
    lines += [
        "",
        "Per device (every budget): "
        + "; ".join(f"{d} {int(r['sum'])} / {int(r['count'])}" for d, r in per_dev.iterrows())
        + f". Devices at >= 90%: {int((per_dev['sum'] >= 0.9 * per_dev['count']).sum())} of "
        f"{len(per_dev)}.",
    ]
    ms = rows["device"].isin(whole_ms)
    if ms.any() and (~ms).any():
        lines += [
            "",
            f"Devices that report whole milliseconds ({', '.join(whole_ms)}): {found(rows[ms])}; "
            f"the others: {found(rows[~ms])}.",
        ]
    return [*lines, ""]


def write(
    rows: list[dict],
    devices: list[str],
    seeds: int,
    wall: float | None,
    args: argparse.Namespace,
) -> None:
    """Write the rows as CSV and the tables as markdown (``wall`` None: tables written from logged
    or earlier rows, so neither the wall time nor the worker count is known)."""
    workers = _workers(args) if wall is not None else None
    stem = results_stem("search_nb201", args.tag)
    keys = sorted({k for r in rows for k in r})
    write_csv(stem.with_suffix(".csv"), rows, keys)
    lines = [
        f"# NB201 search benchmark ({'quick' if args.quick else 'full/subset'})",
        "",
        f"machine `{machine_tag()}`; {software('numpy', 'scipy', 'scikit-learn', 'pymoo')}; "
        + (
            f"wall time {wall / 60:.1f} min with {_workers_phrase(workers)}."
            if wall is not None
            else "wall time not measured (tables written from logged or earlier rows)."
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
    if algos and any(r["kind"] == "pareto" for r in rows):
        lines += _pareto_lines(rows, devices, algos, workers)
    lines.append("")
    df = pd.DataFrame(rows)
    whole_ms = whole_ms_devices(devices)
    cand = pareto_rows(df, "hsconas") if "kind" in df else df
    if not cand.empty:
        lines += dataset_lines(cand, "hsconas", whole_ms)
        lines += baseline_lines(cand, pareto_rows(df))
        if args.reference:
            ref_rows = [r for path in args.reference for r in read_rows(path)]
            ref = pareto_rows(pd.DataFrame(ref_rows), "hsconas")
            label = ", ".join(path.name for path in args.reference)
            lines += reference_lines(cand, ref[[*RUN, "front_share", "hv_ratio"]], label)
    if "kind" in df:
        lines += constraint_lines(df, whole_ms)
    text = "\n".join(lines).rstrip() + "\n"
    stem.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
