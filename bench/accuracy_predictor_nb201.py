"""Benchmark: do a few evaluated networks plus zero-cost proxies beat the proxies alone?

On the 300 NAS-Bench-201 cells of ``bench.accuracy_nb201`` (distinct ``unique_str``, draw seed 0),
whose proxy values on CIFAR-10 images are cached in that benchmark's results store, accuracy
predictors (:mod:`hsconas.accuracy.predictor`) are fitted on ``n`` = 20, 50, 100 labelled cells
(labels: the published 200-epoch CIFAR-10 test accuracy), drawn at random ``--repeats`` times, and
scored by Kendall tau (and Spearman rho, RMSE) on the other cells of the 300. Inputs compared:

* ``features``: the space's features (one-hot of the 6 edges x 5 ops) plus log MACs and log params,
  as ``hsconas accuracy fit`` without ``--proxies``;
* ``features+proxies``: the same plus naswot, log synflow and jacov (``--proxies
  naswot,synflow,jacov``);
* ``proxies``: log MACs, log params and the three proxies only (a learned weighting of the
  proxies), each with the ridge, the trees and their mean;

beside the label-free estimates scored on the same held-out cells: the default ``ensemble``
(:data:`~hsconas.accuracy.zero_cost.ENSEMBLE_MEMBERS`), the ensemble of all four cheap proxies,
and MACs; and beside the HSCoNAS EA's own accuracy surrogate
(:class:`~hsconas.search.surrogate.search_models.SearchSurrogates`, extra-trees + GP on the gene
features, as refitted during a search) fitted on the same labelled cells, and fitted on their
``proxy:ensemble`` score (how well the search's surrogate learns the label-free source it is
refitted on). Every model kind is fitted with its fixed settings (no selection by inner
cross-validation). snip and grad_norm are left out: the store holds them for 80 cells only.

Nothing is recomputed: the script reads the store (``--store``, default
``~/.cache/hsconas/accuracy_nb201.db``) and stops if a value is missing (run
``python -m bench.accuracy_nb201 --archs 300`` first). Writes
``bench/results/<machine>/accuracy_predictor_nb201.{md,csv}`` (the csv: one row per fit). From
the repository root:

    OMP_NUM_THREADS=1 python -m bench.accuracy_predictor_nb201          # a few CPU minutes
    python -m bench.accuracy_predictor_nb201 --repeats 2 --tag trial
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
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
from hsconas.accuracy.predictor import AccuracyFeatures, AccuracyPredictor
from hsconas.accuracy.predictor_models import fit_kind, predict_kind
from hsconas.accuracy.zero_cost import ENSEMBLE_MEMBERS, ProxyConfig, combine
from hsconas.search.surrogate.search_models import SearchSurrogates
from hsconas.space import get_space
from hsconas.space.codec import GeneCodec
from hsconas.store import ResultStore

PROXY_INPUTS = ("naswot", "synflow", "jacov")
CHEAP = ("naswot", "synflow", "jacov", "params")
KINDS = ("ridge", "gbdt", "ridge+gbdt")


def stored_values(
    store: ResultStore, space: str, config: ProxyConfig, keys: list[str], methods: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Proxy values of ``keys`` read from the store (never computed); exits if one is missing."""
    out = {}
    for m in methods:
        got = {
            r.key: r.extra.get("value")
            for r in store.measurements(
                space=space, kind="proxy", device=m, backend="zero-cost", settings=config.settings()
            )
        }
        missing = [k for k in keys if k not in got]
        if missing:
            sys.exit(
                f"{len(missing)} of {len(keys)} cells have no stored {m} value in the store; run "
                "`python -m bench.accuracy_nb201 --archs 300` first"
            )
        out[m] = np.array([np.nan if got[k] is None else float(got[k] or 0.0) for k in keys])
    return out


