"""Benchmark: HSCoNAS latency model (LUT sum + learned correction) on this machine's CPU.

For each space (``ofa-mbv3``, ``proxylessnas``) and backend (``torch``, ``onnxruntime``), at one
resolution and a fixed thread count:

1. collect the distinct blocks of the space (shared by both backends) and measure each in
   isolation (the LUT);
2. measure 30 sampled networks end to end and fit the HSCoNAS correction;
3. measure >= 100 fresh held-out networks and compare predictions of the HSCoNAS model, the plain
   LUT sum and the learned end-to-end predictors (trained on the same 30 measurements);
4. measure one network 10 times (fresh protocol each time) to bound what any model can reach.

Every measurement goes into a results store (``--store``, default under /tmp) so that a re-run
resumes without re-measuring. Prints a Markdown table and writes it with a CSV to
``bench/results/<machine>/latency_cpu.{md,csv}`` (``latency_cpu_<tag>`` with ``--tag``). Run it on a
quiet machine, from the repository root:

    OMP_NUM_THREADS=1 python -m bench.latency_cpu --store /tmp/lat.db     # about 20 minutes
    OMP_NUM_THREADS=1 python -m bench.latency_cpu --spaces ofa-mbv3 --backends onnxruntime \\
        --n-train 10 --n-test 10 --tag trial                              # a few minutes
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from bench.common import add_tag_argument, results_stem, write_results
from hsconas.hardware.backends import Backend, get_backend
from hsconas.hardware.fingerprint import fingerprint, machine_name, static_fingerprint
from hsconas.hardware.measure import (
    DEFAULT_DEVICE,
    calibrate_reference,
    measure_network,
    measurement_settings,
)
from hsconas.hardware.reference import space_reference
from hsconas.hardware.timing import TimingConfig
from hsconas.latency.hsconas.lut import LookupTable, collect_blocks
from hsconas.latency.hsconas.profile import profile_device, sample_archs
from hsconas.latency.metrics import evaluate
from hsconas.store import Measurement, ResultStore


def _cost(m: Measurement) -> float:
    """Seconds a stored measurement took: building, export and timing (older: timing only)."""
    return float(m.extra.get("wall_s", m.extra.get("elapsed_s", 0.0))) + float(
        m.extra.get("build_s", 0.0)
    )


def _stored_cost(store: ResultStore, space: str, be: Backend, kind: str, lut: LookupTable) -> float:
    total = 0.0
    for key, entry in lut.entries.items():
        m = store.get_measurement(
            space=space, kind=kind, key=key, device=DEFAULT_DEVICE, backend=be.name,
            settings=measurement_settings(be, entry.input_shape, 1),
        )  # fmt: skip
        total += 0.0 if m is None else _cost(m)
    return total


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spaces", nargs="+", default=["ofa-mbv3", "proxylessnas"])
    ap.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    ap.add_argument("--resolution", type=int, default=160)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--clock",
        default="wall",
        choices=["wall", "thread_cpu"],
        help="wall (default: real latency); thread_cpu (threads=1): CPU time of the measuring "
        "thread, which leaves out time lost to other processes",
    )
    ap.add_argument(
        "--reference",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time every run against the space's middle network (cancels the machine's drift)",
    )
    ap.add_argument("--n-train", type=int, default=30)
    ap.add_argument("--n-test", type=int, default=100)
    ap.add_argument("--max-time", type=float, default=1.0, help="cap per network, seconds")
    ap.add_argument("--block-max-time", type=float, default=0.5, help="cap per block, seconds")
    ap.add_argument("--patience", type=int, default=100)
    ap.add_argument("--store", default="/tmp/hsconas_bench_latency_cpu.db")
    ap.add_argument("--seed", type=int, default=0)
    add_tag_argument(ap)
    args = ap.parse_args()

    store = ResultStore(args.store)
    timing = TimingConfig(max_time_s=args.max_time)
    block_timing = TimingConfig(max_time_s=args.block_max_time)
    fp = static_fingerprint()
    rows: list[dict[str, object]] = []
    notes: list[str] = []
    predictors = ["linear", "gbdt", "gp"]
    try:
        from hsconas.latency.predictors import make_predictor
    except ImportError:
        predictors = []

    for space in args.spaces:
        t0 = time.perf_counter()
        blocks = collect_blocks(
            space, resolution=args.resolution, seed=args.seed, patience=args.patience
        )
        collect_s = time.perf_counter() - t0
        print(f"[{space}] {len(blocks)} distinct blocks in {collect_s:.0f} s", file=sys.stderr)
        for bname in args.backends:
            ref = space_reference(space, args.resolution) if args.reference else None
            be = get_backend(bname, threads=args.threads, clock=args.clock, reference=ref)
            load_before = _load()

            def progress(
                phase: str, done: int, total: int, _s: str = space, _b: str = bname
            ) -> None:
                if done % 10 == 0 or done == total:
                    print(f"  [{_s}/{_b}] {phase} {done}/{total}", file=sys.stderr)

            prof = profile_device(
                space, be, resolution=args.resolution, n_e2e=args.n_train, seed=args.seed,
                store=store, timing=timing, block_timing=block_timing, blocks=blocks,
                progress=progress,
            )  # fmt: skip
            model = prof.model
            # what profiling cost when it was measured (also right when results were reused
            # from the store): block collection now, plus the stored measuring time of every
            # LUT entry, training network and the reference's calibration
            lut_cost = _stored_cost(store, space, be, "block", prof.model.lut)
            e2e_cost = sum(
                _cost(measure_network(a, be, store=store, timing=timing)) for a in prof.train_archs
            )
            ref_cost = 0.0
            if ref is not None:
                ref_cost = _cost(calibrate_reference(be, store=store))
            profile_s = collect_s + lut_cost + e2e_cost + ref_cost
            test = sample_archs(
                space, args.n_test, resolution=args.resolution, seed=args.seed + 1000,
                exclude=prof.train_archs,
            )  # fmt: skip
            t1 = time.perf_counter()
            meas = []
            stable = 0
            for i, a in enumerate(test):
                m = measure_network(a, be, store=store, timing=timing)
                meas.append(m.median_ms)
                stable += int(m.stable)
                progress("test", i + 1, len(test))
            test_s = time.perf_counter() - t1
            y = np.asarray(meas)
            preds = {
                "HSCoNAS (LUT+corr.)": model.predict_ms(test),
                "LUT sum": np.array([model.lut_sum(a) for a in test]),
            }
            for kind in predictors:
                p = make_predictor(kind).fit(list(prof.train_archs), list(prof.train_ms))
                preds[f"{kind} (e2e only)"] = np.asarray(p.predict(list(test)))
            # repeatability: one network measured 10 times with a fresh protocol each time
            rep = np.array(
                [
                    measure_network(test[0], be, timing=timing, reuse=False).median_ms
                    for _ in range(10)
                ]
            )
            rep_sd = 100 * rep.std(ddof=1) / np.median(rep)
            rep_range = 100 * (rep.max() - rep.min()) / np.median(rep)
            load_after = _load()
            for name, pred in preds.items():
                mt = evaluate(pred, y)
                rows.append(
                    {
                        "space": space,
                        "backend": bname,
                        "model": name,
                        "n_test": mt.n,
                        "within_10pct": round(100 * mt.within_10pct, 1),
                        "within_5pct": round(100 * mt.within_5pct, 1),
                        "kendall": round(mt.kendall, 3),
                        "spearman": round(mt.spearman, 3),
                        "rmse_ms": round(mt.rmse_ms, 3),
                        "mape_pct": round(mt.mape_pct, 2),
                        "median_latency_ms": round(float(np.median(y)), 2),
                        "lut_blocks": prof.n_blocks,
                        "profile_s": round(profile_s, 1),
                        "test_measure_s": round(test_s, 1),
                        "stable_test_share": round(100 * stable / len(test), 1),
                        "repeat_sd_pct": round(float(rep_sd), 2),
                        "repeat_range_pct": round(float(rep_range), 2),
                        "load_avg_before": load_before,
                        "load_avg_after": load_after,
                    }
                )
                print(
                    f"  {space}/{bname} {name}: within10 {100 * mt.within_10pct:.1f}% "
                    f"within5 {100 * mt.within_5pct:.1f}% tau {mt.kendall:.3f} "
                    f"mape {mt.mape_pct:.2f}%",
                    file=sys.stderr,
                )
            notes.append(
                f"- {space}/{bname}: LUT {prof.n_blocks} blocks; profiling {profile_s:.0f} s "
                f"(collect {collect_s:.0f} s, LUT {lut_cost:.0f} s, {args.n_train} e2e "
                f"{e2e_cost:.0f} s, reference calibration {ref_cost:.0f} s, as measured; this run "
                f"spent {prof.lut_s + prof.e2e_s:.0f} s, zero for results found in the store); "
                f"correction {model.correction}, alpha "
                f"{model.alpha:.3g}, LOO MAPE {model.info['fit']['loo_mape_pct']:.2f}%; "
                f"load avg {load_before} -> {load_after}"
            )

    stem = results_stem("latency_cpu", args.tag)
    show = ["space", "backend", "model", "n_test", "within_10pct", "within_5pct", "kendall",
            "rmse_ms", "mape_pct", "median_latency_ms", "profile_s", "repeat_sd_pct",
            "repeat_range_pct", "stable_test_share"]  # fmt: skip
    lines = [
        "| " + " | ".join(show) + " |",
        "|" + "---|" * len(show),
        *("| " + " | ".join(str(r[c]) for c in show) + " |" for r in rows),
    ]
    fpn = fingerprint(args.backends[0], {"threads": args.threads})
    md = "\n".join(
        [
            f"# Latency models on this CPU ({machine_name()})",
            "",
            f"`python -m bench.latency_cpu {' '.join(sys.argv[1:])}`; resolution {args.resolution}, threads {args.threads}, "
            f"clock {args.clock}, reference network: {'yes' if args.reference else 'no'}, "
            f"batch 1, {args.n_train} e2e training networks, {args.n_test} held-out networks; "
            f"timing: warm-up then runs until the 95% CI half-width of the median is < 1% or "
            f"{args.max_time} s per network ({args.block_max_time} s per block).",
            "",
            f"Machine: {fp['cpu_model']}, {fp['cpu_count']} cores, governor {fp['governor']}, "
            f"{fp['os']}, python {fp['python']}, torch {fp['torch']}, onnxruntime "
            f"{fp['onnxruntime']}, numpy {fp['numpy']}. Load average at the end: "
            f"{fpn['load_avg']}.",
            "",
            "within_10pct / within_5pct: % of held-out networks predicted within +/-10% / 5%; "
            "repeat_sd_pct / repeat_range_pct: std and max-min of 10 repeated measurements of one "
            "network, % of its median; stable_test_share: % of held-out measurements whose CI "
            "met the 1% target before the time cap.",
            "",
            *lines,
            "",
            "## Notes",
            "",
            *notes,
            "",
        ]
    )
    write_results(stem, rows, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
