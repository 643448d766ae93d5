"""Benchmark: latency predictors learned from recorded end-to-end latencies (HELP device tables).

For every device column of the NB201 (21), FBNet (24) and OFA-MobileNetV3 GPU (11) tables, each
predictor (linear, gbdt, gp) is trained on 10, 100 and 1000 seeded architectures and scored on held-out
rows (at most ``--max-test``): Spearman rho and the share of predictions within +/-10%. NB201 rows
are split by ``unique_str`` of ``nb201/accuracy.csv`` so isomorphic cells never straddle the split;
degenerate rows (below 0.05 ms) are left out. Prints a table and writes
``bench/results/latency_recorded_<machine>_<versions>.{md,csv}``.

    .venv/bin/python bench/latency_recorded.py            # everything (tens of minutes on 2 cores)
    .venv/bin/python bench/latency_recorded.py --tables nb201 --models linear --sizes 100
"""

# ruff: noqa: E402  (imports follow the thread settings on purpose)
from __future__ import annotations

import os

# one BLAS/OpenMP thread: on shared cores, threaded BLAS in small GP/ridge solves oversubscribes
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import csv
import platform
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy
import sklearn

import hsconas.spaces  # noqa: F401  (registers the spaces)
from hsconas.data.tables import data_dir, load_latency_table
from hsconas.errors import HsconasError
from hsconas.latency.metrics import evaluate
from hsconas.latency.predictors import as_features, make_predictor
from hsconas.latency.transfer import DEGENERATE_MS

TABLES = {
    "nb201": "nb201/latency_help.csv.gz",
    "fbnet": "fbnet/latency_help.csv.gz",
    "ofa-mbv3": "ofa_mbv3/latency_help_gpu.csv.gz",
}
RESULTS = Path(__file__).resolve().parent / "results"


def machine_tag() -> str:
    """CPU short name + cores, and python/numpy/sklearn versions, for result file names."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1]
                break
    except OSError:
        pass
    cpu = re.sub(r"\(R\)|\(TM\)|CPU|Processor|@.*", "", cpu)
    short = "-".join(cpu.lower().split()[:3]) or "cpu"
    return (
        f"{short}-{os.cpu_count()}c_py{platform.python_version()}"
        f"_numpy{np.__version__}_sklearn{sklearn.__version__}"
    )


def nb201_groups(archs_str: tuple[str, ...]) -> np.ndarray:
    """Group id (isomorphism class, ``unique_str``) of each NB201 row."""
    acc = pd.read_csv(data_dir() / "nb201" / "accuracy.csv", usecols=["arch_str", "unique_str"])
    to_unique = dict(zip(acc["arch_str"], acc["unique_str"], strict=True))
    codes = {u: i for i, u in enumerate(sorted(set(to_unique.values())))}
    return np.array([codes[to_unique[s]] for s in archs_str])


def split(
    groups: np.ndarray, usable: np.ndarray, n_train: int, max_test: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train rows (one per group, ``n_train`` groups) and test rows from the other groups."""
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(usable)
    order = rng.permutation(rows)
    seen: set[int] = set()
    train: list[int] = []
    for r in order:
        g = int(groups[r])
        if g not in seen:
            seen.add(g)
            train.append(r)
            if len(train) == n_train:
                break
    test = np.array([r for r in order if int(groups[r]) not in seen][:max_test])
    return np.array(train), test


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    ap.add_argument("--models", nargs="+", default=["linear", "gbdt", "gp"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[10, 100, 1000])
    ap.add_argument("--max-test", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.time()
    rows: list[dict[str, object]] = []
    skipped: list[str] = []
    for tname in args.tables:
        try:
            table = load_latency_table(data_dir() / TABLES[tname])
        except HsconasError as exc:
            skipped.append(f"{tname}: {exc}")
            print(f"skipping {tname}: {exc}", flush=True)
            continue
        X = as_features(list(table.archs))
        groups = (
            nb201_groups(table.arch_strings) if table.space == "nb201" else np.arange(len(table))
        )
        for dev in table.devices:
            y = table.column(dev)
            for n in args.sizes:
                train, test = split(groups, y > DEGENERATE_MS, n, args.max_test, args.seed)
                for kind in args.models:
                    t = time.time()
                    model = make_predictor(kind).fit(X[train], y[train])
                    m = evaluate(model.predict(X[test]), y[test])
                    rows.append(
                        {
                            "table": tname,
                            "device": dev,
                            "model": kind,
                            "n_train": n,
                            "n_test": m.n,
                            "spearman": round(m.spearman, 4),
                            "within_10pct": round(m.within_10pct, 4),
                            "mape_pct": round(m.mape_pct, 2),
                            "fit_s": round(time.time() - t, 2),
                        }
                    )
                    r = rows[-1]
                    print(
                        f"{tname:9s} {dev:14s} {kind:6s} n={n:5d} rho={r['spearman']:.4f} "
                        f"w10={r['within_10pct']:.3f} ({r['fit_s']}s)",
                        flush=True,
                    )
    write(rows, skipped, args, time.time() - t0)


def markdown(df: pd.DataFrame) -> str:
    """A pipe table of ``df`` (no extra dependency)."""
    cols = [str(c) for c in df.columns]
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for rec in df.itertuples(index=False):
        out.append(
            "| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in rec) + " |"
        )
    return "\n".join(out)


def write(
    rows: list[dict[str, object]], skipped: list[str], args: argparse.Namespace, wall: float
) -> None:
    df = pd.DataFrame(rows)
    tag = machine_tag()
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"latency_recorded_{tag}"
    df.to_csv(stem.parent / (stem.name + ".csv"), index=False, quoting=csv.QUOTE_MINIMAL)
    lines = [
        "# Latency predictors on recorded device tables (HELP)",
        "",
        f"Machine/software: `{tag}`, scipy {scipy.__version__}; wall time {wall / 60:.1f} min; "
        f"seed {args.seed}; test rows capped at {args.max_test}; NB201 split by `unique_str`; rows "
        f"below {DEGENERATE_MS} ms left out.",
        "",
        "## Means over the device columns of each table (Spearman rho / share within +/-10%)",
        "",
    ]
    if not df.empty:
        piv = df.groupby(["table", "model", "n_train"]).agg(
            devices=("device", "nunique"),
            spearman=("spearman", "mean"),
            within_10pct=("within_10pct", "mean"),
            mape_pct=("mape_pct", "mean"),
        )
        lines.append(markdown(piv.round(4).reset_index()))
        lines += ["", "## Per device", ""]
        wide = df.pivot_table(
            index=["table", "device"],
            columns=["model", "n_train"],
            values=["spearman", "within_10pct"],
        )
        wide.columns = [
            f"{'rho' if v == 'spearman' else 'w10'} {m} {n}" for v, m, n in wide.columns
        ]
        lines.append(markdown(wide.round(3).reset_index()))
    if skipped:
        lines += ["", "Skipped: " + "; ".join(skipped)]
    text = "\n".join(lines) + "\n"
    (stem.parent / (stem.name + ".md")).write_text(text)
    print(text)
    print(f"written {stem}.md and .csv")


if __name__ == "__main__":
    main()
