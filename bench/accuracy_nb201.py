"""Benchmark: label-free accuracy estimates of NAS-Bench-201 cells against the published accuracy.

Draws ``--archs`` seeded random NB201 cells with distinct ``unique_str`` (one representative cell per
computation), computes every zero-cost proxy on CIFAR-10 training images (the shared JPEG archive,
or ``--data``; one minibatch of 64, seed 0, BN in train mode, one CPU thread) and compares each
method with the published 200-epoch CIFAR-10 test accuracy (``nb201/accuracy.csv``): Kendall tau
and Spearman rho over all cells and over the cells above 15% (the cut-off cells sit at chance),
and the CPU minutes each method takes for 300 cells.

The ensemble is chosen honestly: the cells are split in two halves by ``unique_str``; every
combination of 2 to 4 proxies is scored on the first half, and the best one, the default
``ensemble`` and the single proxies are reported on the second half too. The expensive proxies
(snip, grad_norm) may run on fewer cells (``--expensive-archs``); the combination search
then uses only the proxies computed on every cell.

Proxy values go to a results store (``--store``, default ``~/.cache/hsconas/accuracy_nb201.db``),
so a rerun with more cells computes only the new ones. Writes
``bench/results/<machine>/accuracy_nb201.{md,csv}`` (the csv: one row per cell). From the
repository root:

    OMP_NUM_THREADS=1 python -m bench.accuracy_nb201 --archs 300 --expensive-archs 100
    python -m bench.accuracy_nb201 --archs 20 --tag trial        # a minute
"""

from __future__ import annotations

import argparse
import itertools
import os
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
from hsconas.accuracy.proxies import PROXIES
from hsconas.accuracy.zero_cost import ENSEMBLE_MEMBERS, ProxyConfig, ZeroCostScorer, combine
from hsconas.space import get_space
from hsconas.store import ResultStore

EXPENSIVE = ("snip", "grad_norm")


