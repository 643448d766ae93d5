"""Benchmark: does a per-device reduced NB201 space beat the full space? ("reduction beats the full space")

For each device column of the HELP NB201 latency table (GPUs at batch 1 and 256, server/desktop
CPUs, phones) with CIFAR-100 accuracy:

1. profile every (edge, op) specification with ``--samples`` table rows per specification
   (cost = distinct architectures measured);
2. reduce the space for that device (``reduce_space``, default rule ``front-rate``, keep-min 2)
   and draw a random reduction of the same per-edge sizes (a fresh control for every seed);
3. search the full space, the reduced space and the random control with the same query budget and
   algorithm (default: the HSCoNAS EA of ``hsconas.search``), over ``--seeds`` seeds;
4. score every search, at each budget of ``--budgets`` (prefixes of one run: the algorithms do not
   depend on the total budget), against the *full* space's true front: hypervolume ratio
   (objectives normalised by the true front's ideal/nadir, reference point nadir + 1% of the
   range: ``TrueFront.hv_ratio``) and the share of true-front points found
   (``TrueFront.front_share``).

Also reported per device: the ceiling of each space (hypervolume ratio and front share of *all* its
architectures), which shows what a reduction gave up, beside the ceiling of the other rule.

Usage (from the repository root):
    python -m bench.profile_nb201 --samples 50 --min-rate-ratio 0.5
                                    # the headline run: 7 devices, 10 seeds, 100/200/300 queries
    python -m bench.profile_nb201 --quick --seeds 1 --workers 1 --tag trial
                                    # 3 devices, 1 seed: a few minutes
    python -m bench.profile_nb201 --algorithm re --tag re

Writes bench/results/<machine>/profile_nb201.{md,csv} (``profile_nb201_<tag>`` with --tag): the
tables, and one row per search. ``--spaces-dir`` saves the reduced spaces (``<device>.json``),
``--html`` a report of the profiles. Each finished search is logged (``<stem>.partial.jsonl``):
rerunning an interrupted benchmark with the same arguments continues it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from multiprocessing import Pool
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from bench.common import TaskLog, add_tag_argument, results_stem, task_key, write_csv
from bench.search_nb201 import nb201_evaluator, nb201_tables

DEVICES = (
    "titanx_1",
    "titanx_256",
    "gold_6240",
    "silver_4114",
    "pixel3",
    "samsung_a50",
    "essential_ph_1",
)
QUICK = ("titanx_256", "gold_6240", "pixel3")
VARIANTS = ("full", "reduced", "random")
_EVALUATORS: dict[str, object] = {}


def _evaluator(device: str):  # type: ignore[no-untyped-def]
    """CIFAR-100 accuracy x ``device`` latency (built once per process and device)."""
    if device not in _EVALUATORS:
        _EVALUATORS[device] = nb201_evaluator(device, "cifar100")
    return _EVALUATORS[device]


def search_task(task: tuple[str, str, int, dict, str, tuple[int, ...]]) -> list[dict]:
    device, variant, seed, restrict, algo, budgets = task
    from hsconas.search import Problem, make_algorithm, run_search
    from hsconas.search.indicators import TrueFront
    from hsconas.space import get_space

    ev = _evaluator(device)
    truth = TrueFront.from_table(ev.accuracy, ev.latency_ms)  # the FULL space's true front
    space = get_space("nb201")
    if restrict:
        space = space.restrict(restrict)
        ev = ev.restricted_to(space)
    problem = Problem(space)
    t0 = time.perf_counter()
    res = run_search(problem, make_algorithm(algo, problem, seed=seed), ev, max(budgets))
    elapsed = time.perf_counter() - t0
    acc = np.array([r.accuracy for r in res.records])
    lat = np.array([r.latency_ms for r in res.records])
    return [
        {
            "device": device,
            "variant": variant,
            "seed": seed,
            "queries": b,
            "hv_ratio": truth.hv_ratio(acc[:b], lat[:b]),
            "front_share": truth.front_share(acc[:b], lat[:b]),
            "n_queries": min(b, res.n_queries),
            "time_s": elapsed,
        }
        for b in budgets
    ]


def _ceiling(device: str, restrict: dict | None) -> tuple[float, float, int]:
    from hsconas.search.indicators import TrueFront
    from hsconas.space import get_space

    ev = _evaluator(device)
    truth = TrueFront.from_table(ev.accuracy, ev.latency_ms)
    if restrict:
        ev = ev.restricted_to(get_space("nb201").restrict(restrict))
    return (
        truth.hv_ratio(ev.accuracy, ev.latency_ms),
        truth.front_share(ev.accuracy, ev.latency_ms),
        truth.n_points,
    )


def paired_line(rows: list[dict], budget: int, devices: list[str]) -> str:
    """Reduced minus full per (device, seed) at one budget, over the devices with a reduction:
    mean difference, wins and the two-sided Wilcoxon signed-rank p-value (ties dropped)."""
    from scipy.stats import wilcoxon

    def runs(variant: str) -> dict[tuple[str, int], dict]:
        return {
            (r["device"], r["seed"]): r
            for r in rows
            if r["variant"] == variant and r["queries"] == budget and r["device"] in devices
        }

    full, red = runs("full"), runs("reduced")
    keys = sorted(full.keys() & red.keys())
    parts = []
    for metric, label in (("hv_ratio", "HV ratio"), ("front_share", "front share")):
        diff = np.array([red[k][metric] - full[k][metric] for k in keys])
        nz = diff[diff != 0]
        p = float(wilcoxon(nz).pvalue) if len(nz) >= 6 else float("nan")
        parts.append(
            f"{label} {diff.mean():+.4f} (reduced ahead in {int((nz > 0).sum())} of {len(nz)} "
            f"untied runs, Wilcoxon p = {p:.3f})"
        )
    return (
        f"Paired reduced - full over {len(keys)} (device, seed) runs of the {len(devices)} "
        f"reduced devices: {'; '.join(parts)}.\n"
    )


def _versions() -> str:
    import numpy

    return f"py{platform.python_version()}_numpy{numpy.__version__}"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--devices", nargs="+", default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--samples", type=int, default=20, help="profiling samples per specification")
    ap.add_argument(
        "--budgets",
        type=int,
        nargs="+",
        default=[100, 200, 300],
        help="search budgets (distinct queries) scored; one run of the largest per seed",
    )
    ap.add_argument("--algorithm", default="hsconas", choices=("hsconas", "re", "random", "nsga2"))
    ap.add_argument("--rule", default="front-rate", choices=("front-rate", "dominated"))
    ap.add_argument("--keep-min", type=int, default=2)
    ap.add_argument(
        "--min-rate-ratio",
        type=float,
        default=0.35,
        help="front-rate rule: a choice needs this share of its layer's best near-front rate",
    )
    ap.add_argument("--workers", type=int, default=2)
    add_tag_argument(ap)
    ap.add_argument("--spaces-dir", type=Path, help="save the reduced spaces here")
    ap.add_argument("--html", type=Path, help="write an HTML report of the profiles here")
    args = ap.parse_args()
    devices = tuple(args.devices or (QUICK if args.quick else DEVICES))
    seeds = 3 if args.quick and args.seeds == 10 else args.seeds
    budgets = tuple(sorted(set(args.budgets)))
    other_rule = "dominated" if args.rule == "front-rate" else "front-rate"

    from hsconas.evaluation import TableAccuracy, TableLatency
    from hsconas.profiling import enumerate_specs, profile_blocks
    from hsconas.profiling.insights import cross_device_insights, device_insights, format_insights
    from hsconas.profiling.reduce import random_reduction, reduce_space
    from hsconas.report.profile_report import write_html
    from hsconas.space import get_space

    acc_table, lat_table = nb201_tables()
    space = get_space("nb201")
    specs = enumerate_specs(space)
    accuracy = TableAccuracy(acc_table, "cifar100")
    profiles, reductions, others = {}, {}, {}
    for d in devices:
        t0 = time.perf_counter()
        prof = profile_blocks(
            space, specs, TableLatency(lat_table, d), accuracy=accuracy,
            samples=args.samples, seed=0,
        )  # fmt: skip
        red = reduce_space(
            prof, rule=args.rule, keep_min=args.keep_min, min_rate_ratio=args.min_rate_ratio
        )
        if args.spaces_dir:
            red.save(args.spaces_dir / f"{d}.json")
        profiles[d], reductions[d] = prof, red
        others[d] = reduce_space(prof, rule=other_rule, keep_min=args.keep_min)
        print(
            f"{d}: profiled {len(specs)} specs with {prof.n_distinct} distinct networks in "
            f"{time.perf_counter() - t0:.1f} s; space {red.full_size} -> {red.size}",
            flush=True,
        )
    tasks = []
    for d in devices:
        for s in range(seeds):
            tasks.append((d, "full", s, {}, args.algorithm, budgets))
            tasks.append((d, "reduced", s, dict(reductions[d].restrict), args.algorithm, budgets))
            ctrl = random_reduction(reductions[d], seed=1000 + s)
            tasks.append((d, "random", s, dict(ctrl.restrict), args.algorithm, budgets))
    stem = results_stem("profile_nb201", args.tag)
    machine = stem.parent.name
    t0 = time.perf_counter()
    # searches are logged as they finish: rerunning an interrupted benchmark resumes it
    log = TaskLog(
        stem.with_name(stem.name + ".partial.jsonl"), [task_key("search", t) for t in tasks]
    )
    with Pool(args.workers, initializer=nb201_tables) as pool:
        rows = log.run(pool, "search", search_task, tasks)
    print(f"{len(tasks)} searches in {time.perf_counter() - t0:.0f} s", flush=True)

    table = []
    for d in devices:
        prof, red = profiles[d], reductions[d]
        ceil_red = _ceiling(d, dict(red.restrict))
        ceil_other = _ceiling(d, dict(others[d].restrict))
        ceil_rnd = [
            _ceiling(d, dict(random_reduction(red, seed=1000 + s).restrict)) for s in range(seeds)
        ]
        for b in budgets:
            line = {
                "device": d,
                "queries": b,
                "profile_cost": prof.n_distinct,
                "full_size": red.full_size,
                "reduced_size": red.size,
                "other_rule_size": others[d].size,
                "true_front": ceil_red[2],
                "ceiling_hv_reduced": ceil_red[0],
                "ceiling_share_reduced": ceil_red[1],
                "ceiling_share_other_rule": ceil_other[1],
                "ceiling_hv_random": float(np.mean([c[0] for c in ceil_rnd])),
                "ceiling_share_random": float(np.mean([c[1] for c in ceil_rnd])),
            }
            for v in VARIANTS:
                sel = [
                    r for r in rows if r["device"] == d and r["variant"] == v and r["queries"] == b
                ]
                hv = np.array([r["hv_ratio"] for r in sel])
                fs = np.array([r["front_share"] for r in sel])
                line[f"hv_{v}"] = float(hv.mean())
                line[f"hv_{v}_sd"] = float(hv.std(ddof=1)) if len(hv) > 1 else 0.0
                line[f"share_{v}"] = float(fs.mean())
                line[f"share_{v}_sd"] = float(fs.std(ddof=1)) if len(fs) > 1 else 0.0
            line["wins_hv"] = line["hv_reduced"] > max(line["hv_full"], line["hv_random"])
            line["wins_share"] = line["share_reduced"] > max(
                line["share_full"], line["share_random"]
            )
            table.append(line)

    header = (
        f"# Block profiling on NB201: reduced vs full vs random reduction\n\n"
        f"CIFAR-100 accuracy x HELP device latency; profiling {args.samples} table rows per "
        f"(edge, op) specification ({len(specs)} specifications) plus a 4x random baseline; "
        f"reduction rule `{args.rule}` (min rate ratio {args.min_rate_ratio}), keep-min {args.keep_min}; search `{args.algorithm}` "
        f"({'HSCoNAS EA' if args.algorithm == 'hsconas' else args.algorithm}), {seeds} seeds "
        f"(random control redrawn per seed), scored at {', '.join(map(str, budgets))} distinct "
        f"queries. HV ratio and front share against the FULL space's true front (mean over "
        f"seeds, sd in brackets). Ceiling = all architectures of the space; the `{other_rule}` "
        f"rule's reduction of the same profile is shown for comparison. Machine {machine}, "
        f"{_versions()}.\n\n"
    )
    space_cols = (
        "| device | profile cost (distinct nets) | size full -> reduced | true front pts | "
        f"ceiling HV reduced / random | ceiling share reduced / random | `{other_rule}` rule: "
        "size / ceiling share |\n|---|---|---|---|---|---|---|\n"
    )
    body = ""
    for t in table:
        if t["queries"] != budgets[0]:
            continue
        body += (
            f"| {t['device']} | {t['profile_cost']} | {t['full_size']} -> {t['reduced_size']} | "
            f"{t['true_front']} | {t['ceiling_hv_reduced']:.4f} / {t['ceiling_hv_random']:.4f} | "
            f"{t['ceiling_share_reduced']:.2f} / {t['ceiling_share_random']:.2f} | "
            f"{t['other_rule_size']} / {t['ceiling_share_other_rule']:.2f} |\n"
        )
    text = header + "## Spaces\n\n" + space_cols + body
    for b in budgets:
        part = [t for t in table if t["queries"] == b]
        text += (
            f"\n## {b} queries\n\n"
            "| device | HV full | HV reduced | HV random | share full | share reduced | "
            "share random | reduced wins HV / share |\n|---|---|---|---|---|---|---|---|\n"
        )
        for t in part:
            text += (
                f"| {t['device']} | {t['hv_full']:.4f} ({t['hv_full_sd']:.4f}) | "
                f"{t['hv_reduced']:.4f} ({t['hv_reduced_sd']:.4f}) | "
                f"{t['hv_random']:.4f} ({t['hv_random_sd']:.4f}) | "
                f"{t['share_full']:.3f} ({t['share_full_sd']:.3f}) | "
                f"{t['share_reduced']:.3f} ({t['share_reduced_sd']:.3f}) | "
                f"{t['share_random']:.3f} ({t['share_random_sd']:.3f}) | "
                f"{'yes' if t['wins_hv'] else 'no'} / {'yes' if t['wins_share'] else 'no'} |\n"
            )
        mean = {k: np.mean([t[k] for t in part]) for k in ("hv_full", "hv_reduced", "hv_random")}
        share = {
            k: np.mean([t[k] for t in part])
            for k in ("share_full", "share_reduced", "share_random")
        }
        text += (
            f"| mean | {mean['hv_full']:.4f} | {mean['hv_reduced']:.4f} | "
            f"{mean['hv_random']:.4f} | {share['share_full']:.3f} | "
            f"{share['share_reduced']:.3f} | {share['share_random']:.3f} | |\n"
            f"\nReduced beats both full and random control on HV ratio on "
            f"{sum(t['wins_hv'] for t in part)}/{len(part)} devices, on front share on "
            f"{sum(t['wins_share'] for t in part)}/{len(part)}.\n"
        )
        text += paired_line(
            rows, b, [d for d in devices if reductions[d].size < reductions[d].full_size]
        )
    ins = [i for d in devices for i in device_insights(profiles[d])] + cross_device_insights(
        [profiles[d] for d in devices]
    )
    dropped = "\n## Dropped choices per device\n\n" + "".join(
        f"- {d}: "
        + (
            "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in reductions[d].dropped.items())
            or "nothing"
        )
        + "\n"
        for d in devices
    )
    text += dropped + "\n## Insights\n\n" + format_insights(ins)
    print(text)
    stem.with_suffix(".md").write_text(text, encoding="utf-8")
    write_csv(stem.with_suffix(".csv"), rows)
    if args.html:
        write_html(
            [profiles[d] for d in devices],
            args.html,
            title="NB201 block profiles (CIFAR-100, HELP latency)",
        )
    log.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
