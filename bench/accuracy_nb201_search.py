"""Benchmark: NAS-Bench-201 searches steered by a label-free accuracy estimate, scored with the
published accuracy.

For each (device, seed), the HSCoNAS EA searches NB201 with latency from the HELP table and
accuracy from (a) the published CIFAR-10 table (the upper bound), (b) ``proxy:METHOD`` (zero-cost
proxies on CIFAR-10 images, default the ``ensemble``) and (c) ``proxy:macs`` (MACs as accuracy,
the baseline). Every search is then scored with the *table* accuracy of what it evaluated: HV
ratio of all queried cells and of the cells on the search's own (estimated) front, front share,
and in constraint mode (budget at the 50th latency percentile) the regret of the cell the search
would return (the best estimated one within budget), in accuracy points.

Proxy values are stored (``--store``, default ``~/.cache/hsconas/accuracy_nb201.db``, shared with
``bench.accuracy_nb201``), so cells met by several searches cost once. Writes
``bench/results/<machine>/accuracy_nb201_search.{md,csv}``. From the repository root:

    OMP_NUM_THREADS=1 python -m bench.accuracy_nb201_search --devices pixel3 --seeds 0 \\
        --queries 100
    python -m bench.accuracy_nb201_search --devices pixel3,gold_6240,titanx_1 --seeds 0,1,2 \\
        --queries 300     # the issue's full grid: hours of proxy computation on a CPU
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.common import add_tag_argument, markdown_table, results_stem, software, write_results
from hsconas.data import data_dir
from hsconas.data.datasets import default_cache_dir
from hsconas.evaluation import CombinedEvaluator, TableLatency
from hsconas.evaluation.proxy import ProxyAccuracy
from hsconas.search import Problem, make_algorithm, run_search
from hsconas.search.indicators import TrueFront
from hsconas.search.runner import front_of
from hsconas.store import ResultStore


def _search(ev, problem, seed: int, queries: int):  # type: ignore[no-untyped-def]
    algo = make_algorithm("hsconas", problem, seed=seed)
    return run_search(problem, algo, ev, queries)


def main() -> None:
    from bench.search_nb201 import nb201_evaluator, nb201_tables

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", default="pixel3", help="HELP device columns, comma-separated")
    ap.add_argument("--seeds", default="0", help="search seeds, comma-separated")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--method", default="ensemble", help="proxy method of the estimate")
    ap.add_argument("--modes", default="pareto,constraint")
    ap.add_argument("--store", type=Path, default=None)
    ap.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=None,
        help="build the table from the per-run CSVs of earlier runs (parts of one grid run side "
        "by side) instead of searching",
    )
    ap.add_argument("--note", default="", help="a sentence added under the merged table")
    add_tag_argument(ap)
    args = ap.parse_args()
    if args.merge:
        df = pd.concat([pd.read_csv(p) for p in args.merge], ignore_index=True)
        df = df.sort_values(["device", "seed"], kind="stable").reset_index(drop=True)
        args.devices = ",".join(dict.fromkeys(df["device"]))
        args.seeds = ",".join(str(s) for s in sorted(set(df["seed"])))
        args.queries = int(df["queries"].max())
        note = f"merged from {', '.join(p.name for p in args.merge)}; total CPU of the parts " + (
            f"{df['cpu_min'].sum():.1f} min"
        )
        if args.note:
            note = f"{args.note.rstrip('.')}; {note}"
        _write(args, df, note)
        return
    torch.set_num_threads(1)
    spec = f"cifar10:{data_dir() / 'images' / 'cifar10_jpg.tar.gz'}"
    store = ResultStore(args.store or default_cache_dir() / "accuracy_nb201.db")
    _, lat_table = nb201_tables()
    rows = []
    t_start = time.process_time()
    for device in args.devices.split(","):
        table_ev = nb201_evaluator(device, "cifar10")
        truth = TrueFront.from_table(table_ev.accuracy, table_ev.latency_ms)
        true_acc = {a: float(table_ev.accuracy[i]) for i, a in enumerate(table_ev.archs)}
        latency = TableLatency(lat_table, device)
        space = table_ev.space
        sources = {
            "table": None,
            f"proxy:{args.method}": ProxyAccuracy(space, args.method, spec, store=store),
            "proxy:macs": ProxyAccuracy(space, "macs", spec, store=store),
        }
        for seed in (int(s) for s in args.seeds.split(",")):
            for mode in args.modes.split(","):
                budget = float(np.percentile(table_ev.latency_ms, 50))
                problem = Problem(
                    space, mode=mode, budget_ms=budget if mode == "constraint" else None
                )
                for label, source in sources.items():
                    cpu0 = time.process_time()
                    ev = table_ev if source is None else CombinedEvaluator(source, latency)
                    res = _search(ev, problem, seed, args.queries)
                    archs = [r.arch for r in res.records]
                    acc = np.array([true_acc[a] for a in archs])
                    lat = np.array([r.latency_ms for r in res.records])
                    row = {
                        "device": device, "seed": seed, "mode": mode, "accuracy": label,
                        "queries": res.n_queries,
                        "cpu_min": round((time.process_time() - cpu0) / 60, 2),
                    }  # fmt: skip
                    if mode == "pareto":
                        est_front = front_of(res.records)
                        f_acc = np.array([true_acc[r.arch] for r in est_front])
                        f_lat = np.array([r.latency_ms for r in est_front])
                        row["hv_ratio_queried"] = truth.hv_ratio(acc, lat)
                        row["hv_ratio_est_front"] = truth.hv_ratio(f_acc, f_lat)
                        row["front_share"] = truth.front_share(acc, lat)
                    else:
                        ok = [r for r in res.records if r.latency_ms <= budget]
                        pick = max(ok, key=lambda r: r.accuracy) if ok else None
                        best_true = float(table_ev.accuracy[table_ev.latency_ms <= budget].max())
                        row["budget_ms"] = budget
                        row["regret_returned"] = (
                            best_true - true_acc[pick.arch] if pick else float("nan")
                        )
                        row["regret_queried"] = truth.regret(acc, lat, budget)
                    rows.append(row)
                    print(row, file=sys.stderr)
    note = f"Total CPU {(time.process_time() - t_start) / 60:.1f} min"
    _write(args, pd.DataFrame(rows), note)


def _write(args: argparse.Namespace, df: pd.DataFrame, note: str) -> None:
    """The summary table (means over runs per mode and accuracy source) and the per-run CSV."""
    summary = []
    for (mode, label), g in df.groupby(["mode", "accuracy"], sort=False):
        s: dict[str, object] = {"mode": mode, "accuracy": label, "runs": len(g)}
        for col in ("hv_ratio_queried", "hv_ratio_est_front", "front_share", "regret_returned",
                    "regret_queried", "cpu_min"):  # fmt: skip
            if col in g and g[col].notna().any():
                s[col] = round(float(g[col].mean()), 4)
        summary.append(s)
    text = "\n".join(
        [
            "# NB201 searches with a label-free accuracy estimate, scored with table accuracy",
            "",
            f"HSCoNAS EA, {args.queries} queries, devices {args.devices}, seeds {args.seeds}; "
            "latency: HELP table; accuracy: the CIFAR-10 table (upper bound), "
            f"proxy:{args.method} and proxy:macs (zero-cost values on CIFAR-10 images, 64 "
            "reference cells). Scores use the published CIFAR-10 accuracy of the cells found. "
            "Constraint budget: 50th latency percentile. Means over runs; cpu_min includes "
            "computing proxies not yet in the store.",
            "",
            markdown_table(pd.DataFrame(summary)),
            "",
            f"{note} on {os.cpu_count()} shared CPUs; " + software("torch", "numpy"),
        ]
    )
    rows = [{k: v for k, v in r.items() if not pd.isna(v)} for r in df.to_dict("records")]
    write_results(results_stem("accuracy_nb201_search", args.tag), rows, text)


if __name__ == "__main__":
    main()
