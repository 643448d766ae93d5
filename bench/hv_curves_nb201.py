"""Benchmark: hypervolume and front share over the number of queries, for each algorithm, on
NAS-Bench-201 (tabular accuracy x HELP device latencies).

Every (device, dataset, seed, algorithm) runs one Pareto search to ``--max-queries`` distinct
queries; the front's HV ratio to the true front and its share of the true front are read after
every ``--step`` queries from the prefix of its queries (a prefix is exactly a shorter run). The
plot shows, per dataset, the mean over devices and seeds of the hypervolume gap (1 - HV ratio, log
scale) and of the front share.

Usage:
    python bench/hv_curves_nb201.py                     # 3 devices x 3 datasets x 3 seeds, 300 q
    python bench/hv_curves_nb201.py --devices pixel3 --seeds 5 --max-queries 1000

Writes bench/results/hv_curves_nb201_<machine>_py<version>_numpy<version>.{md,csv,png}. Finished
searches are logged as they finish (``.partial.jsonl``) and skipped when the command is rerun.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import time
from multiprocessing import Pool
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from search_nb201 import ALGOS, DATASETS, QUICK_DEVICES, pareto_search
from tasklog import TaskLog, task_key

CHECKPOINTS = (50, 100, 200, 300, 500, 1000)
STYLES = {  # colour, line style (without shrinking is often the same run: dashed over it)
    "hsconas": ("tab:red", "-"),
    "hsconas-noshrink": ("tab:orange", "--"),
    "re": ("tab:blue", "-"),
    "nsga2": ("tab:green", "-"),
    "random": ("0.4", "-"),
}


def curve_task(task: tuple[str, str, int, str, int, int]) -> list[dict]:
    """HV ratio and front share of one search after every ``step`` queries."""
    device, dataset, seed, algo, max_q, step = task
    truth, acc, lat, total, _ = pareto_search(device, dataset, seed, algo, max_q)
    return [
        {
            "device": device, "dataset": dataset, "seed": seed, "algorithm": algo, "queries": q,
            "hv_ratio": truth.hv_ratio(acc[:q], lat[:q]),
            "front_share": truth.front_share(acc[:q], lat[:q]), "time_s": total,
        }
        for q in range(step, len(acc) + 1, step)
    ]  # fmt: skip


def mean_curves(rows: list[dict]) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Per (dataset, algorithm): queries and the mean HV ratio and front share over the runs
    (devices x seeds) that reached each query count."""
    out: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for key in sorted({(r["dataset"], r["algorithm"]) for r in rows}):
        sub = [r for r in rows if (r["dataset"], r["algorithm"]) == key]
        qs = np.array(sorted({r["queries"] for r in sub}))
        hv = np.array([np.mean([r["hv_ratio"] for r in sub if r["queries"] == q]) for q in qs])
        share = np.array(
            [np.mean([r["front_share"] for r in sub if r["queries"] == q]) for q in qs]
        )
        out[key] = {"queries": qs, "hv_ratio": hv, "front_share": share}
    return out


def plot(curves: dict[tuple[str, str], dict[str, np.ndarray]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = [d for d in DATASETS if any(k[0] == d for k in curves)]
    fig, axes = plt.subplots(2, len(datasets), figsize=(4.2 * len(datasets), 7), squeeze=False)
    for j, dataset in enumerate(datasets):
        for (ds, algo), c in curves.items():
            if ds != dataset:
                continue
            color, ls = STYLES.get(algo, ("k", ":"))
            style = {"c": color, "ls": ls, "lw": 1.3, "label": algo}
            axes[0, j].plot(c["queries"], 1 - c["hv_ratio"], **style)
            axes[1, j].plot(c["queries"], 100 * c["front_share"], **style)
        axes[0, j].axhline(0.005, ls="--", c="k", lw=0.8, label="HV ratio 0.995")
        axes[0, j].set_yscale("log")
        axes[0, j].set_title(dataset)
        axes[0, j].set_ylabel("hypervolume gap (1 - HV ratio)")
        axes[1, j].set_ylabel("true-front points found (%)")
        axes[1, j].set_xlabel("distinct architectures queried")
        for ax in axes[:, j]:
            ax.grid(alpha=0.3, which="both")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--devices", nargs="*", default=list(QUICK_DEVICES))
    ap.add_argument("--datasets", nargs="*", default=list(DATASETS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--algorithms", nargs="*", default=list(ALGOS))
    ap.add_argument("--max-queries", type=int, default=300)
    ap.add_argument("--step", type=int, default=10, help="queries between two readings")
    ap.add_argument("--workers", type=int, default=1, help="worker processes (at most 2)")
    ap.add_argument("--suffix", default="", help="appended to the results file names")
    args = ap.parse_args()
    unknown = sorted(set(args.algorithms) - set(ALGOS))
    if unknown:
        ap.error(f"unknown algorithms {unknown}; choose from {sorted(ALGOS)}")

    tasks = [
        (device, dataset, seed, algo, args.max_queries, args.step)
        for seed in range(args.seeds)
        for algo in args.algorithms
        for device in args.devices
        for dataset in args.datasets
    ]
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    tag = (
        f"{platform.node() or 'machine'}_py{platform.python_version()}_numpy{np.__version__}"
        f"{args.suffix}"
    )

    def out(ext: str) -> Path:
        return out_dir / f"hv_curves_nb201_{tag}.{ext}"

    log = TaskLog(out("partial.jsonl"), [task_key("curve", t) for t in tasks])
    t0 = time.perf_counter()
    with Pool(max(1, min(args.workers, 2))) as pool:
        rows = log.run(pool, "curve", curve_task, tasks)
    wall = time.perf_counter() - t0

    with open(out("csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    curves = mean_curves(rows)
    title = (
        f"NB201 Pareto search, mean of {len(args.devices)} device(s) x {args.seeds} seed(s) "
        f"per curve ({', '.join(args.devices)})"
    )
    plot(curves, out("png"), title)
    checkpoints = [q for q in CHECKPOINTS if q <= args.max_queries and q % args.step == 0]
    lines = [
        "# NB201: hypervolume ratio and front share over queries",
        "",
        f"Devices {', '.join(args.devices)}; datasets {', '.join(args.datasets)}; "
        f"seeds 0-{args.seeds - 1}; Pareto mode; {len(tasks)} searches, {wall:.0f} s wall "
        f"(this invocation; logged searches are not rerun). Mean over devices and seeds; "
        f"plot: `{out('png').name}`.",
        "",
        "| dataset | algorithm | " + " | ".join(f"{q} queries" for q in checkpoints) + " |",
        "|---|---|" + "---|" * len(checkpoints),
    ]
    for (dataset, algo), c in curves.items():
        cells = []
        for q in checkpoints:
            i = np.flatnonzero(c["queries"] == q)
            cells.append(
                f"{100 * c['front_share'][i[0]]:.1f}% / {c['hv_ratio'][i[0]]:.4f}" if len(i) else ""
            )
        lines.append(f"| {dataset} | {algo} | " + " | ".join(cells) + " |")
    lines += ["", "Cells: front share / HV ratio (reference point: true nadir + 1% of its range)."]
    text = "\n".join(lines) + "\n"
    out("md").write_text(text)
    log.remove()
    print(text)


if __name__ == "__main__":
    main()
