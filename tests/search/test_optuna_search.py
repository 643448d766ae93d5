"""Optuna's NSGA-II and TPE samplers as baselines of the search harness."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

import hsconas.spaces  # noqa: F401
from hsconas.search import ALGORITHM_NAMES, Problem, make_algorithm, run_search
from hsconas.space import Architecture, get_space

SPACE = get_space("ofa-mbv3").restrict({"resolution": [224]})


class _Additive:
    """Latency and accuracy both grow with the active expand ratios (a real trade-off)."""

    settings: Mapping[str, Any] = {"kind": "additive"}

    def evaluate(self, arch: Architecture) -> dict[str, float]:
        e = [float(x) for unit in SPACE.layers(arch) for _, x in unit]
        k = [float(x) for unit in SPACE.layers(arch) for x, _ in unit]
        return {"accuracy": 70 + 0.1 * sum(e) + 0.02 * sum(k), "latency_ms": 1 + sum(e) / 4}


@pytest.mark.parametrize("name", ["optuna-nsga2", "optuna-tpe"])
def test_optuna_samplers_search_under_a_budget(name: str) -> None:
    assert name in ALGORITHM_NAMES
    runs = []
    for _ in range(2):
        problem = Problem(SPACE, mode="constraint", budget_ms=12.0)
        algo = make_algorithm(name, problem, seed=1)
        res = run_search(problem, algo, _Additive(), 40)
        assert res.n_queries == 40 and res.best is not None and res.best.latency_ms <= 12.0
        runs.append([r.key for r in res.records])
    assert runs[0] == runs[1]  # the same seed asks the same architectures


def test_optuna_pareto_and_weighted_modes_run() -> None:
    for mode, budget in (("pareto", None), ("weighted", 12.0)):
        problem = Problem(SPACE, mode=mode, budget_ms=budget)
        res = run_search(problem, make_algorithm("optuna-tpe", problem, seed=0), _Additive(), 24)
        assert res.n_queries == 24 and res.front
