"""The evidence rule of progressive shrinking and its use inside the HSCoNAS EA."""

from __future__ import annotations

import numpy as np

import hsconas.spaces  # noqa: F401
from hsconas.search import Problem, make_algorithm
from hsconas.search.algorithms.hsconas_ea import HSCoNASEvolution
from hsconas.search.core.problem import make_record
from hsconas.search.shrinking import front_dominated_choices, shrink_space
from hsconas.space import get_space
from hsconas.space.codec import GeneCodec


def _toy_objectives(codes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """NB201-coded toy: avg_pool (code 4) on edge 0 costs 1 ms and loses 2 points; every other
    choice trades accuracy for latency."""
    lat = 5 + 0.5 * codes.sum(axis=1) + 1.0 * (codes[:, 0] == 4) + rng.normal(0, 0.01, len(codes))
    acc = 70 + 0.8 * codes.sum(axis=1) - 2.0 * (codes[:, 0] == 4) - 3.2 * (codes[:, 0] == 4)
    return acc, lat


def test_evidence_rule_drops_a_choice_whose_every_network_trails_the_front() -> None:
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    codes = GeneCodec(space).encode(space.sample_many(300, rng, unique=True))
    acc, lat = _toy_objectives(codes, rng)
    active = np.ones_like(codes, dtype=bool)
    drop = front_dominated_choices(space, codes, active, acc, lat, min_count=8, margin=0.1)
    assert drop.get("edge1<-0") == ["avg_pool_3x3"]
    # a margin wider than the loss, or too few holders, keeps it
    wide = front_dominated_choices(space, codes, active, acc, lat, min_count=8, margin=50.0)
    assert wide == {}
    few = front_dominated_choices(space, codes, active, acc, lat, min_count=10_000, margin=0.1)
    assert few == {}
    shrunk = shrink_space(space, drop)
    assert "avg_pool_3x3" not in shrunk.gene("edge1<-0").choices
    assert shrunk.size() == space.size() // 5 * 4


def test_evidence_rule_keeps_min_choices_and_the_inactive_default() -> None:
    space = get_space("ofa-mbv3").restrict({"resolution": [224]})
    codec = GeneCodec(space)
    archs = space.sample_many(200, 1, unique=True)
    codes = codec.encode(archs)
    active = np.array([space.active_mask(a.values) for a in archs])
    rng = np.random.default_rng(1)
    acc = rng.normal(75, 1, len(archs))
    lat = rng.normal(30, 3, len(archs))
    # all holders dominated for any margin below the spread: only min_choices limits the drop
    drop = front_dominated_choices(space, codes, active, acc, lat, min_count=1, margin=-1.0)
    for gene in space.genes:
        kept = [c for c in gene.choices if c not in drop.get(gene.name, [])]
        assert len(kept) >= min(2, len(gene.choices))
        if not np.all(active[:, space.gene_names.index(gene.name)]):
            assert gene.choices[0] in kept  # the value inactive layers hold stays
    shrunk = shrink_space(space, drop)
    assert shrunk.size() < space.size()


def test_ea_shrinks_at_each_stage_and_reports_it() -> None:
    space = get_space("nb201")
    problem = Problem(space, mode="pareto")
    algo = make_algorithm("hsconas", problem, seed=0, shrink_at=(40,), batch_size=8)
    assert isinstance(algo, HSCoNASEvolution)
    rng = np.random.default_rng(0)
    while len(algo.history) < 48:
        archs = algo.ask()
        codes = algo.codec.encode(archs)
        acc, lat = _toy_objectives(codes, rng)
        algo.tell([make_record(space, a, {"accuracy": float(x), "latency_ms": float(y)})
                   for a, x, y in zip(archs, acc, lat, strict=True)])  # fmt: skip
    stage = algo.stages[1]
    assert stage["n_queries"] >= 40 and stage["front_points"] >= 1
    assert stage["space_size"] <= stage["space_size_before"] == space.size()
    assert "avg_pool_3x3" in stage["dropped"].get("edge1<-0", [])
    off = make_algorithm("hsconas", problem, seed=0, shrink_at=(40,), shrinking=False)
    assert isinstance(off, HSCoNASEvolution) and len(off.stages) == 1
