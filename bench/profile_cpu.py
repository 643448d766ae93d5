"""Block profiles of OFA-MobileNetV3 and ProxylessNAS on this CPU (torch and onnxruntime), side by
side with the OFA-MobileNetV3 profiles of the recorded GPUs (HELP OFA table).

For each space and backend, every (layer, block) specification of the space -- unit depths and
per-layer kernel size and expand ratio -- is profiled at one fixed input resolution (the resolution
gene restricted to ``--resolution``): ``--samples`` networks per specification plus the default
random baseline (4x samples), each distinct network timed once end to end (batch 1, 1 thread)
through :func:`hsconas.profiling.profile_blocks` with a ``backend:torch`` / ``backend:onnxruntime``
source. Every measurement goes through one results store (``--store``), so a network drawn for one
specification serves every specification it matches, and a rerun with the same store measures
nothing new. The OFA GPU table is profiled through the same API (a table source, seconds per GPU).

Reports, per run, the cost (distinct networks, newly measured ones, minutes) and the latency
regression's R2; then, per space, which blocks each device favours: the mean latency effect (%) of
every kernel/expand/depth choice over its positions, CPU torch vs CPU onnxruntime vs the GPUs.

Usage:
    python bench/profile_cpu.py [--spaces ofa-mbv3 proxylessnas] [--backends torch onnxruntime]
        [--samples 2] [--resolution 160] [--store /tmp/hsconas_profile_cpu.db] [--max-time 1.5]
        [--positions 1 2 3] [--gpu-devices 2080ti_1 v100_64] [--plan] [--no-write]

``--plan`` only counts the distinct networks each run would measure (the draws do not depend on
the measurements), without timing anything. Writes
bench/results/profile_cpu_<machine>_<versions>.{md,csv} (the .csv holds the per-block effects,
``_runs.csv`` the cost per run) and one HTML report per space with every profile of that space
(heatmaps and the cross-device figure).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SPACES = ("ofa-mbv3", "proxylessnas")
BACKENDS = ("torch", "onnxruntime")
GPU_SPACE = "ofa-mbv3"
GPU_TABLE = ("ofa_mbv3", "latency_help_gpu.csv.gz")
# block families compared across devices (the resolution gene is fixed on the CPU)
BLOCK_PREFIXES = ("kernel=", "expand=", "depth=")


def _markdown(df: pd.DataFrame, *, index: bool = False, digits: int = 3) -> str:
    """A pipe table (no extra dependency)."""
    d = df.reset_index() if index else df
    cols = [str(c) for c in d.columns]

    def cell(v: object) -> str:
        if isinstance(v, float):
            return "–" if np.isnan(v) else f"{v:.{digits}f}"
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in d.itertuples(index=False)]
    return "\n".join(lines)


class _PlanSource:
    """Stand-in latency source for ``--plan``: a cheap deterministic number per network.

    The draws of :func:`profile_blocks` happen before any measurement, so profiling with this
    source draws exactly the networks a real run would time; nothing is timed or stored.
    """

    kind = "plan"

    def __init__(self, device: str) -> None:
        self.device = device

    @property
    def settings(self) -> Mapping[str, Any]:
        return {}

    def pool(self, space: Any) -> None:
        return None

    def measure(self, space: Any, archs: Sequence[Any], *, store: Any) -> tuple[np.ndarray, int]:
        vals = [1.0 + sum(float(v) for v in a.values if isinstance(v, int | float)) for a in archs]
        return np.asarray(vals, dtype=np.float64), len(archs)


def _cpu_run(space: Any, backend: str, args: argparse.Namespace, store: Any) -> tuple[Any, dict]:
    from hsconas.hardware.timing import TimingConfig
    from hsconas.profiling import BackendSource, enumerate_specs, profile_blocks

    specs = enumerate_specs(space, positions=args.positions)
    device = f"cpu-{backend}"
    source: Any
    if args.plan:
        source = _PlanSource(device)
    else:
        source = BackendSource(
            backend,
            device=device,
            batch=1,
            threads=1,
            timing=TimingConfig(max_time_s=args.max_time),
            reference=args.reference,
        )
    t0 = time.perf_counter()
    prof = profile_blocks(
        space, specs, source, samples=args.samples, seed=args.seed,
        store=None if args.plan else store, progress=_progress(f"{space.name}/{backend}"),
    )  # fmt: skip
    minutes = (time.perf_counter() - t0) / 60.0
    reg = prof.regression["latency_ms"]
    row = {
        "space": space.name,
        "device": device,
        "specs": len(specs),
        "samples": args.samples,
        "distinct_networks": prof.n_distinct,
        "fit_parameters": fit_parameters(space),
        "newly_measured": 0 if args.plan else prof.n_new,
        "minutes": minutes,
        "s_per_new_network": (minutes * 60.0 / prof.n_new)
        if prof.n_new and not args.plan
        else np.nan,
        "mean_latency_ms": np.nan if args.plan else reg.mean,
        "latency_r2": np.nan if args.plan else reg.r2,
    }
    return prof, row


def _gpu_runs(args: argparse.Namespace) -> tuple[list[Any], list[dict]]:
    from hsconas.data.tables import data_dir, load_latency_table
    from hsconas.profiling import TableSource, enumerate_specs, profile_blocks
    from hsconas.space import get_space

    t0 = time.perf_counter()
    table = load_latency_table(data_dir().joinpath(*GPU_TABLE), space=GPU_SPACE)
    print(f"loaded the OFA GPU table ({len(table)} rows) in {time.perf_counter() - t0:.1f} s")
    space = get_space(GPU_SPACE)
    specs = enumerate_specs(space, positions=args.positions)
    devices = list(table.devices) if args.gpu_devices is None else args.gpu_devices
    profiles, rows = [], []
    for d in devices:
        t1 = time.perf_counter()
        prof = profile_blocks(
            space, specs, TableSource.from_table(table, d), samples=args.gpu_samples, seed=args.seed
        )
        reg = prof.regression["latency_ms"]
        profiles.append(prof)
        rows.append(
            {
                "space": GPU_SPACE,
                "device": d,
                "specs": len(specs),
                "samples": args.gpu_samples,
                "distinct_networks": prof.n_distinct,
                "fit_parameters": fit_parameters(space),
                "newly_measured": 0,
                "minutes": (time.perf_counter() - t1) / 60.0,
                "s_per_new_network": np.nan,
                "mean_latency_ms": reg.mean,
                "latency_r2": reg.r2,
            }
        )
    return profiles, rows


def fit_parameters(space: Any) -> int:
    """Free parameters of the block regression: intercept + (choices - 1) per gene with a choice.

    With no more distinct networks than this the fit is exact (R2 = 1 by construction) and the
    per-block effects are a minimum-norm solution, not an estimate.
    """
    return 1 + sum(len(g.choices) - 1 for g in space.genes)


def _progress(label: str):  # type: ignore[no-untyped-def]
    def show(done: int, total: int) -> None:
        print(f"  {label}: measured {done}/{total} networks", file=sys.stderr, flush=True)

    return show


def block_table(profiles: Sequence[Any]) -> pd.DataFrame:
    """Mean latency effect (%) of every kernel/expand/depth block, one column per device."""
    from hsconas.profiling.friendliness import compare_devices

    t = compare_devices(profiles)
    keep = [b for b in t.index if str(b).startswith(BLOCK_PREFIXES)]
    order = {p: i for i, p in enumerate(BLOCK_PREFIXES)}

    def key(b: str) -> tuple[int, float]:
        pre, _, val = b.partition("=")
        return order[pre + "="], float(val)

    return t.loc[sorted(keep, key=key)]


def block_long(profiles: Sequence[Any]) -> pd.DataFrame:
    """Per (space, device, block): mean effect, spread over positions, positions (long format)."""
    from hsconas.profiling.friendliness import block_friendliness

    frames = []
    for p in profiles:
        bf = block_friendliness(p)
        bf.insert(0, "space", p.space)
        bf.insert(2, "source", str(p.source.get("kind", "")))
        frames.append(
            bf[
                [
                    "space",
                    "device",
                    "source",
                    "block",
                    "n_positions",
                    "lat_effect_pct",
                    "lat_pct_min",
                    "lat_pct_max",
                    "placement_spread_pct",
                    "pos_min",
                    "pos_max",
                ]
            ]
        )
    return pd.concat(frames, ignore_index=True)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--spaces", nargs="+", default=list(SPACES), choices=SPACES)
    ap.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    ap.add_argument("--samples", type=int, default=2, help="networks per specification (>= 2)")
    ap.add_argument("--resolution", type=int, default=160, help="fixed input resolution, pixels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--store", type=Path, default=Path("/tmp/hsconas_profile_cpu.db"),
        help="results store (SQLite) shared by every run; a rerun reuses its measurements",
    )  # fmt: skip
    ap.add_argument(
        "--max-time", type=float, default=1.5, help="timing cap per network, seconds (timed runs)"
    )
    ap.add_argument(
        "--reference", action=argparse.BooleanOptionalAction, default=True,
        help="time every network against the space's middle network (cancels the VM's drift)",
    )  # fmt: skip
    ap.add_argument("--positions", nargs="+", help="profile only these layers (index or name)")
    ap.add_argument(
        "--gpu-devices", nargs="*", default=None,
        help="GPU columns of the OFA table to profile (default: all 11; none: skip the GPUs)",
    )  # fmt: skip
    ap.add_argument("--gpu-samples", type=int, default=20, help="table rows per specification")
    ap.add_argument("--plan", action="store_true", help="count the networks; time nothing")
    ap.add_argument("--no-write", action="store_true", help="print only; write no result files")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    if args.samples < 2 or args.gpu_samples < 2:
        ap.error("--samples and --gpu-samples must be >= 2 (a specification needs a spread)")

    import onnxruntime
    import torch

    import hsconas.spaces  # noqa: F401  (registers the spaces)
    from hsconas.hardware.fingerprint import machine_name
    from hsconas.profiling.insights import cross_device_insights, device_insights, format_insights
    from hsconas.space import get_space
    from hsconas.store import ResultStore

    torch.set_num_threads(1)
    store = None if args.plan else ResultStore(args.store)
    cpu: dict[str, list[Any]] = {s: [] for s in args.spaces}
    rows = []
    for name in args.spaces:
        space = get_space(name).restrict({"resolution": [args.resolution]})
        for backend in args.backends:
            prof, row = _cpu_run(space, backend, args, store)
            cpu[name].append(prof)
            rows.append(row)
            print(
                f"{name} on cpu-{backend}: {row['specs']} specifications, "
                f"{row['distinct_networks']} distinct networks ({row['newly_measured']} newly "
                f"measured) in {row['minutes']:.2f} min, latency R2 {row['latency_r2']:.3f}",
                flush=True,
            )
    gpu: list[Any] = []
    if GPU_SPACE in args.spaces and args.gpu_devices != [] and not args.plan:
        gpu, grows = _gpu_runs(args)
        rows += grows
    runs = pd.DataFrame(rows)
    if args.plan:
        cols = ["space", "device", "specs", "samples", "distinct_networks", "fit_parameters"]
        print(_markdown(runs[cols]))
        return 0

    thin = runs[runs["distinct_networks"] <= runs["fit_parameters"]]
    note = (
        "\n\nExact fits (no more distinct networks than regression parameters, so R2 = 1 by "
        "construction and the effects are a minimum-norm solution, not estimates; raise --samples): "
        + ", ".join(f"{r.space} on {r.device}" for r in thin.itertuples())
        + "."
        if len(thin)
        else ""
    )
    for r in thin.itertuples():
        print(
            f"warning: {r.space} on {r.device}: {r.distinct_networks} networks for "
            f"{r.fit_parameters} regression parameters; the fit is exact",
            file=sys.stderr,
        )
    machine = machine_name()
    versions = f"torch{torch.__version__}_ort{onnxruntime.__version__}".replace("+", "-")
    stem = f"profile_cpu_{machine}_{versions}"
    sections, long_frames, ins_all = [], [], []
    reports: dict[str, list[Any]] = {}
    for name in args.spaces:
        profs = cpu[name] + (gpu if name == GPU_SPACE else [])
        if not profs:
            continue
        reports[name] = profs
        long_frames.append(block_long(profs))
        ins = [i for p in profs for i in device_insights(p)]
        if len(profs) > 1:
            ins += cross_device_insights(profs, top=5)
        ins_all.append((name, ins))
        sections.append(
            f"## {name}: mean latency effect per block over its positions (%), per device\n\n"
            + _markdown(block_table(profs), index=True, digits=1)
        )
    text = (
        f"# Block profiles on this CPU ({machine}) and the recorded OFA GPUs\n\n"
        f"CPU: every (layer, block) specification at resolution {args.resolution}, "
        f"{args.samples} networks per specification plus a {4 * args.samples}-network random "
        f"baseline, batch 1, 1 thread, timing cap {args.max_time} s per network, "
        f"{'timed against the space middle network (reference), ' if args.reference else ''}"
        f"one store shared by every run. GPUs (ofa-mbv3 only): HELP OFA table, full space (all resolutions), "
        f"{args.gpu_samples} table rows per specification. Effects come from OLS on one-hot "
        f"(gene, choice) features, centred per gene, in % of the mean latency; negative = the "
        f"device favours the block. {versions}, python {platform.python_version()}.\n\n"
        "## Cost per run\n\n"
        + _markdown(runs)
        + note
        + "\n\n"
        + "\n\n".join(sections)
        + "\n\n## Insights\n\n"
        + "\n\n".join(f"### {n}\n\n{format_insights(i)}" for n, i in ins_all)
        + "\n"
    )
    print(text)
    if args.no_write:
        return 0
    from hsconas.report.profile_report import write_html

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.md").write_text(text, encoding="utf-8")
    pd.concat(long_frames, ignore_index=True).round(3).to_csv(args.out / f"{stem}.csv", index=False)
    runs.to_csv(args.out / f"{stem}_runs.csv", index=False)
    for name, profs in reports.items():
        write_html(
            profs,
            args.out / f"{stem}_{name}_report.html",
            insights=dict(ins_all)[name],
            title=f"{name} block profiles: this CPU (torch, onnxruntime)"
            + (" and the recorded GPUs" if name == GPU_SPACE and gpu else ""),
            heatmap_devices=[p.device for p in cpu[name]]
            + [d for d in ("2080ti_1", "v100_64") if name == GPU_SPACE],
        )
    print(f"wrote {args.out}/{stem}.md, .csv, _runs.csv and the HTML reports")
    return 0


if __name__ == "__main__":
    sys.exit(main())
