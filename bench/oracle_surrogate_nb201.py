"""Benchmark: how far a better accuracy/latency surrogate could take the NB201 Pareto search.

An "oracle-surrogate" search uses the HSCoNAS EA's Pareto acquisition (batches of 4 picked greedily
by the probability of not being dominated, each pick joining the known points as a fantasy, the
true values revealed after each batch) but its predictions come from models fitted on the *whole*
table, out of fold (5-fold): extra-trees on the EA's NB201 cell features for accuracy, the EA's
latency ridge for latency. Each cell's prediction never saw that cell, so what is left is the part
of accuracy and latency that no surrogate of this kind can know (training and measurement noise,
lucky cells). The EA fits its surrogates on the at most 300 cells it has queried; the gap between
the two searches is what a better surrogate could still gain, and the oracle's own shortfall is
what it could not.

Usage:
    python bench/oracle_surrogate_nb201.py              # every device x 3 datasets x 3 seeds
    python bench/oracle_surrogate_nb201.py --devices pixel3 --seeds 1

Writes bench/results/oracle_surrogate_nb201_<machine>_py<version>_numpy<version>.{md,csv}.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from search_nb201 import DATASETS, nb201_evaluator, nb201_tables

QUERIES = (100, 300)
INITIAL, BATCH = 16, 4


def out_of_fold(make_model, X: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
    """Predictions of ``y`` by models fitted on the other four fifths (5-fold)."""
    from sklearn.model_selection import KFold

    pred = np.empty(len(y))
    for train, test in KFold(5, shuffle=True, random_state=seed).split(X):
        pred[test] = make_model().fit(X[train], y[train]).predict(X[test])
    return pred


class _LatencyRidge:
    """The EA's latency model (closed-form ridge, alpha 0.1) with the scikit-learn interface."""

    def __init__(self) -> None:
        from hsconas.search.surrogate import RidgeEnsemble

        self.model = RidgeEnsemble(alpha=0.1, n_members=1)

    def fit(self, X: np.ndarray, y: np.ndarray) -> _LatencyRidge:
        self.model.fit(X, y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict(X).mean


def oracle_search(
    acc_pred: np.ndarray,
    acc_sd: float,
    lat_pred: np.ndarray,
    lat_sd: float,
    accuracy: np.ndarray,
    latency_ms: np.ndarray,
    n_queries: int,
    seed: int,
    lat_features: np.ndarray | None = None,
) -> np.ndarray:
    """Indices of the cells queried, in order: ``INITIAL`` random cells, then batches of
    ``BATCH`` picked among the unqueried cells as the EA's Pareto mode picks them.

    With ``lat_features``, latency is predicted as in the EA instead (``lat_pred`` and
    ``lat_sd`` unused): the EA's ridge refitted on the queried cells before each batch, its
    uncertainty the robust sd of its degrees-of-freedom-inflated residuals (the EA's default
    when the committed tables were made; the EA now takes leave-one-out residuals)."""
    from hsconas.search.acquisition import latency_quantum, non_dominated_batch
    from hsconas.search.surrogate import inflated_residuals, robust_sd

    rng = np.random.default_rng(seed)
    queried = [int(i) for i in rng.choice(len(accuracy), INITIAL, replace=False)]
    sd = np.full(len(accuracy), acc_sd)
    while len(queried) < n_queries:
        if lat_features is not None:
            X, y = lat_features[queried], latency_ms[queried]
            ridge = _LatencyRidge().fit(X, y)
            lat_pred = ridge.predict(lat_features)
            lat_sd = robust_sd(inflated_residuals(ridge.model, X, y))
        pool = np.setdiff1d(np.arange(len(accuracy)), queried)
        picks = non_dominated_batch(
            acc_pred[pool],
            sd[pool],
            lat_pred[pool],
            lat_sd,
            accuracy[queried],
            latency_ms[queried],
            min(BATCH, n_queries - len(queried)),
            lat_quantum=latency_quantum(latency_ms[queried]),
        )
        queried += [int(pool[i]) for i in picks]
    return np.array(queried)


@dataclass(frozen=True)
class OracleModels:
    """One (device, dataset): the table's values and the whole-table out-of-fold predictions."""

    device: str
    dataset: str
    accuracy: np.ndarray  # percent
    acc_pred: np.ndarray  # percent, extra-trees on the EA's cell features
    acc_rms: float  # points, out-of-fold RMS error of acc_pred
    latency_ms: np.ndarray
    lat_pred: np.ndarray  # ms, the EA's latency ridge
    lat_features: np.ndarray  # the ridge's features, for a search that refits it


def oracle_models(devices: list[str], latency_edge_weight: float | None) -> Iterator[OracleModels]:
    """The oracle's models of every dataset x device, dataset by dataset (the accuracy model is
    fitted once per dataset)."""
    from sklearn.ensemble import ExtraTreesRegressor

    from hsconas.search.surrogate import CellFeatureMap, GeneCodec

    for dataset in DATASETS:
        ev0 = nb201_evaluator(devices[0], dataset)
        codec = GeneCodec(ev0.space)
        codes = codec.encode(list(ev0.archs))
        acc_features = CellFeatureMap(codec).transform(codes)
        lat_features = CellFeatureMap(
            codec, one_hot_only=True, derived_weight=0.1, edge_weight=latency_edge_weight
        ).transform(codes)
        accuracy = ev0.accuracy
        acc_pred = out_of_fold(
            lambda: ExtraTreesRegressor(100, max_features=0.5, random_state=0, n_jobs=1),
            acc_features,
            accuracy,
        )
        acc_rms = float(np.sqrt(np.mean((accuracy - acc_pred) ** 2)))
        for device in devices:
            ev = nb201_evaluator(device, dataset)
            if list(ev.archs) != list(ev0.archs):
                raise RuntimeError("latency table rows are not in the accuracy table's order")
            lat_pred = out_of_fold(_LatencyRidge, lat_features, ev.latency_ms)
            yield OracleModels(
                device, dataset, accuracy, acc_pred, acc_rms, ev.latency_ms, lat_pred,
                lat_features,
            )  # fmt: skip
            print(f"{dataset} {device} done", flush=True)


def run(
    devices: list[str],
    seeds: int,
    *,
    in_search_latency: bool = False,
    latency_edge_weight: float | None = None,
) -> list[dict]:
    from hsconas.search.pareto import TrueFront

    rows = []
    for m in oracle_models(devices, latency_edge_weight):
        accuracy, lat = m.accuracy, m.latency_ms
        lat_sd = float(1.4826 * np.median(np.abs(lat - m.lat_pred)))  # the EA's robust sd
        truth = TrueFront.from_table(accuracy, lat)
        for seed in range(seeds):
            t0 = time.perf_counter()
            q = oracle_search(
                m.acc_pred, m.acc_rms, m.lat_pred, lat_sd, accuracy, lat, max(QUERIES), seed,
                m.lat_features if in_search_latency else None,
            )  # fmt: skip
            for n in QUERIES:
                rows.append(
                    {
                        "device": m.device, "dataset": m.dataset, "seed": seed, "queries": n,
                        "front_share": truth.front_share(accuracy[q[:n]], lat[q[:n]]),
                        "hv_ratio": truth.hv_ratio(accuracy[q[:n]], lat[q[:n]]),
                        "accuracy_rms": m.acc_rms, "latency_sd_ms": lat_sd,
                        "time_s": time.perf_counter() - t0,
                    }
                )  # fmt: skip
    return rows


def write(
    rows: list[dict],
    devices: list[str],
    seeds: int,
    wall: float,
    *,
    in_search_latency: bool,
    latency_edge_weight: float | None,
) -> None:
    machine = platform.node() or "machine"
    suffix = "_in-search-latency" if in_search_latency else ""
    if latency_edge_weight is not None:
        suffix += f"_edge-weight-{latency_edge_weight:g}"
    tag = f"{machine}_py{platform.python_version()}_numpy{np.__version__}{suffix}"
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    with open(out / f"oracle_surrogate_nb201_{tag}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = [
        "# NB201 Pareto search with an oracle surrogate (models fitted on the whole table, out "
        "of fold)",
        "",
        "Latency: the EA's ridge refitted on the queried cells before each batch (only accuracy "
        "is the oracle's)."
        if in_search_latency
        else "Accuracy and latency: the oracle's models.",
        ""
        if latency_edge_weight is None
        else f"Latency features: op counts, per-edge columns scaled by {latency_edge_weight:g}.",
        "",
        f"machine `{machine}`, Python {platform.python_version()}, numpy {np.__version__}; wall "
        f"time {wall / 60:.1f} min, one process.",
        f"devices: {', '.join(devices)}; seeds: {seeds}. Front share / HV ratio as in "
        "search_nb201.py.",
        "",
        "| dataset | out-of-fold accuracy RMS (points) | 100 queries | 300 queries | runs with "
        "HV ratio >= 0.995 at 300 |",
        "|---|---|---|---|---|",
    ]
    for dataset in [*DATASETS, "all"]:
        sel = [r for r in rows if dataset in ("all", r["dataset"])]
        cells = []
        for n in QUERIES:
            x = [r for r in sel if r["queries"] == n]
            cells.append(
                f"{np.mean([r['front_share'] for r in x]):.1%} / "
                f"{np.mean([r['hv_ratio'] for r in x]):.4f}"
            )
        at300 = [r for r in sel if r["queries"] == 300]
        rms = f"{sel[0]['accuracy_rms']:.3f}" if dataset != "all" else "-"
        lines.append(
            f"| {dataset} | {rms} | {cells[0]} | {cells[1]} | "
            f"{sum(r['hv_ratio'] >= 0.995 for r in at300)} / {len(at300)} |"
        )
    text = "\n".join(lines) + "\n"
    (out / f"oracle_surrogate_nb201_{tag}.md").write_text(text)
    print(text)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--devices", nargs="*", help="device columns (default: all 21)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument(
        "--in-search-latency",
        action="store_true",
        help="predict latency as the EA does (ridge on the queried cells), accuracy by the oracle: "
        "separates what the latency model and the accuracy model cost",
    )
    ap.add_argument(
        "--latency-edge-weight",
        type=float,
        default=None,
        help="latency features with op-count columns, per-edge columns scaled by this (the EA's "
        "latency_edge_weight); default: per-edge columns only",
    )
    args = ap.parse_args()
    devices = args.devices or list(nb201_tables()[1].devices)
    t0 = time.perf_counter()
    rows = run(
        devices, args.seeds, in_search_latency=args.in_search_latency,
        latency_edge_weight=args.latency_edge_weight,
    )  # fmt: skip
    write(
        rows, devices, args.seeds, time.perf_counter() - t0,
        in_search_latency=args.in_search_latency, latency_edge_weight=args.latency_edge_weight,
    )  # fmt: skip


if __name__ == "__main__":
    main()
