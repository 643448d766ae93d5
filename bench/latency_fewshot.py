"""Benchmark: few-shot latency transfer to an unseen device (leave one device out, HELP-style).

Each device column of the NB201, FBNet and OFA-MobileNetV3 GPU tables is in turn the target; the
sources are the other columns of the same table (never the target column). The target is fitted
from ``--shots`` seeded architectures and scored on every other (non-degenerate) row, for several
seeds. Also reported: a plain linear (Bayesian ridge) predictor fitted on the same shots without
sources, and the twin-device model alone (``twin_share`` forced to 1: the method before the
embedding model was added). HELP (NeurIPS 2021) reports Spearman 0.932 (NB201) and 0.910 (FBNet) on its
unseen devices with 10 shots; our targets are >= 0.95 and >= 0.93.

Ceilings per target device, so that readers know what is reachable (they use the target's
held-out rows, so they are references, never inputs of the method):

* ``tie_ceiling``: the best Spearman any predictor can reach against a column with ties (whole-ms
  phone latencies): a prediction that orders the rows exactly, ties broken arbitrarily.
* ``best_other``: Spearman of the best-correlated other device column.
* ``oracle_src``: a log-linear model on all other columns fitted on 80% of the rows (seed 0),
  scored on the other 20%: what the source devices can explain with unlimited shots.
* ``oracle_src_onehot``: the same plus the one-hot architecture features.

Writes ``bench/results/<machine>/latency_fewshot.{md,csv}`` (``latency_fewshot_<tag>`` with
``--tag``). From the repository root:

    python -m bench.latency_fewshot                       # 3 tables x 5 seeds, about 10 minutes
    python -m bench.latency_fewshot --tables nb201 --seeds 1 --tag trial   # about a minute
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy.stats import rankdata, spearmanr

import hsconas.spaces  # noqa: F401
from bench.common import add_tag_argument, markdown_table, results_stem, software, write_results
from hsconas.data.tables import data_dir, load_latency_table
from hsconas.errors import HsconasError
from hsconas.latency.metrics import evaluate
from hsconas.latency.predictors import LinearPredictor, as_features
from hsconas.latency.transfer import DEGENERATE_MS, FewShotTransfer, few_shot_transfer

TABLES = {
    "nb201": "nb201/latency_help.csv.gz",
    "fbnet": "fbnet/latency_help.csv.gz",
    "ofa-mbv3": "ofa_mbv3/latency_help_gpu.csv.gz",
}
TARGETS = {"nb201": 0.95, "fbnet": 0.93}
HELP = {"nb201": 0.932, "fbnet": 0.910}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    ap.add_argument("--shots", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=5)
    add_tag_argument(ap)
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
        for dev in table.devices:
            y = table.column(dev)
            ceil = ceilings(table.latency_ms, table.devices, X, dev)
            for seed in range(args.seeds):
                res = few_shot_transfer([table], table, dev, shots=args.shots, seed=seed)
                # the same shots, no sources: plain Bayesian ridge on one-hot features
                ok = np.flatnonzero(y > DEGENERATE_MS)
                shots = np.sort(
                    np.random.default_rng(seed).choice(ok, size=args.shots, replace=False)
                )
                test = np.setdiff1d(ok, shots)
                base = evaluate(LinearPredictor().fit(X[shots], y[shots]).predict(X[test]), y[test])
                # the same shots, twin-device model alone (the method before the embedding mix)
                twin = FewShotTransfer([table], exclude=[dev], seed=seed)
                twin.fit([table.archs[i] for i in shots], y[shots])
                twin.twin_share = 1.0
                twin_m = evaluate(twin.predict([table.archs[i] for i in test]), y[test])
                rows.append(
                    {
                        "table": tname,
                        "device": dev,
                        "seed": seed,
                        "spearman": res.metrics.spearman,
                        "kendall": res.metrics.kendall,
                        "within_10pct": res.metrics.within_10pct,
                        "within_5pct": res.metrics.within_5pct,
                        "mape_pct": res.metrics.mape_pct,
                        "n_test": res.metrics.n,
                        "ridge_spearman": base.spearman,
                        "twin_spearman": twin_m.spearman,
                        "twin_share": res.twin_share,
                        "top_source": res.top_sources[0][0].rsplit(":", 1)[-1],
                        **ceil,
                    }
                )
            last = [r for r in rows if r["device"] == dev and r["table"] == tname]
            print(
                f"{tname:9s} {dev:14s} rho={np.mean([r['spearman'] for r in last]):.4f} "
                f"w10={np.mean([r['within_10pct'] for r in last]):.3f} "
                f"(twin only {np.mean([r['twin_spearman'] for r in last]):.4f}, "
                f"plain ridge {np.mean([r['ridge_spearman'] for r in last]):.3f}; "
                f"oracle {ceil['oracle_src']:.3f})",
                flush=True,
            )
    write(pd.DataFrame(rows), skipped, args, time.time() - t0)


def ceilings(L: np.ndarray, devices: tuple[str, ...], X: np.ndarray, dev: str) -> dict[str, float]:
    """Reference ceilings of the Spearman reachable on column ``dev`` (see the module docstring)."""
    j = devices.index(dev)
    y = L[:, j]
    ok = np.flatnonzero(y > DEGENERATE_MS)
    yo = y[ok]
    others = [k for k in range(L.shape[1]) if k != j]
    tie = float(spearmanr(rankdata(yo, method="ordinal"), yo)[0])
    best = max(float(spearmanr(L[ok, k], yo)[0]) for k in others)
    perm = np.random.default_rng(0).permutation(ok)
    cut = perm.size * 4 // 5
    tr, te = perm[:cut], perm[cut:]
    S = np.column_stack([np.ones(len(y)), np.log(np.maximum(L[:, others], 1e-3))])
    out = {"tie_ceiling": tie, "best_other": best}
    for name, A in (("oracle_src", S), ("oracle_src_onehot", np.column_stack([S, X]))):
        coef = np.linalg.lstsq(A[tr], np.log(y[tr]), rcond=None)[0]
        out[name] = float(spearmanr(A[te] @ coef, y[te])[0])
    return out


def write(df: pd.DataFrame, skipped: list[str], args: argparse.Namespace, wall: float) -> None:
    stem = results_stem("latency_fewshot", args.tag)
    lines = [
        f"# Few-shot latency transfer, {args.shots} shots, leave-one-device-out",
        "",
        f"Machine `{stem.parent.name}`, {software('numpy', 'scipy', 'scikit-learn')}; wall time {wall / 60:.1f} min; "
        f"seeds 0..{args.seeds - 1}; sources = the other columns of the same table; test = all "
        f"other rows above {DEGENERATE_MS} ms. `ridge` = Bayesian ridge on the same shots without "
        "sources; `twin` = the twin-device model alone (the method before the embedding mix); "
        "`twin_share` = its mean weight in the mix. Ceilings (use the held-out target rows, "
        "references only): `tie_ceiling` = best Spearman possible against a column with ties; "
        "`best_other` = best-correlated other column; `oracle_src` = log-linear on all other "
        "columns, fitted on 80% of the rows and scored on 20%; `oracle_src_onehot` = the same "
        "plus one-hot architecture features.",
        "",
        "## Means over target devices (and seeds)",
        "",
    ]
    if not df.empty:
        per_dev = df.groupby(["table", "device"]).mean(numeric_only=True).reset_index()
        summ = (
            per_dev.groupby("table")
            .agg(
                devices=("device", "nunique"),
                spearman=("spearman", "mean"),
                kendall=("kendall", "mean"),
                within_10pct=("within_10pct", "mean"),
                within_5pct=("within_5pct", "mean"),
                ridge_spearman=("ridge_spearman", "mean"),
                twin_spearman=("twin_spearman", "mean"),
                best_other=("best_other", "mean"),
                oracle_src=("oracle_src", "mean"),
                oracle_src_onehot=("oracle_src_onehot", "mean"),
            )
            .reset_index()
        )
        summ["target"] = [TARGETS.get(t, float("nan")) for t in summ["table"]]
        summ["HELP"] = [HELP.get(t, float("nan")) for t in summ["table"]]
        lines.append(markdown_table(summ.round(4)))
        lines += ["", "## Per target device (mean over seeds)", ""]
        cols = [
            "table",
            "device",
            "spearman",
            "within_10pct",
            "within_5pct",
            "mape_pct",
            "twin_spearman",
            "twin_share",
            "ridge_spearman",
            "tie_ceiling",
            "best_other",
            "oracle_src",
            "oracle_src_onehot",
        ]
        lines.append(markdown_table(per_dev[cols].round(4)))
    if skipped:
        lines += ["", "Skipped: " + "; ".join(skipped)]
    text = "\n".join(lines) + "\n"
    write_results(stem, df.to_dict("records"), text)


if __name__ == "__main__":
    main()
