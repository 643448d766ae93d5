"""Benchmark: block profiles of the three OFA-family spaces on this CPU, and the reduced
OFA-MobileNetV3 space against the full one and a random reduction of equal size.

Latency: end-to-end measurements of sampled networks with ONNX Runtime on this CPU (batch 1, one
thread), no lookup table and no model. Accuracy: the ImageNet top-1 predictor (``hsconas accuracy
fit`` on ``ofa_mbv3/imagenet_accuracy_dynast.csv``) for ofa-mbv3, which keeps ofa-mbv3 at
resolution 224 (the table's only resolution); proxylessnas and ofa-resnet50 are profiled for
latency only (no ImageNet accuracy data exists for them here), at ``--resolution``.

Small on purpose (the machine is a shared 2-core one): only the genes of the first layer of
units 1, 3 and 5 (ofa-resnet50: the width and first expand ratio of units 1, 2 and 4) are
profiled, ``--samples`` networks per specification.

Reduction check (ofa-mbv3 only): ``reduce_space`` (front-rate rule) on the profile and
``random_reduction`` of equal size; each space is then searched in constraint mode at the median
predicted latency of 2000 random networks, ``--queries`` queries, ``--seeds`` seeds, with the
ImageNet predictor and a linear latency predictor fitted on the profile's own measurements on
this CPU. Reported: best feasible predicted top-1 and normalised hypervolume (bounds: every run's
points) per space, paired over seeds.

Writes ``bench/results/<machine>/profile_ofa.{md,csv}``; the profiles (profile.json, tables,
insights, heatmaps) go to ``--workdir`` (not committed). From the repository root:
    python -m bench.profile_ofa --samples 2 --queries 100 --seeds 3
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pandas as pd

import hsconas.spaces  # noqa: F401
from bench.common import add_tag_argument, markdown_table, results_stem, software, write_results

ACC_TABLE = "ofa_mbv3/imagenet_accuracy_dynast.csv"
POSITIONS = {
    "ofa-mbv3": [f"u{u}.l1.{g}" for u in (1, 3, 5) for g in ("kernel", "expand")],
    "proxylessnas": [f"u{u}.l1.{g}" for u in (1, 3, 5) for g in ("kernel", "expand")],
    "ofa-resnet50": [f"u{u}.{g}" for u in (1, 2, 4) for g in ("width", "b1.expand")],
}


def _accuracy_model(workdir: Path) -> Path:
    from hsconas.accuracy.accuracy_table import read_accuracy_table
    from hsconas.accuracy.predictor import fit_accuracy_model
    from hsconas.data.tables import data_dir
    from hsconas.space import get_space

    space = get_space("ofa-mbv3")
    archs, acc = read_accuracy_table(data_dir() / ACC_TABLE, space)
    model, _ = fit_accuracy_model(space, archs, acc, meta={"table": ACC_TABLE})
    return Path(model.save(workdir / "ofa_imagenet_acc.json"))


def _profile(name: str, args: argparse.Namespace, acc_path: Path | None) -> tuple[object, dict]:
    from hsconas.evaluation import parse_latency_source
    from hsconas.evaluation.factory import accuracy_model_source
    from hsconas.profiling import enumerate_specs, profile_blocks
    from hsconas.profiling.friendliness import block_friendliness
    from hsconas.profiling.insights import device_insights, format_insights
    from hsconas.space import get_space

    space = get_space(name)
    accuracy = None
    if acc_path is not None:
        accuracy = accuracy_model_source(acc_path, space=name)
        space = space.restrict(accuracy.covered)
    else:
        space = space.at_resolution(args.resolution)
    specs = enumerate_specs(space, positions=POSITIONS[name])
    source = parse_latency_source("backend:onnxruntime", space=name, device="local-cpu")
    t0 = time.time()
    prof = profile_blocks(
        space, specs, source, accuracy=accuracy, samples=args.samples,
        baseline_samples=args.baseline, seed=0,
    )  # fmt: skip
    wall = time.time() - t0
    out = args.workdir / name
    prof.save(out)
    insights = device_insights(prof)
    (out / "insights.txt").write_text(format_insights(insights), encoding="utf-8")
    from hsconas.report.profile_report import write_profile_figures

    write_profile_figures(prof, out)
    bf = block_friendliness(prof).sort_values("rank")
    row = {
        "space": name,
        "resolution": 224 if acc_path is not None else args.resolution,
        "accuracy": "ImageNet predictor" if acc_path is not None else "none (latency only)",
        "specs": len(prof.specs),
        "networks": prof.n_distinct,
        "mean ms": float(prof.draws["latency_ms"].mean()),
        "latency R2": float(prof.regression["latency_ms"].r2),
        "friendliest": f"{bf.iloc[0].block} ({bf.iloc[0].lat_effect_pct:+.1f}%)",
        "least friendly": f"{bf.iloc[-1].block} ({bf.iloc[-1].lat_effect_pct:+.1f}%)",
        "wall min": wall / 60,
    }
    notes = [f"- {name}: {i.text}" for i in insights]
    return prof, {"row": row, "notes": notes}


def _search_compare(prof: object, acc_path: Path, args: argparse.Namespace) -> pd.DataFrame:
    from hsconas.evaluation import CombinedEvaluator, ModelLatency, PredictorAccuracy
    from hsconas.latency.model_io import save_model
    from hsconas.latency.predictors import make_predictor
    from hsconas.profiling.reduce import random_reduction, reduce_space
    from hsconas.search import Problem, make_algorithm, run_search
    from hsconas.search.indicators import normalised_hypervolume
    from hsconas.space import get_space

    full = get_space("ofa-mbv3").restrict({"resolution": [224]})
    draws = prof.draws  # type: ignore[attr-defined]
    archs = [full.from_string(a) for a in draws["arch"]]
    lat_model = make_predictor("linear").fit(archs, draws["latency_ms"].to_numpy(float))
    lat_path = save_model(lat_model, args.workdir / "ofa_cpu_lat.json", space="ofa-mbv3",
                          device="local-cpu")  # fmt: skip
    acc = PredictorAccuracy.from_file(acc_path, space="ofa-mbv3")
    lat = ModelLatency.from_file(lat_path, space="ofa-mbv3")
    red = reduce_space(prof, keep_min=2)
    ctrl = random_reduction(red, seed=1)
    spaces = {"full": full, "reduced": red.apply(full), "random": ctrl.apply(full)}
    budget = float(np.median(lat.model.predict_ms(full.sample_many(2000, 12345))))
    rows, points = [], {}
    for label, sp in spaces.items():
        for seed in range(args.seeds):
            problem = Problem(sp, mode="constraint", budget_ms=budget)
            algo = make_algorithm(args.algorithm, problem, seed=seed)
            res = run_search(problem, algo, CombinedEvaluator(acc, lat), args.queries)
            a = np.array([r.accuracy for r in res.records])
            la = np.array([r.latency_ms for r in res.records])
            points[(label, seed)] = (a, la)
            best = res.best
            rows.append({"space": label, "size": int(sp.size()), "seed": seed,
                         "best": float(best.accuracy) if best else float("nan")})  # fmt: skip
    allA = np.concatenate([p[0] for p in points.values()])
    allL = np.concatenate([p[1] for p in points.values()])
    bounds = (float(allA.min()), float(allA.max()), float(allL.min()), float(allL.max()))
    for r in rows:
        a, la = points[(str(r["space"]), int(r["seed"]))]  # type: ignore[call-overload]
        r["hv"] = normalised_hypervolume(a, la, bounds)
    df = pd.DataFrame(rows)
    df.attrs["budget"] = budget
    df.attrs["reduction"] = f"{red.full_size} -> {red.size} architectures ({red.n_choices} choices)"
    return df


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--samples", type=int, default=2, help="networks per specification")
    ap.add_argument("--baseline", type=int, default=4, help="random baseline networks")
    ap.add_argument("--resolution", type=int, default=160, help="latency-only spaces, pixels")
    ap.add_argument("--spaces", nargs="+", default=list(POSITIONS), choices=list(POSITIONS))
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--algorithm", default="re", help="searcher of the reduction check")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/hsconas_profile_ofa"))
    add_tag_argument(ap)
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    acc_path = _accuracy_model(args.workdir)
    rows, notes, cmp = [], [], None
    for name in args.spaces:
        prof, doc = _profile(name, args, acc_path if name == "ofa-mbv3" else None)
        rows.append(doc["row"])
        notes.extend(doc["notes"])
        print(doc["row"], flush=True)
        if name == "ofa-mbv3" and args.queries > 0:
            cmp = _search_compare(prof, acc_path, args)
    text = (
        "# Block profiles of the OFA family on this CPU (end-to-end ONNX Runtime measurements)\n\n"
        f"ONNX Runtime, batch 1, 1 thread, {args.samples} networks per specification, random "
        f"baseline {args.baseline}; profiled genes: "
        + "; ".join(f"{k}: {', '.join(v)}" for k, v in POSITIONS.items() if k in args.spaces)
        + ". ofa-mbv3 at resolution 224 with the ImageNet predictor's accuracy; the others "
        f"latency only at resolution {args.resolution}. Latency effects are percent of the "
        "mean end-to-end latency.\n\n" + markdown_table(pd.DataFrame(rows)) + "\n\n"
        "Insights:\n\n" + "\n".join(notes) + "\n"
    )
    out_rows = list(rows)
    if cmp is not None:
        summ = cmp.groupby("space", sort=False).agg(
            size=("size", "first"), best_mean=("best", "mean"), best_sd=("best", "std"),
            hv_mean=("hv", "mean"), hv_sd=("hv", "std"),
        ).reset_index()  # fmt: skip
        piv = cmp.pivot(index="seed", columns="space", values="best")
        pair = {
            f"reduced - {o}": float((piv["reduced"] - piv[o]).mean()) for o in ("full", "random")
        }
        wins = {
            f"reduced > {o} (seeds)": f"{int((piv['reduced'] > piv[o]).sum())}/{len(piv)}"
            for o in ("full", "random")
        }
        text += (
            f"\n## Reduced vs full vs random reduction (ofa-mbv3)\n\n"
            f"Reduction (front-rate rule): {cmp.attrs['reduction']}. Search: {args.algorithm}, "
            f"constraint mode at {cmp.attrs['budget']:.2f} ms (median of 2000 random networks "
            f"under a linear latency predictor fitted on this profile's measurements), "
            f"{args.queries} queries, seeds 0..{args.seeds - 1}; accuracy: the ImageNet "
            "predictor. best: predicted top-1 of the best feasible network; hv: normalised "
            "hypervolume over every run's points.\n\n"
            + markdown_table(summ)
            + "\n\nPaired best-accuracy differences: "
            + "; ".join(f"{k} {v:+.3f}" for k, v in pair.items())
            + "; "
            + "; ".join(f"{k} {v}" for k, v in wins.items())
            + "\n"
        )
        out_rows += cmp.to_dict("records")
    text += (
        f"\n{(time.time() - t0) / 60:.1f} min wall; {os.cpu_count()} cores shared with other "
        f"jobs (OMP_NUM_THREADS=1): latencies are measured under load; "
        f"{software('onnxruntime', 'torch', 'numpy', 'scikit-learn')}\n"
    )
    write_results(results_stem("profile_ofa", args.tag), out_rows, text)


if __name__ == "__main__":
    main()