def _corr(score: np.ndarray, acc: np.ndarray) -> tuple[float, float]:
    ok = np.isfinite(score)
    tau = kendalltau(score[ok], acc[ok]).statistic
    rho = spearmanr(score[ok], acc[ok]).statistic
    return float(tau), float(rho)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=1000, help="cells (distinct unique_str)")
    ap.add_argument("--expensive-archs", type=int, default=None, help="cells for snip/grad_norm")
    ap.add_argument("--data", default=None, help="dataset spec (default: the shared CIFAR-10)")
    ap.add_argument("--seed", type=int, default=0, help="proxy seed (weights and minibatch)")
    ap.add_argument("--sample-seed", type=int, default=0, help="seed of the cell draw")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--batches", type=int, default=1)
    ap.add_argument("--store", type=Path, default=None)
    ap.add_argument("--no-write", action="store_true")
    add_tag_argument(ap)
    args = ap.parse_args()
    torch.set_num_threads(1)
    default_spec, store_path = nb201_proxy_store(args.store)
    spec = args.data or default_spec
    store = ResultStore(store_path)

    rng = np.random.default_rng(args.sample_seed)
    pick = nb201_proxy_cells(args.archs, rng)
    space = get_space("nb201")
    archs = [space.from_string(s) for s in pick["arch_str"]]
    acc = pick["cifar10_test_acc_200ep"].to_numpy(dtype=np.float64)
    n_exp = len(archs) if args.expensive_archs is None else min(args.expensive_archs, len(archs))

    config = ProxyConfig(
        data=spec, seed=args.seed, batches=args.batches, batch_size=args.batch_size
    )
    scorer = ZeroCostScorer(space, config, store=store)
    t0 = time.perf_counter()
    cheap = [m for m in PROXIES if m not in EXPENSIVE]
    values: dict[str, np.ndarray] = {}
    bounds = sorted({*range(0, len(archs), 25), n_exp, len(archs)})
    for lo, hi in itertools.pairwise(bounds):  # in chunks, for progress
        chunk = archs[lo:hi]
        got = scorer.values_of(chunk, cheap if lo >= n_exp else list(PROXIES))
        for m in PROXIES:
            col = got.get(m, np.full(len(chunk), np.nan))
            values[m] = np.concatenate([values.get(m, np.empty(0)), col])
        print(f"{hi}/{len(archs)} cells, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    wall = time.perf_counter() - t0

    keys = [space.to_string(a) for a in archs]
    cpu = {
        m: np.array([scorer.cpu_seconds.get((m, k), np.nan) for k in keys], dtype=np.float64)
        for m in PROXIES
    }
    for m in EXPENSIVE:
        values[m][n_exp:] = np.nan
        cpu[m][n_exp:] = np.nan

    # the ensemble choice on half A (by unique_str), reported on half B
    half = np.zeros(len(archs), dtype=bool)
    half[rng.permutation(len(archs))[: len(archs) // 2]] = True
    everywhere = [m for m in PROXIES if np.all(np.isfinite(values[m]))]
    combos = [c for r in (2, 3, 4) for c in itertools.combinations(everywhere, r)]
    selection = []
    for c in combos:
        sel = half
        score = combine({m: values[m][sel] for m in c})
        selection.append((_corr(score, acc[sel])[0], c))
    selection.sort(reverse=True)
    best = selection[0][1]

    def ens(members: tuple[str, ...], mask: np.ndarray) -> np.ndarray:
        return combine({m: values[m][mask] for m in members})

    rows = []
    methods: list[tuple[str, tuple[str, ...]]] = [(m, (m,)) for m in PROXIES]
    methods.append((f"ensemble (default: {'+'.join(ENSEMBLE_MEMBERS)})", ENSEMBLE_MEMBERS))
    if best != ENSEMBLE_MEMBERS:
        methods.append((f"best on half A: {'+'.join(best)}", best))
    for label, members in methods:
        avail = np.all([np.isfinite(values[m]) for m in members], axis=0)
        r: dict[str, object] = {"method": label, "cells": int(avail.sum())}
        for name, mask in (
            ("all", avail),
            ("above15", avail & (acc > 15)),
            ("halfB", avail & ~half),
        ):
            score = ens(members, mask) if len(members) > 1 else values[members[0]][mask]
            tau, rho = _corr(score, acc[mask])
            r[f"tau_{name}"], r[f"rho_{name}"] = round(tau, 4), round(rho, 4)
        per_arch = float(np.nansum([np.nanmean(cpu[m][avail]) for m in members]))
        r["cpu_s_per_cell"] = round(per_arch, 3)
        r["cpu_min_300"] = round(per_arch * 300 / 60, 2)
        rows.append(r)
    summary = pd.DataFrame(rows)

    lines = [
        "# Label-free accuracy estimates on NAS-Bench-201 / CIFAR-10",
        "",
        f"{len(archs)} random cells with distinct unique_str (draw seed {args.sample_seed}); "
        f"snip/grad_norm on the first {n_exp}. Proxies on {spec.split(':')[0]} training "
        f"images: {args.batches} minibatch(es) of {args.batch_size}, seed {args.seed}, BN in "
        "train mode, 1 CPU thread. Truth: published 200-epoch CIFAR-10 test accuracy. "
        "`above15`: cells above 15% only; `halfB`: the half not used to choose the combination. "
        "CPU time per cell is process time when the value was computed (shared 2-core machine).",
        "",
        markdown_table(summary),
        "",
        "Best combinations on half A (Kendall tau on half A):",
        "",
        *[f"- {'+'.join(c)}: {t:.4f}" for t, c in selection[:8]],
        "",
        f"Wall time of this run {wall / 60:.1f} min ({scorer.n_computed} cells computed, the "
        f"rest read from {store_path.name}); {os.cpu_count()} CPUs; "
        + software("torch", "numpy", "scipy"),
    ]
    per_cell = pick[["arch_str", "unique_str", "cifar10_test_acc_200ep"]].copy()
    for m in PROXIES:
        per_cell[m] = values[m]
    if args.no_write:
        print("\n".join(lines))
        return
    write_results(
        results_stem("accuracy_nb201", args.tag), per_cell.to_dict("records"), "\n".join(lines)
    )


if __name__ == "__main__":
    main()
