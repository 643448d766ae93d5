"""Benchmark: how much could *any* per-layer reduction of NB201 help the search? (a reference)

For each device, the oracle reduction is built from the answer: starting from the full space,
drop the (edge, op) choice whose removal keeps the most of the true front (ties: the most
hypervolume), as long as every true-front point stays reachable (lossless) and every edge keeps
at least two ops; ``--min-share`` below 1 allows lossy drops. Then the HSCoNAS EA searches the
full space and the oracle-reduced space with the same budgets and seeds, scored against the full
space's true front (CIFAR-100 accuracy, HELP latency), exactly as in ``profile_nb201.py``.

No profile can know the true front, so this bounds what the profile-based reduction of
``profile_nb201.py`` can gain over the full space.

Usage:
    python bench/reduction_oracle_nb201.py                  # 7 devices, 10 seeds
    python bench/reduction_oracle_nb201.py --quick          # 3 devices, 3 seeds

Writes bench/results/reduction_oracle_nb201_<machine>_<versions>.{md,csv}.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import profile_nb201 as pb  # shares the evaluators and the search task
from search_nb201 import nb201_tables
from tasklog import TaskLog, task_key


def oracle_restrict(device: str, min_share: float) -> dict[str, list[str]]:
    """Greedy per-edge reduction that keeps at least ``min_share`` of the true front."""
    from hsconas.search.pareto import TrueFront

    ev = pb._evaluator(device)
    truth = TrueFront.from_table(ev.accuracy, ev.latency_ms)
    genes = list(ev.space.genes)
    values = np.array([[str(v) for v in a.values] for a in ev.archs])
    keep = {g.name: [str(c) for c in g.choices] for g in genes}

    def score(k: dict[str, list[str]]) -> tuple[float, float]:
        m = np.ones(len(values), dtype=bool)
        for j, g in enumerate(genes):
            m &= np.isin(values[:, j], k[g.name])
        acc, lat = ev.accuracy[m], ev.latency_ms[m]
        return truth.front_share(acc, lat), truth.hv_ratio(acc, lat)

    while True:
        best: tuple[float, float, str, str] | None = None
        for g in genes:
            if len(keep[g.name]) <= 2:
                continue
            for op in keep[g.name]:
                trial = {**keep, g.name: [o for o in keep[g.name] if o != op]}
                share, hv = score(trial)
                if best is None or (share, hv) > best[:2]:
                    best = (share, hv, g.name, op)
        if best is None or best[0] < min_share:
            return keep
        keep = {**keep, best[2]: [o for o in keep[best[2]] if o != best[3]]}


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--devices", nargs="+", default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budgets", type=int, nargs="+", default=[100, 200, 300])
    ap.add_argument("--min-share", type=float, default=1.0, help="front share the oracle keeps")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    devices = tuple(args.devices or (pb.QUICK if args.quick else pb.DEVICES))
    seeds = 3 if args.quick and args.seeds == 10 else args.seeds
    budgets = tuple(sorted(set(args.budgets)))

    from hsconas.space import get_space

    nb201_tables()
    restricts = {d: oracle_restrict(d, args.min_share) for d in devices}
    sizes = {d: get_space("nb201").restrict(restricts[d]).size() for d in devices}
    tasks = [
        (d, v, s, r, "hsconas", budgets)
        for d in devices
        for s in range(seeds)
        for v, r in (("full", {}), ("oracle", restricts[d]))
    ]
    from hsconas.hardware.fingerprint import machine_name

    stem = f"reduction_oracle_nb201_{machine_name()}_{pb._versions()}"
    t0 = time.perf_counter()
    # searches are logged as they finish: rerunning an interrupted benchmark resumes it
    args.out.mkdir(parents=True, exist_ok=True)
    log = TaskLog(args.out / f"{stem}.partial.jsonl", [task_key("search", t) for t in tasks])
    with Pool(args.workers, initializer=nb201_tables) as pool:
        rows = log.run(pool, "search", pb.search_task, tasks)
    print(f"{len(tasks)} searches in {time.perf_counter() - t0:.0f} s", flush=True)

    table = []
    for d in devices:
        ceiling = pb._ceiling(d, restricts[d])
        for b in budgets:
            line: dict[str, object] = {
                "device": d, "queries": b, "oracle_size": sizes[d],
                "oracle_ceiling_share": ceiling[1],
            }  # fmt: skip
            for v in ("full", "oracle"):
                sel = [r for r in rows if (r["device"], r["variant"], r["queries"]) == (d, v, b)]
                line[f"hv_{v}"] = float(np.mean([r["hv_ratio"] for r in sel]))
                line[f"share_{v}"] = float(np.mean([r["front_share"] for r in sel]))
                line[f"share_{v}_sd"] = float(np.std([r["front_share"] for r in sel], ddof=1))
            table.append(line)

    text = (
        "# Oracle per-edge reduction of NB201 vs the full space (HSCoNAS EA)\n\n"
        f"CIFAR-100 x HELP latency; oracle keeps >= {args.min_share:.0%} of the true front (built "
        f"from the answer: a reference, not a method); {seeds} seeds; HV ratio and front share "
        "against the full space's true front (mean, sd in brackets).\n\n"
        "| device | queries | oracle size (of 15625) | oracle ceiling share | HV full | HV oracle "
        "| share full | share oracle |\n|---|---|---|---|---|---|---|---|\n"
    )
    for t in table:
        text += (
            f"| {t['device']} | {t['queries']} | {t['oracle_size']} | "
            f"{t['oracle_ceiling_share']:.2f} | {t['hv_full']:.4f} | {t['hv_oracle']:.4f} | "
            f"{t['share_full']:.3f} ({t['share_full_sd']:.3f}) | "
            f"{t['share_oracle']:.3f} ({t['share_oracle_sd']:.3f}) |\n"
        )
    for b in budgets:
        part = [t for t in table if t["queries"] == b]
        text += (
            f"\nMean at {b} queries: full {np.mean([t['share_full'] for t in part]):.3f} / "
            f"{np.mean([t['hv_full'] for t in part]):.4f}, oracle "
            f"{np.mean([t['share_oracle'] for t in part]):.3f} / "
            f"{np.mean([t['hv_oracle'] for t in part]):.4f} (front share / HV ratio).\n"
        )
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.md").write_text(text, encoding="utf-8")
    with open(args.out / f"{stem}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(table[0].keys()))
        w.writeheader()
        w.writerows(table)
    log.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
