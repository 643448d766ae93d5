"""Benchmark: constrained search on OFA-MobileNetV3 with the ImageNet accuracy predictor.

Accuracy: the ImageNet top-1 predictor of ``hsconas accuracy fit`` fitted on
``ofa_mbv3/imagenet_accuracy_dynast.csv`` (resolution 224 only, so the searched space is
``ofa-mbv3`` restricted to resolution 224; the search never leaves the resolution the data covers).
Latency: a learned predictor (``hsconas latency fit-table``, ``--latency-model``, default linear)
fitted on 1000 rows of one recorded GPU column of ``ofa_mbv3/latency_help_gpu.csv.gz`` (default
``v100_64``). Both are predictions: every number below is *predicted* accuracy under *predicted*
latency; nothing is trained or timed here.

Constraint mode at three budgets (the 25th, 50th and 75th percentile of the predicted latency of
2000 random members of the space), ``--queries`` distinct architectures per run, ``--seeds`` seeds;
algorithms: the HSCoNAS EA with channel scaling and space shrinking (``hsconas``), without
channel scaling (``hsconas-noscale``), without shrinking (``hsconas-noshrink``; the same channel
scaling as ``hsconas``), random search, regularised evolution
pymoo's NSGA-II and Optuna's NSGA-II and TPE samplers. Reported: the predicted accuracy of the best feasible network each run found,
its mean over seeds, and HSCoNAS paired with each other method on the same (budget, seed): mean
difference and wins / ties / losses (tie: within 0.005 points).

Writes ``bench/results/<machine>/search_ofa.{md,csv}`` (``search_ofa_<tag>`` with ``--tag``); runs
are logged to ``.partial.jsonl`` as they finish, so an interrupted grid resumes. From the repository
root:
    python -m bench.search_ofa                                  # 3 budgets x 5 seeds x 8 methods
    python -m bench.search_ofa --seeds 3 --workers 4 --ablation-percentiles 50  # the headline
    python -m bench.search_ofa --seeds 1 --queries 60 --tag trial      # a few minutes
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pandas as pd

import hsconas.spaces  # noqa: F401
from bench.common import (
    TaskLog,
    add_tag_argument,
    markdown_table,
    results_stem,
    software,
    task_key,
    write_results,
)

ALGORITHMS = (
    "hsconas",
    "hsconas-noscale",
    "hsconas-noshrink",
    "random",
    "re",
    "nsga2",
    "optuna-nsga2",
    "optuna-tpe",
)
PERCENTILES = (25, 50, 75)
ABLATIONS = ("hsconas-noscale", "hsconas-noshrink")
ACC_TABLE = "ofa_mbv3/imagenet_accuracy_dynast.csv"
LAT_TABLE = "ofa_mbv3/latency_help_gpu.csv.gz"

_STATE: dict[str, Any] = {}


def _init(acc_path: str, lat_path: str) -> None:
    """Worker set-up: load both models once per process."""
    from hsconas.evaluation import ModelLatency, PredictorAccuracy

    _STATE["acc"] = PredictorAccuracy.from_file(acc_path, space="ofa-mbv3")
    _STATE["lat"] = ModelLatency.from_file(lat_path, space="ofa-mbv3")


def _space():  # type: ignore[no-untyped-def]
    from hsconas.space import get_space

    return get_space("ofa-mbv3").restrict({"resolution": [224]})


def run_one(task: tuple) -> list[dict]:
    """One search: (algorithm, budget_ms, percentile, seed, queries) -> one result row."""
    algorithm, budget, pct, seed, queries = task
    from hsconas.evaluation import CombinedEvaluator
    from hsconas.search import Problem, make_algorithm, run_search

    space = _space()
    problem = Problem(space, mode="constraint", budget_ms=float(budget))
    options: dict[str, Any] = {}
    name = algorithm
    if algorithm.startswith("hsconas"):
        name = "hsconas"
        options["channel_scaling"] = algorithm != "hsconas-noscale"
        options["shrinking"] = algorithm != "hsconas-noshrink"
    algo = make_algorithm(name, problem, seed=seed, **options)
    ev = CombinedEvaluator(_STATE["acc"], _STATE["lat"])
    t0 = time.time()
    res = run_search(problem, algo, ev, queries)
    best = res.best
    info = algo.info() if hasattr(algo, "info") else {}
    return [
        {
            "algorithm": algorithm,
            "percentile": pct,
            "budget_ms": float(budget),
            "seed": seed,
            "queries": res.n_queries,
            "best_accuracy": float(best.accuracy) if best else float("nan"),
            "best_latency_ms": float(best.latency_ms) if best else float("nan"),
            "best_arch": best.key if best else "",
            "scaled_picks": int(info.get("channel_scaled_picks", 0)),
            "n_dropped": int(sum(s.get("n_dropped", 0) for s in info.get("stages", []))),
            "final_space_log10": math.log10(max(space_size(algo), 1)),
            "stages": json.dumps(info.get("stages", []), default=str),
            "time_s": time.time() - t0,
        }
    ]


def space_size(algo: object) -> int:
    """Members of the space the algorithm searched when it stopped (shrunk for HSCoNAS)."""
    space = getattr(algo, "current_space", None) or getattr(algo, "space", None)
    return int(space.size()) if space is not None else 0


def _fit_models(workdir: Path, device: str, model: str) -> tuple[Path, Path, dict]:
    from hsconas.accuracy.accuracy_table import read_accuracy_table
    from hsconas.accuracy.predictor import fit_accuracy_model
    from hsconas.data.tables import data_dir, load_latency_table
    from hsconas.latency.metrics import evaluate
    from hsconas.latency.model_io import save_model
    from hsconas.latency.predictors import make_predictor
    from hsconas.space import get_space

    space = get_space("ofa-mbv3")
    archs, acc = read_accuracy_table(data_dir() / ACC_TABLE, space)
    acc_model, rows = fit_accuracy_model(space, archs, acc, meta={"table": ACC_TABLE})
    acc_path = acc_model.save(workdir / "ofa_imagenet_acc.json")
    table = load_latency_table(data_dir() / LAT_TABLE, space="ofa-mbv3")
    y = table.column(device)
    perm = np.random.default_rng(0).permutation(len(y))
    train, test = perm[:1000], perm[1000:]
    lat = make_predictor(model).fit([table.archs[i] for i in train], y[train])
    m = evaluate(lat.predict([table.archs[i] for i in test]), y[test])
    lat_path = save_model(lat, workdir / f"ofa_{device}.json", space="ofa-mbv3", device=device)
    facts = {
        "acc_kind": acc_model.kind,
        "acc_cv": {r.kind: (r.kendall, r.rmse) for r in rows},
        "lat_spearman": m.spearman,
        "lat_mape": m.mape_pct,
    }
    return acc_path, lat_path, facts


def _budgets(lat_path: Path) -> list[tuple[int, float]]:
    from hsconas.evaluation import ModelLatency

    lat = ModelLatency.from_file(lat_path, space="ofa-mbv3")
    sample = _space().sample_many(2000, 12345)
    ms = lat.model.predict_ms(sample)
    return [(p, round(float(np.percentile(ms, p)), 3)) for p in PERCENTILES]


def grid_tasks(
    budgets: list[tuple[int, float]],
    seeds: int,
    algorithms: list[str],
    queries: int,
    ablation_percentiles: list[int] | None = None,
) -> list[tuple]:
    """Runs of the grid, budget by budget, seed by seed: (algorithm, budget ms, percentile,
    seed, queries); the ablations only at ``ablation_percentiles`` when given."""
    return [
        (alg, b, p, seed, queries)
        for p, b in budgets
        for seed in range(seeds)
        for alg in algorithms
        if alg not in ABLATIONS or ablation_percentiles is None or p in ablation_percentiles
    ]


def _paired(df: pd.DataFrame, algorithms: list[str]) -> pd.DataFrame:
    out = []
    ref = df[df.algorithm == "hsconas"].set_index(["percentile", "seed"])["best_accuracy"]
    for pct in sorted(df.percentile.unique()):
        for alg in algorithms:
            cur = df[(df.algorithm == alg) & (df.percentile == pct)]
            if cur.empty:  # an ablation not run at this budget
                continue
            row = {
                "budget": f"p{pct} ({cur.budget_ms.iloc[0]:.2f} ms)" if len(cur) else f"p{pct}",
                "algorithm": alg,
                "best acc mean": float(cur.best_accuracy.mean()),
                "sd": float(cur.best_accuracy.std(ddof=1)) if len(cur) > 1 else float("nan"),
                "n": len(cur),
            }
            if alg != "hsconas" and "hsconas" in algorithms:
                other = cur.set_index(["percentile", "seed"])["best_accuracy"]
                both = ref.to_frame("h").join(other.to_frame("o"), how="inner")
                d = both.h - both.o
                row["hsconas - it"] = float(d.mean()) if len(d) else float("nan")
                row["W/T/L"] = f"{int((d > 0.005).sum())}/{int((d.abs() <= 0.005).sum())}/" + str(
                    int((d < -0.005).sum())
                )
            else:
                row["hsconas - it"] = float("nan")
                row["W/T/L"] = "-"
            if "n_dropped" in cur:
                row["choices dropped"] = float(cur.n_dropped.mean())
                row["log10 final space"] = float(cur.final_space_log10.mean())
            row["time s/run"] = float(cur.time_s.mean())
            out.append(row)
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--device", default="v100_64", help="GPU column of the latency table")
    ap.add_argument("--latency-model", default="linear", help="latency predictor kind")
    ap.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=ALGORITHMS)
    ap.add_argument("--percentiles", nargs="+", type=int, default=list(PERCENTILES))
    ap.add_argument(
        "--ablation-percentiles",
        nargs="+",
        type=int,
        default=None,
        help="run hsconas-noscale and hsconas-noshrink only at these budgets (default: all)",
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--tables-only",
        action="store_true",
        help="run nothing: write the tables from the runs already finished in the log",
    )
    add_tag_argument(ap)
    args = ap.parse_args()
    t0 = time.time()
    missing: list[tuple] = []
    stem = results_stem("search_ofa", args.tag)
    with tempfile.TemporaryDirectory() as tmp:
        acc_path, lat_path, facts = _fit_models(Path(tmp), args.device, args.latency_model)
        budgets = [(p, b) for p, b in _budgets(lat_path) if p in args.percentiles]
        print(f"budgets: {budgets}; models: {facts}", flush=True)
        tasks = grid_tasks(
            budgets, args.seeds, args.algorithms, args.queries, args.ablation_percentiles
        )
        log = TaskLog(stem.with_suffix(".partial.jsonl"), [task_key("run", t) for t in tasks])
        if args.tables_only:
            rows = [r for _, out in log.finished("run", tasks) for r in out]
            done = {tuple(t) for t, _ in log.finished("run", tasks)}
            missing = [t for t in tasks if tuple(t) not in done]
            print(f"tables from {len(rows)} finished runs; {len(missing)} not run", flush=True)
        else:
            with Pool(
                args.workers, initializer=_init, initargs=(str(acc_path), str(lat_path))
            ) as pool:
                rows = log.run(pool, "run", run_one, tasks)
    df = pd.DataFrame(rows)
    table = _paired(df, [a for a in ALGORITHMS if a in args.algorithms])
    elapsed = time.time() - t0
    cv = facts["acc_cv"]
    text = (
        f"# Constrained search on OFA-MBv3 (predicted ImageNet top-1 under predicted latency)\n\n"
        f"Space: ofa-mbv3 at resolution 224 (the accuracy data's only resolution). Accuracy: "
        f"{facts['acc_kind']} predictor fitted on {ACC_TABLE} (10-fold CV tau "
        f"{cv[facts['acc_kind']][0]:.3f}, RMSE {cv[facts['acc_kind']][1]:.3f} points; MACs alone "
        f"tau {cv['macs'][0]:.3f}). Latency: {args.latency_model} predictor of {args.device} "
        f"fitted on 1000 rows of {LAT_TABLE} (held-out Spearman {facts['lat_spearman']:.4f}, "
        f"MAPE {facts['lat_mape']:.2f}%). Constraint mode, {args.queries} queries, seeds "
        f"0..{args.seeds - 1}; budgets at percentiles {args.percentiles} of 2000 random members' "
        f"predicted latency. best acc: predicted top-1 (%) of the best feasible network found; "
        f"hsconas - it: paired mean difference over seeds; W/T/L: HSCoNAS wins/ties (0.005)/"
        f"losses.\n\n"
        + markdown_table(table)
        + (
            "\n\nTables rebuilt from the finished runs of the log (--tables-only); "
            if args.tables_only
            else f"\n\n{elapsed / 60:.1f} min wall; "
        )
        + f"{os.cpu_count()} cores, {args.workers} workers "
        f"(shared machine, OMP_NUM_THREADS=1); "
        f"{software('numpy', 'scikit-learn', 'pymoo', 'optuna')}\n"
    )
    if args.tables_only and missing:
        text += (
            "\nNot finished (left out of the table): "
            + "; ".join(f"{t[0]} p{t[2]} seed {t[3]}" for t in missing)
            + "\n"
        )
    write_results(stem, rows, text)
    if not args.tables_only:
        log.remove()


if __name__ == "__main__":
    main()
