"""Benchmark: does folding the supernet into the zero-cost ensemble rank NAS-Bench-201 cells better
than the supernet alone (and than the proxies alone)? The evidence for the default
``search.accuracy: ensemble`` of ``hsconas run``.

Trains the ``nb201`` supernet on CIFAR-10 (single-path uniform sampling, as
``bench.supernet_nb201_cifar``, at a CPU-minutes scale set by ``--subset``, ``--epochs``,
``--channels`` and ``--cells-per-stage``), evaluates the first ``--archs`` cells of
``bench.accuracy_nb201``'s draw (distinct ``unique_str``, draw seed 0) with recalibrated batch norms,
reads their jacov and params values from the proxy store (computing any that are missing), and
reports Kendall tau and Spearman rho against the published 200-epoch CIFAR-10 test accuracy of:
the supernet, the proxies' ensemble (jacov+params), and the ensemble with the supernet as a third
signal (the mean quantile position of :func:`hsconas.accuracy.zero_cost.combine`, what
``search.accuracy: ensemble`` computes against its reference sample).

Writes ``bench/results/<machine>/ensemble_nb201.{md,csv}`` (the csv: one row per cell). From the
repository root:

    OMP_NUM_THREADS=1 python -m bench.ensemble_nb201        # about 5 CPU-min
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import kendalltau, spearmanr

from bench.common import (
    add_tag_argument,
    markdown_table,
    nb201_proxy_cells,
    nb201_proxy_store,
    results_stem,
    software,
    write_results,
)
from bench.supernet_nb201_cifar import train_supernet
from hsconas.accuracy import evaluate_subnets
from hsconas.accuracy.evaluate import EvalBatches
from hsconas.accuracy.zero_cost import ENSEMBLE_MEMBERS, ProxyConfig, ZeroCostScorer, combine
from hsconas.data import load_dataset
from hsconas.space import get_space
from hsconas.store import ResultStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=120, help="cells of the accuracy_nb201 draw")
    ap.add_argument("--subset", type=int, default=10000, help="training-pool images")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--cells-per-stage", type=int, default=1)
    ap.add_argument("--calib-images", type=int, default=256)
    ap.add_argument("--store", type=Path, default=None, help="proxy store (accuracy_nb201's)")
    add_tag_argument(ap)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cpu0 = time.process_time()

    # the cells: bench.accuracy_nb201's draw, its first --archs
    pick = nb201_proxy_cells(args.archs)
    space = get_space("nb201")
    archs = [space.from_string(s) for s in pick["arch_str"]]
    truth = pick["cifar10_test_acc_200ep"].to_numpy(dtype=np.float64)

    # proxies (from the store when accuracy_nb201 computed them)
    spec, store_path = nb201_proxy_store(args.store)
    store = ResultStore(store_path)
    scorer = ZeroCostScorer(space, ProxyConfig(data=spec), store=store)
    proxies = scorer.values_of(archs, ENSEMBLE_MEMBERS)
    proxy_cpu = time.process_time() - cpu0

    # the supernet
    t0 = time.process_time()
    data = load_dataset("cifar10", subset=args.subset, val_fraction=0.1, seed=0)
    sn, _ = train_supernet(
        data, channels=args.channels, cells_per_stage=args.cells_per_stage, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, calib_images=args.calib_images,
    )  # fmt: skip
    train_cpu = time.process_time() - t0
    t0 = time.process_time()
    batches = EvalBatches.from_dataset(data, calib_images=args.calib_images, seed=0)
    sup = 100.0 * np.asarray(evaluate_subnets(sn, archs, batches=batches, progress=True))
    eval_cpu = time.process_time() - t0

    signals = {
        "supernet": sup,
        f"proxies ({'+'.join(ENSEMBLE_MEMBERS)})": combine(dict(proxies)),
        "ensemble: proxies + supernet (the default)": combine({**proxies, "supernet": sup}),
    }
    ok = truth > 15.0
    rows = []
    for name, score in signals.items():
        rows.append(
            {
                "estimate": name,
                "cells": len(archs),
                "tau_all": round(float(kendalltau(score, truth).statistic), 4),
                "rho_all": round(float(spearmanr(score, truth).statistic), 4),
                "tau_above15": round(float(kendalltau(score[ok], truth[ok]).statistic), 4),
            }
        )
    stem = results_stem("ensemble_nb201", args.tag)
    text = "\n".join(
        [
            "# NB201 / CIFAR-10: the supernet, the zero-cost proxies and their ensemble",
            "",
            f"`python -m bench.ensemble_nb201 {' '.join(sys.argv[1:])}`; the first {len(archs)} "
            "cells of bench.accuracy_nb201's draw (distinct unique_str, seed 0). Supernet: "
            f"C={args.channels}, N={args.cells_per_stage}, {args.epochs} epochs on "
            f"{len(data.train_labels)} CIFAR-10 training images (uniform single-path, batch "
            f"{args.batch_size}, SGD lr {args.lr}), {train_cpu / 60:.1f} CPU-min; members "
            f"evaluated on {len(data.val_labels)} validation images after BN recalibration on "
            f"{args.calib_images}, {eval_cpu / 60:.1f} CPU-min. Proxies: 1 minibatch of 64 "
            f"CIFAR-10 training images, seed 0 ({proxy_cpu / 60:.1f} CPU-min here, most read "
            "from the store). Truth: published 200-epoch CIFAR-10 test accuracy. Supernet "
            f"top-1 of the cells: min {sup.min():.1f}%, median {np.median(sup):.1f}%, max "
            f"{sup.max():.1f}%.",
            "",
            markdown_table(pd.DataFrame(rows)),
            "",
            f"Total CPU {(time.process_time() - cpu0) / 60:.1f} min, 1 torch thread, on a shared "
            "2-core machine; " + software("torch", "numpy", "scipy"),
        ]
    )
    cells = [
        {
            "arch": space.to_string(a),
            "nb201_cifar10_pct": float(t),
            "supernet_top1_pct": float(s),
            **{m: float(proxies[m][i]) for m in ENSEMBLE_MEMBERS},
        }
        for i, (a, t, s) in enumerate(zip(archs, truth, sup, strict=True))
    ]
    write_results(stem, cells, text)


if __name__ == "__main__":
    main()
