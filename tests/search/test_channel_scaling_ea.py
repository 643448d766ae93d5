"""Dynamic channel scaling as an operator of the HSCoNAS EA (:class:`CodeScaler`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

import hsconas.spaces  # noqa: F401
from hsconas.search import Problem, make_algorithm, run_search
from hsconas.search.channel_scaling import CodeScaler, channel_genes
from hsconas.space import Architecture, get_space
from hsconas.space.codec import GeneCodec

SPACE = get_space("ofa-mbv3").restrict({"resolution": [224]})
RNG = np.random.default_rng(3)
COST = RNG.uniform(0.2, 1.0, 20)  # ms per unit expand ratio of each layer slot
GAIN = RNG.uniform(0.0, 0.3, 20)  # accuracy points per unit expand ratio of each slot


def _truth(arch: Architecture) -> tuple[float, float]:
    """An additive latency (ms) and accuracy (%) over the active expand ratios."""
    layers = SPACE.layers(arch)
    lat, acc = 2.0, 70.0
    for u, unit in enumerate(layers):
        for j, (_, expand) in enumerate(unit):
            lat += COST[4 * u + j] * float(expand)
            acc += GAIN[4 * u + j] * float(expand)
    return lat, acc


class _Evaluator:
    settings: Mapping[str, Any] = {"kind": "additive truth"}

    def evaluate(self, arch: Architecture) -> dict[str, float]:
        lat, acc = _truth(arch)
        return {"accuracy": acc, "latency_ms": lat}


def test_channel_genes_of_the_spaces() -> None:
    assert len(channel_genes(get_space("ofa-mbv3"))) == 20  # the expand ratios
    assert all(g.endswith(".expand") for g in channel_genes(get_space("proxylessnas")))
    res = channel_genes(get_space("ofa-resnet50"))
    assert "stem.w0" in res and "u1.width" in res and "u1.b1.expand" in res
    assert channel_genes(get_space("nb201")) == []


def test_scaler_meets_the_budget_from_below_moving_only_active_expand_genes() -> None:
    codec = GeneCodec(SPACE)
    hist = SPACE.sample_many(200, 0)
    truth = np.array([_truth(a) for a in hist])
    scaler = CodeScaler(SPACE, codec, alpha=1e-3).fit(codec.encode(hist), truth[:, 0], truth[:, 1])
    scaler.set_allowed(codec.allowed_mask(SPACE))
    starts = SPACE.sample_many(60, 1)
    budget = float(np.median([_truth(a)[0] for a in starts]))
    codes = codec.encode(starts)
    out = scaler.scale(codes, budget)
    expand = [i for i, g in enumerate(SPACE.gene_names) if g.endswith(".expand")]
    other = [i for i in range(codes.shape[1]) if i not in expand]
    np.testing.assert_array_equal(out[:, other], codes[:, other])  # depths and kernels kept
    scaled = codec.decode(out)
    n_fit = 0
    for a0, a1 in zip(starts, scaled, strict=True):
        assert SPACE.contains(a1)
        lat1 = _truth(a1)[0]
        smallest = SPACE.make(
            [3 if n.endswith(".expand") else v for n, v in SPACE.as_dict(a0).items()]
        )
        if _truth(smallest)[0] <= budget - 0.05:  # feasible with margin for the fitted model
            assert lat1 <= budget + 0.05
            n_fit += 1
        # approached from below: every single raise of an active expand ratio breaks the budget
        # (or loses accuracy, which never happens here)
        for u, unit in enumerate(SPACE.layers(a1)):
            for j, (_, e) in enumerate(unit):
                if e != 6 and lat1 <= budget:
                    step = {3: 4, 4: 6}[e]
                    assert lat1 + COST[4 * u + j] * (step - e) > budget - 0.05
    assert n_fit >= 30


def test_ea_with_channel_scaling_picks_scaled_offspring_and_finds_better_nets() -> None:
    """On an additive problem, the scaled offspring are what the surrogates pick, and the
    constrained best beats the search without the operator (same seed, budget and queries)."""
    budget = 30.0
    best = {}
    for scaling in (True, False):
        problem = Problem(SPACE, mode="constraint", budget_ms=budget)
        algo = make_algorithm(
            "hsconas",
            problem,
            seed=0,
            channel_scaling=scaling,
            offspring_per_generation=200,
            model="ridge",
        )
        res = run_search(problem, algo, _Evaluator(), 32)
        assert res.best is not None and res.best.latency_ms <= budget
        best[scaling] = res.best.accuracy
        picked = algo.info()["channel_scaled_picks"]
        assert (picked > 0) if scaling else (picked == 0)
    assert best[True] > best[False]


def test_nb201_is_untouched_by_the_operator() -> None:
    space = get_space("nb201")
    problem = Problem(space, mode="constraint", budget_ms=10.0)
    algo = make_algorithm("hsconas", problem, seed=0)
    assert not algo._scaler.active
