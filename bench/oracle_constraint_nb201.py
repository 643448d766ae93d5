"""Benchmark: could any surrogate of the EA's kind find the true best NB201 cell under a budget?

Constraint mode's target is the true best accuracy under the budget within 300 queries. An
"oracle-surrogate" constraint search uses the EA's constraint acquisition (16 random cells, then
batches of 4 picked greedily by P(latency <= budget) x P(accuracy > best feasible so far), the
picks joining the incumbent as fantasies, the true values revealed after each batch) with
predictions from models fitted on the *whole* table, out of fold (5-fold), as in
``oracle_surrogate_nb201.py``: extra-trees on the EA's cell features for accuracy (uncertainty:
their out-of-fold RMS), the EA's latency ridge (op counts, per-edge columns scaled by 0.1) for
latency, P(feasible) from the distribution of its out-of-fold residuals over the whole table.
No cell's prediction saw that cell, so what the models miss is what no surrogate of this kind can
know: training noise, measurement noise, lucky cells. Where this search misses the true best,
the best cell under the budget is one that nothing in its features marks out.

Usage:
    python bench/oracle_constraint_nb201.py              # every device x 3 datasets x 3 seeds
    python bench/oracle_constraint_nb201.py --devices gold_6240 --seeds 1

Writes bench/results/oracle_constraint_nb201_<machine>_py<version>_numpy<version>.{md,csv}.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from oracle_surrogate_nb201 import oracle_models
from search_nb201 import CONSTRAINT_PERCENTILES, nb201_tables

QUERIES = (300,)
INITIAL, BATCH = 16, 4


def oracle_constraint_search(
    acc_pred: np.ndarray,
    acc_sd: float,
    lat_pred: np.ndarray,
    lat_resid: np.ndarray,
    accuracy: np.ndarray,
    latency_ms: np.ndarray,
    budget_ms: float,
    n_queries: int,
    seed: int,
) -> np.ndarray:
    """Indices of the cells queried, in order: ``INITIAL`` random cells, then batches of
    ``BATCH`` picked among the unqueried cells as the EA's constraint mode picks them."""
    from hsconas.search.acquisition import (
        feasible_improvement_batch,
        feasible_probability,
        latency_quantum,
    )

    rng = np.random.default_rng(seed)
    queried = [int(i) for i in rng.choice(len(accuracy), INITIAL, replace=False)]
    sd = np.full(len(accuracy), acc_sd)
    while len(queried) < n_queries:
        pool = np.setdiff1d(np.arange(len(accuracy)), queried)
        quantum = latency_quantum(latency_ms[queried])
        p_feas = feasible_probability(lat_pred[pool], budget_ms, lat_resid, quantum=quantum)
        ok = latency_ms[queried] <= budget_ms
        best = float(accuracy[queried][ok].max()) if ok.any() else -np.inf
        k = min(BATCH, n_queries - len(queried))
        picks = feasible_improvement_batch(
            acc_pred[pool], sd[pool], lat_pred[pool], p_feas, budget_ms, best, k
        )
        queried += [int(pool[i]) for i in picks]
    return np.array(queried)


def run(devices: list[str], seeds: int, percentiles: tuple[int, ...]) -> list[dict]:
    from hsconas.search.acquisition import latency_quantum
    from hsconas.search.pareto import TrueFront
    from hsconas.search.surrogate import robust_sd

    rows = []
    for m in oracle_models(devices, latency_edge_weight=0.1):
        accuracy, lat = m.accuracy, m.latency_ms
        resid = lat - m.lat_pred
        truth = TrueFront.from_table(accuracy, lat)
        whole_ms = latency_quantum(lat) > 0
        for pct in percentiles:
            budget = float(np.percentile(lat, pct))
            best_true = truth.best_under(budget)
            for seed in range(seeds):
                t0 = time.perf_counter()
                q = oracle_constraint_search(
                    m.acc_pred, m.acc_rms, m.lat_pred, resid, accuracy, lat, budget,
                    max(QUERIES), seed,
                )  # fmt: skip
                ok = lat[q] <= budget
                hits = np.flatnonzero(ok & (accuracy[q] >= best_true - 1e-9))
                for n in QUERIES:
                    regret = truth.regret(accuracy[q[:n]], lat[q[:n]], budget)
                    rows.append(
                        {
                            "device": m.device, "dataset": m.dataset, "seed": seed,
                            "percentile": pct, "budget_ms": budget, "queries": n,
                            "regret": regret, "found_best": float(regret <= 1e-9),
                            "found_at": int(hits[0]) + 1 if len(hits) else "",
                            "accuracy_rms": m.acc_rms, "latency_sd_ms": robust_sd(resid),
                            "whole_ms": whole_ms, "time_s": time.perf_counter() - t0,
                        }
                    )  # fmt: skip
    return rows


def _group(row: dict) -> str:
    return "whole-ms phones" if row["whole_ms"] else "continuous devices"


def write(rows: list[dict], devices: list[str], seeds: int, wall: float) -> None:
    """The per-run CSV and the summary table (markdown) under ``results/``."""
    machine = platform.node() or "machine"
    tag = f"{machine}_py{platform.python_version()}_numpy{np.__version__}"
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    with open(out / f"oracle_constraint_nb201_{tag}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    percentiles = sorted({r["percentile"] for r in rows})
    lines = [
        "# NB201 constraint search with an oracle surrogate (models fitted on the whole table, "
        "out of fold)",
        "",
        f"machine `{machine}`, Python {platform.python_version()}, numpy {np.__version__}; wall "
        f"time {wall / 60:.1f} min, one process.",
        f"devices: {', '.join(devices)}; seeds: {seeds}; budgets at the "
        f"{'/'.join(str(p) for p in percentiles)}th latency percentile. Each cell: runs that "
        "found the true best under the budget (mean regret, points).",
        "",
        "| devices | queries | "
        + " | ".join(f"{p}th percentile" for p in percentiles)
        + " | all |",
        "|---|---|" + "---|" * (len(percentiles) + 1),
    ]
    groups = ["continuous devices", "whole-ms phones", "all"]
    for group in groups:
        for n in QUERIES:
            sel = [r for r in rows if r["queries"] == n and group in ("all", _group(r))]
            if not sel:
                continue
            cells = []
            for p in [*percentiles, None]:
                x = [r for r in sel if p is None or r["percentile"] == p]
                cells.append(
                    f"{sum(r['found_best'] for r in x):.0f} / {len(x)} "
                    f"({np.mean([r['regret'] for r in x]):.3f})"
                )
            lines.append(f"| {group} | {n} | " + " | ".join(cells) + " |")
    lines += ["", "Per device, found the true best within 300 queries (of all its runs):", ""]
    per_device = []
    for device in devices:
        x = [r for r in rows if r["device"] == device and r["queries"] == 300]
        per_device.append(f"{device} {sum(r['found_best'] for r in x):.0f}/{len(x)}")
    lines.append(", ".join(per_device) + ".")
    text = "\n".join(lines) + "\n"
    (out / f"oracle_constraint_nb201_{tag}.md").write_text(text)
    print(text)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--devices", nargs="*", help="device columns (default: all 21)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument(
        "--percentiles", type=int, nargs="+", default=list(CONSTRAINT_PERCENTILES),
        help="budgets at these latency percentiles of each device (default 25 50 75)",
    )  # fmt: skip
    args = ap.parse_args()
    devices = args.devices or list(nb201_tables()[1].devices)
    t0 = time.perf_counter()
    rows = run(devices, args.seeds, tuple(args.percentiles))
    write(rows, devices, args.seeds, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
