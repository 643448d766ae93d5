"""Benchmark: the OFA-MobileNetV3 ImageNet accuracy predictor against the MACs-only baseline.

Data: ``ofa_mbv3/imagenet_accuracy_dynast.csv`` (1458 rows, 1336 distinct OFA-MBv3 w1.0 subnets,
all at resolution 224, measured ImageNet top-1 71.7-77.4%; they come from DyNAS-T evolutionary
search runs, so they lean towards the accuracy-MACs front). Every model kind of
:func:`hsconas.accuracy.predictor.cross_validate` is scored by 10-fold cross-validation grouped by
distinct architecture (a subnet measured twice stays in one fold), for several fold seeds:
Kendall tau-b, Spearman rho and RMSE (top-1 points) per held-out fold, averaged. The MACs baseline
ranks by MACs (its tau and rho are those of MACs itself) and predicts with a quadratic in log MACs.
``beats`` counts the (seed, fold) pairs in which a model has both a higher tau and a lower RMSE
than the baseline on the same fold.

Writes ``bench/results/<machine>/accuracy_ofa.{md,csv}``. From the repository root:
    python -m bench.accuracy_ofa                  # 3 fold seeds x 4 kinds, about 3 minutes
    python -m bench.accuracy_ofa --seeds 1 --kinds ridge --tag trial   # seconds
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd

import hsconas.spaces  # noqa: F401
from bench.common import add_tag_argument, markdown_table, results_stem, software, write_results
from hsconas.accuracy.accuracy_table import read_accuracy_table
from hsconas.accuracy.predictor import KINDS, AccuracyFeatures, cross_validate
from hsconas.data.tables import data_dir
from hsconas.space import get_space

TABLE = "ofa_mbv3/imagenet_accuracy_dynast.csv"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", type=int, default=3, help="fold assignments (default 3)")
    ap.add_argument("--folds", type=int, default=10, help="folds (default 10)")
    ap.add_argument(
        "--kinds", nargs="+", default=[k for k in KINDS if k != "macs"], choices=list(KINDS)
    )
    add_tag_argument(ap)
    args = ap.parse_args()
    t0 = time.time()
    space = get_space("ofa-mbv3")
    archs, acc = read_accuracy_table(data_dir() / TABLE, space)
    X = AccuracyFeatures(space).transform(archs)
    groups = [space.to_string(a) for a in archs]
    rows = []
    for seed in range(args.seeds):
        cv, _ = cross_validate(X, acc, groups, kinds=args.kinds, folds=args.folds, seed=seed)
        for r in cv:
            rows.append({"seed": seed, **r.as_dict()})
        print(
            f"seed {seed}: "
            + ", ".join(f"{r.kind} tau {r.kendall:.4f} rmse {r.rmse:.4f}" for r in cv),
            flush=True,
        )
    df = pd.DataFrame(rows)
    summary = (
        df.groupby("kind", sort=False)
        .agg(
            kendall=("kendall", "mean"),
            kendall_fold_sd=("kendall_sd", "mean"),
            spearman=("spearman", "mean"),
            rmse=("rmse", "mean"),
            rmse_fold_sd=("rmse_sd", "mean"),
            beats=("folds_beating_macs", "sum"),
        )
        .reset_index()
    )
    summary["beats"] = [
        "-" if k == "macs" else f"{int(b)}/{args.seeds * args.folds}"
        for k, b in zip(summary["kind"], summary["beats"], strict=True)
    ]
    elapsed = time.time() - t0
    text = (
        f"# OFA-MBv3 ImageNet accuracy predictor vs MACs alone\n\n"
        f"{len(acc)} rows ({len(set(groups))} distinct subnets, resolution 224 only, top-1 "
        f"{acc.min():.1f}-{acc.max():.1f}%) from DyNAS-T search runs (biased towards the "
        f"accuracy-MACs front). {args.folds}-fold CV grouped by architecture, {args.seeds} fold "
        f"seeds; figures are means over folds and seeds (fold sd: mean within-seed sd over "
        f"folds). beats: folds where tau is higher AND RMSE lower than MACs alone.\n\n"
        + markdown_table(summary)
        + f"\n\n{elapsed:.0f} s on {os.cpu_count()} cores (OMP_NUM_THREADS=1, shared machine); "
        f"{software('numpy', 'scikit-learn', 'scipy')}\n"
    )
    write_results(results_stem("accuracy_ofa", args.tag), rows, text)


if __name__ == "__main__":
    main()