def _scores(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    ok = np.isfinite(pred)
    return {
        "tau": float(kendalltau(pred[ok], y[ok]).statistic),
        "rho": float(spearmanr(pred[ok], y[ok]).statistic),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=300, help="cells of bench.accuracy_nb201's draw")
    ap.add_argument("--sizes", default="20,50,100", help="labelled cells, comma-separated")
    ap.add_argument("--repeats", type=int, default=10, help="random labelled draws per size")
    ap.add_argument("--store", type=Path, default=None, help="the proxy values' results store")
    add_tag_argument(ap)
    args = ap.parse_args()
    t0, cpu0 = time.perf_counter(), time.process_time()

    # the cells of bench.accuracy_nb201 (same table, same draw)
    pick = nb201_proxy_cells(args.archs)
    space = get_space("nb201")
    archs = [space.from_string(s) for s in pick["arch_str"]]
    keys = [space.to_string(a) for a in archs]
    acc = pick["cifar10_test_acc_200ep"].to_numpy(dtype=np.float64)
    spec, store_path = nb201_proxy_store(args.store)
    config = ProxyConfig(data=spec)
    store = ResultStore(store_path)
    values = stored_values(store, space.name, config, keys, tuple(dict.fromkeys(CHEAP)))

    # label-free estimates over the 300 cells (each scored on the held-out cells of a draw)
    label_free = {
        f"ensemble (default: {'+'.join(ENSEMBLE_MEMBERS)})": combine(
            {m: values[m] for m in ENSEMBLE_MEMBERS}
        ),
        f"ensemble ({'+'.join(CHEAP)})": combine({m: values[m] for m in CHEAP}),
    }
    plain = AccuracyFeatures(space)
    label_free["macs"] = plain.transform(archs)[:, -2]  # counts each cell once (builds it)

    inputs = {m: values[m] for m in PROXY_INPUTS}
    sets = {
        "features": plain,
        "features+proxies": AccuracyFeatures(space, proxies=PROXY_INPUTS),
    }
    sets["features+proxies"]._costs = plain._costs  # the counted MACs and params, shared
    rows: list[dict[str, object]] = []
    surrogate_rows: list[dict[str, object]] = []
    codec = GeneCodec(space)
    codes = codec.encode(archs)
    ens_score = next(iter(label_free.values()))
    for n in (int(s) for s in args.sizes.split(",")):
        for rep in range(args.repeats):
            draw = np.random.default_rng(1000 + rep).permutation(len(archs))
            tr, te = np.sort(draw[:n]), np.sort(draw[n:])
            base = {"n_labelled": n, "repeat": rep, "n_test": len(te)}
            for label, score in label_free.items():
                rows.append({**base, "inputs": "none (label-free)", "model": label,
                             **_scores(score[te], acc[te]), "rmse": np.nan})  # fmt: skip
            for set_name, feats in [*sets.items(), ("proxies", None)]:
                if feats is None:  # the proxies alone: columns of features+proxies
                    fp = sets["features+proxies"]
                    cols = [fp.names.index(c) for c in fp.names if c.startswith("proxy:")]
                    cols += [len(fp.names) - 2, len(fp.names) - 1]
                    f_use = fp
                else:
                    cols, f_use = None, feats
                tr_archs = [archs[i] for i in tr]
                tr_inputs = {m: inputs[m][tr] for m in f_use.inputs}
                f_use.fit_reference(tr_archs, tr_inputs)  # positions among the labelled cells
                X_tr = f_use.transform(tr_archs, tr_inputs)
                X_te_archs = [archs[i] for i in te]
                te_inputs = {m: inputs[m][te] for m in f_use.inputs}
                for kind in KINDS:
                    if cols is None:
                        comp = fit_kind(kind, X_tr, acc[tr], rep)
                        model = AccuracyPredictor(
                            space.name, kind, comp, cv_rmse=0.0, features=f_use
                        )
                        pred, sd = model.predict(X_te_archs, te_inputs)
                    else:
                        comp = fit_kind(kind, X_tr[:, cols], acc[tr], rep)
                        X_te = f_use.transform(X_te_archs, te_inputs)[:, cols]
                        pred, sd = predict_kind(comp, X_te)
                    rmse = float(np.sqrt(np.mean((pred - acc[te]) ** 2)))
                    rows.append({**base, "inputs": set_name, "model": kind,
                                 **_scores(pred, acc[te]), "rmse": rmse,
                                 "mean_spread": float(np.mean(sd))})  # fmt: skip
            # the HSCoNAS EA's own accuracy surrogate (gene features), refitted on the queried
            # cells: on the labels (a table or trained networks as the accuracy source) and on
            # the proxy:ensemble score (the label-free source), each scored on its own target
            for target, y in (("labels", acc), ("ensemble score", ens_score)):
                surrogate = SearchSurrogates(space, codec, model="trees+gp")
                pred, _, _ = surrogate.predict(codes[te], codes[tr], y[tr], np.ones(n), rep)
                r = {**base, "inputs": "genes (the EA's surrogate)", "model": "trees+gp",
                     "target": target, **_scores(pred, y[te])}  # fmt: skip
                (rows if target == "labels" else surrogate_rows).append(r)
        print(f"n={n} done, {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    df = pd.DataFrame(rows)
    sdf = pd.DataFrame(surrogate_rows)
    surrogate_summary = [
        {
            "n queried": n,
            "tau vs the ensemble score": f"{g['tau'].mean():.3f} ± {g['tau'].std(ddof=1):.3f}",
        }
        for n, g in sdf.groupby("n_labelled")
    ]
    summary = []
    for (inp, model), g in df.groupby(["inputs", "model"], sort=False):
        s: dict[str, object] = {"inputs": inp, "model": model}
        for n, gn in g.groupby("n_labelled"):
            s[f"tau n={n}"] = f"{gn['tau'].mean():.3f} ± {gn['tau'].std(ddof=1):.3f}"
        for n, gn in g.groupby("n_labelled"):
            if gn["rmse"].notna().any():
                s[f"rmse n={n}"] = round(float(gn["rmse"].mean()), 2)
        summary.append(s)
    # paired comparison of the best labelled model with the default ensemble per draw
    ens_label = next(iter(label_free))
    pairs = []
    for n, gn in df.groupby("n_labelled"):
        ens = gn[gn["model"] == ens_label].set_index("repeat")["tau"]
        compared = [(i, k) for i in ("features", "features+proxies", "proxies") for k in KINDS]
        for inp, kind in [*compared, ("genes (the EA's surrogate)", "trees+gp")]:
            t = gn[(gn["inputs"] == inp) & (gn["model"] == kind)].set_index("repeat")["tau"]
            d = (t - ens).dropna()
            pairs.append(
                {
                    "n_labelled": n,
                    "inputs": inp,
                    "model": kind,
                    "mean tau - ensemble": round(float(d.mean()), 4),
                    "draws ahead": f"{int((d > 0).sum())}/{len(d)}",
                }
            )
    cpu_min = (time.process_time() - cpu0) / 60
    load = os.getloadavg()
    text = "\n".join(
        [
            "# Accuracy predictors with proxy inputs on NAS-Bench-201 / CIFAR-10",
            "",
            f"{len(archs)} cells of bench.accuracy_nb201 (distinct unique_str, draw seed 0); "
            f"proxies from its store (1 minibatch of 64 CIFAR-10 training images, seed 0; 0 "
            f"values computed here). Labels: published 200-epoch CIFAR-10 test accuracy. For "
            f"each n, {args.repeats} random labelled draws; Kendall tau (mean ± sd over draws) "
            "and RMSE (accuracy points) on the remaining cells. `features`: one-hot edges + log "
            f"MACs + log params; `features+proxies`: plus {', '.join(PROXY_INPUTS)}; `proxies`: "
            "log MACs, log params and those proxies only. Label-free rows are scored on the "
            "same held-out cells.",
            "",
            markdown_table(pd.DataFrame(summary)),
            "",
            "Paired by draw against the default label-free ensemble "
            f"({'+'.join(ENSEMBLE_MEMBERS)}): mean difference of Kendall tau and the draws where "
            "the predictor is ahead.",
            "",
            markdown_table(pd.DataFrame(pairs)),
            "",
            "The HSCoNAS EA's accuracy surrogate (extra-trees + GP on the gene features, "
            "refitted on the queried cells) learning the label-free proxy:ensemble score: Kendall "
            "tau of its prediction against the score itself on the other cells. Much of the "
            "score (jacov of a random initialisation on one minibatch) is not a function of the "
            "genes, which caps this; feeding the surrogate proxy values as features would need "
            "them for every candidate it scores (the whole space on NB201).",
            "",
            markdown_table(pd.DataFrame(surrogate_summary)),
            "",
            f"CPU {cpu_min:.1f} min, wall {(time.perf_counter() - t0) / 60:.1f} min; load "
            f"average {load[0]:.2f} at the end on {os.cpu_count()} shared CPUs; "
            + software("numpy", "scipy", "scikit-learn"),
        ]
    )
    write_results(results_stem("accuracy_predictor_nb201", args.tag), rows, text)


if __name__ == "__main__":
    main()
