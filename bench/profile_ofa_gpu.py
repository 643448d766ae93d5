"""Block profiles of OFA-MobileNetV3 on recorded GPUs (HELP OFA table: 11 GPU settings).

Latency-only profiling (the table has no accuracy) of every (layer, block) specification of the
``ofa-mbv3`` space -- unit depths, per-layer kernel and expand ratio, input resolution -- on every
GPU column of ``ofa_mbv3/latency_help_gpu.csv.gz``: ``--samples`` table rows per specification, all
measurements shared across specifications. Reports how the same blocks cost differently across GPUs
and batch sizes (batch 1 is launch-bound, batch 64 tracks the work).

Usage:
    python bench/profile_ofa_gpu.py [--samples 20] [--devices 2080ti_1 2080ti_64 ...]

Writes bench/results/profile_ofa_gpu_<machine>_<versions>.{md,csv} and an HTML report with the
heatmaps (block x position per GPU) and the cross-device figure.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import pandas as pd


def _markdown(df: pd.DataFrame, *, index: bool = False, digits: int = 3) -> str:
    """A pipe table (no extra dependency)."""
    d = df.reset_index() if index else df
    cols = [str(c) for c in d.columns]

    def cell(v: object) -> str:
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in d.itertuples(index=False)]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--devices", nargs="+", default=None)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()

    import numpy

    import hsconas.spaces  # noqa: F401
    from hsconas.data.tables import data_dir, load_latency_table
    from hsconas.profiling import TableSource, enumerate_specs, profile_blocks
    from hsconas.profiling.friendliness import compare_devices
    from hsconas.profiling.insights import cross_device_insights, device_insights, format_insights
    from hsconas.report.profile_report import write_html
    from hsconas.space import get_space

    t0 = time.perf_counter()
    table = load_latency_table(
        data_dir() / "ofa_mbv3" / "latency_help_gpu.csv.gz", space="ofa-mbv3"
    )
    print(
        f"loaded {len(table)} rows x {len(table.devices)} GPU settings in {time.perf_counter() - t0:.1f} s"
    )
    space = get_space("ofa-mbv3")
    specs = enumerate_specs(space)
    devices = args.devices or list(table.devices)
    profiles = []
    rows = []
    for d in devices:
        t1 = time.perf_counter()
        prof = profile_blocks(
            space, specs, TableSource.from_table(table, d), samples=args.samples, seed=args.seed
        )
        reg = prof.regression["latency_ms"]
        profiles.append(prof)
        rows.append(
            {
                "device": d,
                "specs": len(specs),
                "distinct_networks": prof.n_distinct,
                "mean_latency_ms": reg.mean,
                "latency_r2": reg.r2,
                "time_s": time.perf_counter() - t1,
            }
        )
        print(f"{d}: {prof.n_distinct} distinct networks, R2 {reg.r2:.3f}", flush=True)
    versions = f"py{platform.python_version()}_numpy{numpy.__version__}"
    from hsconas.hardware.fingerprint import machine_name

    stem = f"profile_ofa_gpu_{machine_name()}_{versions}"
    summary = pd.DataFrame(rows)
    blocks = compare_devices(profiles).round(1)
    ins = [i for p in profiles for i in device_insights(p)] + cross_device_insights(profiles, top=5)
    text = (
        "# OFA-MobileNetV3 block profiles on recorded GPUs (HELP table)\n\n"
        f"{len(specs)} specifications x {args.samples} table rows each (plus a 4x random baseline), "
        f"latency only; effects from OLS on one-hot (gene, choice) features, centred per gene, in % of "
        f"the mean latency. {versions}.\n\n"
        + _markdown(summary)
        + "\n\n## Mean latency effect per block over its positions (%), per GPU setting\n\n"
        + _markdown(blocks, index=True, digits=1)
        + "\n\n## Insights\n\n"
        + format_insights(ins)
    )
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.md").write_text(text, encoding="utf-8")
    summary.to_csv(args.out / f"{stem}.csv", index=False)
    blocks.to_csv(args.out / f"{stem}_blocks.csv")
    write_html(
        profiles,
        args.out / f"{stem}_report.html",
        title="OFA-MobileNetV3 on recorded GPUs",
        heatmap_devices=[d for d in ("2080ti_1", "2080ti_64", "v100_1", "v100_64") if d in devices],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
