"""Drift check of a ``bench/latency_cpu.py`` run, from its results store (no new measurements).

Refits the HSCoNAS model of one space/backend from the stored LUT and 30 training measurements,
then prints the median ratio measured / predicted of the held-out networks in five groups taken
in the order they were measured. On a quiet machine the ratios stay near 1; a trend shows that the
machine's speed changed during the run (other load, frequency), which no latency model can follow.

Usage: ``.venv/bin/python bench/latency_cpu_drift.py SPACE BACKEND [--store DB]``
"""

from __future__ import annotations

import argparse

import numpy as np

from hsconas.hardware.lut import LookupTable, LutEntry
from hsconas.latency.hw_model import HSCoNASModel, sample_archs
from hsconas.space import get_space
from hsconas.store import ResultStore


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("space")
    ap.add_argument("backend")
    ap.add_argument("--store", default="/tmp/hsconas_bench_latency_cpu.db")
    ap.add_argument("--clock", default="wall")
    ap.add_argument(
        "--reference",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="read the measurements timed against the reference network (the benchmark default)",
    )
    ap.add_argument("--resolution", type=int, default=160)
    ap.add_argument("--n-train", type=int, default=30)
    ap.add_argument("--n-test", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    store = ResultStore(args.store)
    ms = [
        m
        for m in store.measurements(space=args.space, backend=args.backend)
        if m.settings.get("clock", "wall") == args.clock
        and ("reference" in m.settings) == args.reference
    ]
    blocks = {
        m.key: LutEntry(m.key, m.median_ms, m.spread_ms, m.stable, tuple(m.settings["input_shape"]))
        for m in ms
        if m.kind == "block"
    }
    nets = {m.key: m for m in ms if m.kind == "network"}
    lut = LookupTable(args.space, "local-cpu", args.backend, {}, args.resolution, blocks)
    sp = get_space(args.space)
    train = sample_archs(args.space, args.n_train, resolution=args.resolution, seed=args.seed + 1)
    test = sample_archs(
        args.space, args.n_test, resolution=args.resolution, seed=args.seed + 1000, exclude=train
    )
    model = HSCoNASModel.fit(lut, train, [nets[sp.to_string(a)].median_ms for a in train])
    y = np.array([nets[sp.to_string(a)].median_ms for a in test])
    created = np.array([nets[sp.to_string(a)].created for a in test])
    ratio = (y / model.predict_ms(test))[np.argsort(created)]
    groups = [round(float(np.median(g)), 3) for g in np.array_split(ratio, 5)]
    fit = model.info["fit"]
    print(
        f"{args.space}/{args.backend}: training LOO MAPE {fit['loo_mape_pct']:.2f}%; held-out "
        f"measured/predicted by measurement order (5 groups): {groups}; "
        f"held-out measured over {(created.max() - created.min()) / 60:.1f} min"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
