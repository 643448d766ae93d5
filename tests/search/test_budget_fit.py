"""Fitting the chosen network to the budget on the device (torch-free: the device is a function)."""

from __future__ import annotations

import pytest

from hsconas.search.budget_fit import SHRINK_STEPS, BudgetFit, fit_to_budget
from hsconas.search.channel_scaling import channel_genes
from hsconas.space import Architecture, get_space

SPACE = get_space("hsconas-digits")
GENES = channel_genes(SPACE)


def _predicted_ms(arch: Architecture) -> float:
    """A latency model: 1 ms per unit of channel factor, summed over the factor genes."""
    d = SPACE.as_dict(arch)
    return float(sum(float(d[g]) for g in GENES))


def _accuracy(arch: Architecture) -> float:
    return _predicted_ms(arch)  # wider is more accurate


def _run(slowdown: float, budget: float, n: int = 3) -> tuple[BudgetFit, list[float]]:
    cands = SPACE.sample_many(n, 0, unique=True)
    measured: list[float] = []

    def measure(arch: Architecture) -> tuple[float, float]:
        ms = slowdown * _predicted_ms(arch)
        measured.append(ms)
        return ms, 0.01 * ms

    # the search's evaluations: the candidates and the rest of what it queried
    searched = [*cands, *SPACE.sample_many(60, 1, unique=True)]
    evaluated = [(SPACE.to_string(a), _accuracy(a), _predicted_ms(a)) for a in searched]
    fit = fit_to_budget(
        SPACE, cands, budget, measure=measure, predict_ms=_predicted_ms,
        latency_fn=_predicted_ms, evaluated=lambda: evaluated, max_candidates=2,
    )  # fmt: skip
    return fit, measured


def test_a_candidate_within_budget_is_taken_as_measured() -> None:
    cands = SPACE.sample_many(3, 0, unique=True)
    budget = max(_predicted_ms(a) for a in cands) + 1.0
    fit, _ = _run(1.0, budget)
    assert fit.chosen == cands[0] and len(fit.attempts) == 1
    assert fit.attempts[0].within_budget and fit.attempts[0].why == "search candidate"
    assert fit.final.measured_ms == pytest.approx(_predicted_ms(cands[0]))


def test_a_slower_device_gets_re_scaled_channels_that_meet_the_budget() -> None:
    """The device runs 30% slower than predicted: each miss re-scales channels to the budget
    corrected by the measured/predicted ratio, and the network chosen measures within it."""
    cands = SPACE.sample_many(3, 0, unique=True)
    budget = _predicted_ms(cands[0])  # fits by prediction, misses by measurement
    fit, measured = _run(1.3, budget)
    assert not fit.attempts[0].within_budget
    assert fit.chosen_ms <= budget and fit.final.within_budget
    assert any("re-scaled" in a.why for a in fit.attempts)
    assert [a.measured_ms for a in fit.attempts] == measured


def test_an_impossible_budget_ends_on_the_fastest_attempt_reported_over_it() -> None:
    fit, _ = _run(1.0, 0.01)
    assert not fit.final.within_budget and fit.chosen_ms > 0.01
    assert fit.chosen_ms == min(a.measured_ms for a in fit.attempts)
    # no re-scaling or re-selection fits 0.01 ms: only the two search candidates were measured
    assert [a.why for a in fit.attempts] == ["search candidate", "next candidate"]
    assert all(0 < s < 1 for s in SHRINK_STEPS)


def test_re_scaling_is_the_eas_channel_scaling_operator_inside_the_searched_space() -> None:
    """BudgetScaler is CodeScaler fitted on the search's evaluations: the same move for the same
    fit, kept inside a restricted space and checked against the latency model."""
    import numpy as np

    from hsconas.search.budget_fit import BudgetScaler
    from hsconas.search.channel_scaling import CodeScaler
    from hsconas.space.codec import GeneCodec

    gene = GENES[0]
    low = [c for c in SPACE.gene(gene).choices if float(c) < float(max(SPACE.gene(gene).choices))]
    space = SPACE.restrict({gene: low})
    searched = space.sample_many(80, 2, unique=True)
    evaluated = [(SPACE.to_string(a), _accuracy(a), _predicted_ms(a)) for a in searched]
    bs = BudgetScaler(space, evaluated, _predicted_ms)
    start = searched[0]
    budget = _predicted_ms(start) * 0.7
    new = bs.scale(start, budget)
    assert new is not None and _predicted_ms(new) <= budget and space.contains(new)
    codec = GeneCodec(space)
    ref = CodeScaler(space, codec).fit(
        codec.encode(searched),
        np.array([e[2] for e in evaluated]),
        np.array([e[1] for e in evaluated]),
    )
    ref.set_allowed(codec.allowed_mask(space))
    assert codec.decode(ref.scale(codec.encode([start]), budget))[0] == new
    assert bs.scale(start, 1e-6) is None  # no scaling reaches it
