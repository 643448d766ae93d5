"""Search core on synthetic problems: Pareto invariants, exact fronts, query counting, determinism,
resume, channel scaling."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hsconas.spaces  # noqa: F401
from hsconas.search import (
    Problem,
    QueryCounter,
    SearchConfigError,
    TabularEvaluator,
    TrueFront,
    make_algorithm,
    non_dominated_sort,
    run_search,
)
from hsconas.search.channel_scaling import scale_channels
from hsconas.search.core.problem import BudgetInfeasibleError, make_record
from hsconas.search.indicators import crowding_distance, dominates, hypervolume, hypervolume_2d
from hsconas.search.shrinking import dominated_choices, estimate_effects
from hsconas.search.surrogate.acquisition import hv_improvement, on_error_log_scale
from hsconas.space import Architecture, Gene, SearchSpace, get_space
from hsconas.space.codec import GeneCodec
from hsconas.store import ResultStore, StoreError

points = st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=40).map(
    lambda p: np.array(p, dtype=float)
)


@given(points)
@settings(max_examples=80, deadline=None)
def test_non_dominated_sort_invariants(F: np.ndarray) -> None:
    fronts = non_dominated_sort(F)
    allidx = np.concatenate(fronts)
    assert sorted(allidx.tolist()) == list(range(len(F)))  # a partition
    for k, front in enumerate(fronts):
        for i in front:  # nobody in the same or a later front dominates a member
            for later in fronts[k:]:
                assert not any(dominates(F[j], F[i]) for j in later)
            if k > 0:  # dominated by someone of the previous front
                assert any(dominates(F[j], F[i]) for j in fronts[k - 1])


@given(points)
@settings(max_examples=40, deadline=None)
def test_nds_2d_matches_generic(F: np.ndarray) -> None:
    F3 = np.column_stack([F, np.zeros(len(F))])  # 3 objectives -> generic path
    a = [sorted(f.tolist()) for f in non_dominated_sort(F)]
    b = [sorted(f.tolist()) for f in non_dominated_sort(F3)]
    assert a == b


@given(points, st.tuples(st.integers(0, 20), st.integers(0, 20)))
@settings(max_examples=60, deadline=None)
def test_hypervolume_monotone_and_exact(F: np.ndarray, extra: tuple[int, int]) -> None:
    ref = np.array([21.0, 21.0])
    hv = hypervolume(F, ref)
    assert hv == pytest.approx(hypervolume_2d(F, ref))
    bigger = np.vstack([F, np.array(extra, dtype=float)])
    hv2 = hypervolume(bigger, ref)
    assert hv2 >= hv - 1e-9  # adding a point never lowers HV
    gain = hv_improvement(np.array([extra], dtype=float), F[non_dominated_sort(F)[0]], ref)[0]
    assert gain == pytest.approx(hv2 - hv, abs=1e-9)


def test_crowding_boundaries_infinite() -> None:
    F = np.array([[0.0, 3.0], [1.0, 2.0], [2.0, 1.0], [3.0, 0.0]])
    d = crowding_distance(F)
    assert np.isinf(d[0]) and np.isinf(d[3]) and np.isfinite(d[1:3]).all()


# ---------------------------------------------------------------------- a small synthetic table
def _toy_table() -> tuple[SearchSpace, TabularEvaluator]:
    space = get_space("nb201").restrict({f"edge{t}<-{f}": ["none", "skip_connect", "nor_conv_3x3"]
                                          for t, f in ((1, 0), (2, 0), (2, 1))})  # fmt: skip
    space = space.restrict({**space.restriction(), "edge3<-0": ["nor_conv_1x1", "avg_pool_3x3"],
                            "edge3<-1": ["skip_connect"], "edge3<-2": ["none", "nor_conv_3x3"]})  # fmt: skip
    archs = list(space.enumerate())
    codes = GeneCodec(space).encode(archs)
    lat = 1.0 + codes.sum(axis=1) * 0.5 + (codes[:, 0] == 3) * 0.7
    acc = 50 + 3 * (codes == 3).sum(axis=1) + 2 * (codes == 1).sum(axis=1) - 0.1 * codes[:, 5]
    return space, TabularEvaluator(space, archs, acc, lat, settings={"kind": "toy"})


def test_true_front_of_small_table_is_exact() -> None:
    space, ev = _toy_table()
    truth = TrueFront.from_table(ev.accuracy, ev.latency_ms)
    # brute force: a point is on the front iff nothing dominates it
    expect = set()
    for i in range(len(ev.archs)):
        if not any(
            ev.accuracy[j] >= ev.accuracy[i] and ev.latency_ms[j] <= ev.latency_ms[i]
            and (ev.accuracy[j] > ev.accuracy[i] or ev.latency_ms[j] < ev.latency_ms[i])
            for j in range(len(ev.archs))
        ):  # fmt: skip
            expect.add((ev.accuracy[i], ev.latency_ms[i]))
    assert set(map(tuple, truth.points.tolist())) == expect
    assert truth.hv_ratio(ev.accuracy, ev.latency_ms) == pytest.approx(1.0)
    assert truth.front_share(ev.accuracy, ev.latency_ms) == 1.0
    assert truth.igd(ev.accuracy, ev.latency_ms) == pytest.approx(0.0)
    # an exhaustive search over the space finds the whole front
    res = run_search(
        Problem(space), make_algorithm("random", Problem(space), seed=0), ev, len(ev.archs)
    )
    acc = [r.accuracy for r in res.records]
    lat = [r.latency_ms for r in res.records]
    assert res.n_queries == len(ev.archs) == space.size()
    assert truth.front_share(acc, lat) == 1.0


class _CountingEvaluator:
    def __init__(self, inner: TabularEvaluator, fail_after: int | None = None) -> None:
        self.inner = inner
        self.calls: list[Architecture] = []
        self.fail_after = fail_after

    @property
    def settings(self) -> Mapping[str, Any]:
        return self.inner.settings

    def evaluate(self, arch: Architecture) -> dict[str, float]:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt
        self.calls.append(arch)
        return self.inner.evaluate(arch)


def test_query_counter_counts_distinct_architectures() -> None:
    space, ev = _toy_table()
    wrapped = _CountingEvaluator(ev)
    counter = QueryCounter(wrapped, space)
    a, b = ev.archs[0], ev.archs[1]
    for arch in (a, b, a, a, b):
        counter.evaluate(arch)
    assert counter.n_queries == 2 and len(wrapped.calls) == 2
    # a search that asks repeats still pays once per architecture
    problem = Problem(space)
    wrapped = _CountingEvaluator(ev)
    res = run_search(
        problem,
        make_algorithm("re", problem, seed=1, population_size=10, sample_size=3),
        wrapped,
        60,
    )
    assert res.n_queries == 60 == len(wrapped.calls) == len(set(wrapped.calls))


@pytest.mark.parametrize("algo", ["hsconas", "random", "re", "nsga2"])
def test_same_seed_same_result(algo: str) -> None:
    space, ev = _toy_table()
    problem = Problem(space)
    opts = (
        {"initial_queries": 10, "batch_size": 4, "offspring_per_generation": 200, "n_trees": 10}
        if algo == "hsconas"
        else {}
    )
    keys = [
        [
            r.key
            for r in run_search(
                problem, make_algorithm(algo, problem, seed=s, **opts), ev, 40
            ).records
        ]
        for s in (3, 3, 4)
    ]
    assert keys[0] == keys[1]
    assert keys[0] != keys[2]


@pytest.mark.parametrize("algo", ["hsconas", "nsga2", "re"])
def test_resume_equals_uninterrupted(tmp_path: Any, algo: str) -> None:
    space, ev = _toy_table()
    problem = Problem(space)
    opts = (
        {"initial_queries": 10, "batch_size": 4, "offspring_per_generation": 200, "n_trees": 10}
        if algo == "hsconas"
        else {}
    )
    full = run_search(problem, make_algorithm(algo, problem, seed=7, **opts), ev, 50)
    store = ResultStore(tmp_path / "r.db")
    with pytest.raises(KeyboardInterrupt):  # interrupted after 23 queries
        run_search(problem, make_algorithm(algo, problem, seed=7, **opts), _CountingEvaluator(ev, 23), 50,
                   store=store, run_id="r")  # fmt: skip
    assert len(store.evaluations("r")) == 23
    with pytest.raises(SearchConfigError, match="resume"):
        run_search(
            problem, make_algorithm(algo, problem, seed=7, **opts), ev, 50, store=store, run_id="r"
        )
    wrapped = _CountingEvaluator(ev)
    resumed = run_search(problem, make_algorithm(algo, problem, seed=7, **opts), wrapped, 50,
                         store=store, run_id="r", resume=True)  # fmt: skip
    assert [r.key for r in resumed.records] == [r.key for r in full.records]
    assert resumed.n_replayed == 23 and len(wrapped.calls) == 27  # stored ones were not re-queried
    assert [e.arch for e in store.evaluations("r")] == [r.key for r in full.records]
    # a different seed cannot silently continue the stored run
    with pytest.raises(StoreError):
        run_search(
            problem,
            make_algorithm(algo, problem, seed=8, **opts),
            ev,
            60,
            store=store,
            run_id="r",
            resume=True,
        )


def test_problem_validation() -> None:
    space = get_space("nb201")
    with pytest.raises(SearchConfigError):
        Problem(space, mode="constraint")
    with pytest.raises(SearchConfigError):
        Problem(space, mode="bogus")
    p = Problem(space, mode="constraint", budget_ms=5.0)
    fit = p.scalar_fitness(np.array([90.0, 95.0]), np.array([4.0, 6.0]))
    assert fit[0] > fit[1]  # the feasible one wins despite lower accuracy


def test_empirical_feasibility_follows_the_latency_residuals_tail() -> None:
    """Constraint mode's P(latency <= budget): a device that sometimes runs a cell far faster
    than the additive model says (one residual in ten at -5 ms) gives a candidate predicted 3 ms
    over the budget about that one-in-ten chance, where the Gaussian of the robust residual sd
    gives it none."""
    from hsconas.search.surrogate.acquisition import feasible_probability

    space, _ = _toy_table()
    problem = Problem(space, mode="constraint", budget_ms=10.0)
    emp = make_algorithm("hsconas", problem, seed=0)
    resid = np.r_[np.random.default_rng(0).normal(0.0, 0.2, 90), np.full(10, -5.0)]
    emp.surrogates.lat_resid = resid  # as if the latency model had left these residuals (ms)
    pred = np.array([7.0, 10.0, 13.0, 16.0])
    p_gauss = feasible_probability(pred, 10.0, resid, empirical=False)
    p_emp = emp._p_feasible(pred, 10.0)
    assert p_gauss[2] < 1e-6 and 0.07 < p_emp[2] < 0.13
    assert p_emp[0] > 0.99 and 0.45 < p_emp[1] < 0.6 and p_emp[3] < 0.01
    assert np.all(np.diff(p_emp) <= 0)
    # a device reporting whole ms: 10.3 ms predicted is reported as 10, within the budget
    near = np.array([10.0, 10.3, 10.7])
    p_cont, p_whole = emp._p_feasible(near, 10.0), emp._p_feasible(near, 10.0, quantum=1.0)
    assert p_cont[0] < 0.6 < 0.85 < p_whole[0] and p_cont[1] < 0.2 < 0.75 < p_whole[1]
    assert p_whole[2] < 0.25
    for bad in ({"model": "svm"}, {"pool": "all"}, {"acquisition": "ucb"}):
        with pytest.raises(SearchConfigError):
            make_algorithm("hsconas", problem, seed=0, **bad)


def test_log_error_probability_scale_keeps_a_far_cell_out_of_the_front() -> None:
    """A cell the surrogate puts at 56% with sd 0.18 on its log-error scale has a 3% chance of
    beating 70.9% under a Gaussian linearised on the accuracy scale (sd 7.8 points), about 1% on
    the log-error scale, where its upper tail is what the model said; a cell near the front keeps
    nearly the same chance. The rescaling leaves every comparison with known accuracies as it
    was, and the greedy batch then prefers the near cell."""
    from scipy import special

    from hsconas.search.algorithms.hsconas_ea import HSCoNASEvolution
    from hsconas.search.surrogate.acquisition import feasible_improvement_batch
    from hsconas.search.surrogate.models import ErrorLogScale

    space, _ = _toy_table()
    problem = Problem(space, mode="constraint", budget_ms=10.0)
    known = np.array([50.0, 65.0, 70.9])
    scale = ErrorLogScale(known)
    z = np.array([scale.forward(np.array(56.0)), scale.forward(np.array(70.5))])
    mu = scale.inverse(z)
    sd = np.array([0.176, 0.02]) * scale.slope(z)  # the model's sd, in accuracy points
    on_accuracy_scale = (mu, sd, known)  # a Gaussian linearised on the accuracy scale
    on_log_scale = on_error_log_scale(mu, sd, known)
    for (m, s, k), lo, hi in ((on_accuracy_scale, 0.025, 0.035), (on_log_scale, 0.008, 0.013)):
        assert np.all(np.diff(k) > 0) and np.all((m[:, None] > k) == (mu[:, None] > known))
        p = special.ndtr((m - k[-1]) / s)
        assert lo < p[0] < hi and 0.24 < p[1] < 0.26
    m, s, k = on_log_scale
    p_feas = np.array([1.0, 0.1])  # the near cell is seldom within the budget
    assert feasible_improvement_batch(mu, sd, np.array([7.0, 10.5]), p_feas, 10.0, 70.9, 1) == [0]
    assert feasible_improvement_batch(m, s, np.array([7.0, 10.5]), p_feas, 10.0, k[-1], 1) == [1]
    # the EA's own batch: the far cell is certainly feasible (7 ms), the near one predicted 0.5 ms
    # over the budget with residuals of sd 0.4 ms (P(feasible) 0.1)
    archs = list(space.enumerate())
    lat_pred = np.array([7.0, 10.5])
    algo = make_algorithm("hsconas", problem, seed=0, batch_size=1)
    assert isinstance(algo, HSCoNASEvolution)
    algo.tell([make_record(space, a, {"accuracy": v, "latency_ms": 9.0})
               for a, v in zip(archs[:3], known, strict=True)])  # fmt: skip
    algo.surrogates.lat_resid = np.random.default_rng(0).normal(0.0, 0.4, 200)
    algo._predict = lambda pool: (mu, sd, lat_pred)  # type: ignore[method-assign]
    assert algo._select(algo.codec.encode(archs[3:5])).tolist() == [1]


def test_shrinking_drops_a_dominated_choice() -> None:
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    archs = space.sample_many(400, rng, unique=True)
    codes = GeneCodec(space).encode(archs)
    # avg_pool (code 4) on edge 0 costs more latency and gives less accuracy than skip (code 1)
    lat = 5 + codes.sum(axis=1) * 0.3 + 2.0 * (codes[:, 0] == 4) + rng.normal(0, 0.05, len(archs))
    acc = (
        70
        + 2 * (codes == 3).sum(axis=1)
        - 3.0 * (codes[:, 0] == 4)
        + rng.normal(0, 0.2, len(archs))
    )
    effects = estimate_effects(space, codes, acc, lat)
    drop = dominated_choices(space, effects, z=3.0, min_choices=2)
    assert "avg_pool_3x3" in drop.get("edge1<-0", [])
    assert all(len(space.gene(g).choices) - len(v) >= 2 for g, v in drop.items())


# ---------------------------------------------------------------------- channel scaling on a toy space
class _ToyChannelSpace(SearchSpace):
    def __init__(self) -> None:
        self.name = "nb201"  # reuse a registered name; only genes matter here
        self._init_genes(
            [
                Gene("op", ("a", "b")),
                *(Gene(f"l{i}.factor", (0.25, 0.5, 0.75, 1.0)) for i in range(3)),
            ]
        )

    def _format(self, values: tuple[Any, ...]) -> str:
        return ",".join(map(str, values))

    def _parse(self, text: str) -> tuple[Any, ...]:
        return tuple(text.split(","))


def test_channel_scaling_spends_budget_where_gain_per_ms_is_highest() -> None:
    space = _ToyChannelSpace()
    cost = (4.0, 1.0, 2.0)  # ms per unit factor of each layer
    gain = (1.0, 3.0, 0.5)  # accuracy per unit factor

    def lat(a: Architecture) -> float:
        return 1.0 + sum(c * float(f) for c, f in zip(cost, a.values[1:], strict=True))

    def acc(a: Architecture) -> float:
        return sum(g * float(f) for g, f in zip(gain, a.values[1:], strict=True))

    start = space.make(["a", 1.0, 1.0, 1.0])  # 8 ms
    out, steps = scale_channels(space, start, budget_ms=5.0, latency_fn=lat, accuracy_fn=acc)
    assert lat(out) <= 5.0
    assert out.values[2] == 1.0  # the layer with the best accuracy per ms keeps full width
    # no single raise still fits: the budget is approached from below
    for i in range(1, 4):
        vals = list(out.values)
        ch = [0.25, 0.5, 0.75, 1.0]
        k = ch.index(vals[i])
        if k + 1 < len(ch):
            vals[i] = ch[k + 1]
            assert lat(space.make(vals)) > 5.0
    assert steps and steps[0].new < steps[0].old
    up, _ = scale_channels(
        space, space.make(["a", 0.25, 0.25, 0.25]), budget_ms=5.0, latency_fn=lat, accuracy_fn=acc
    )
    assert up.values[2] == 1.0 and lat(up) <= 5.0
    with pytest.raises(BudgetInfeasibleError):
        scale_channels(space, start, budget_ms=1.5, latency_fn=lat, accuracy_fn=acc)


def test_front_plot_marks_the_true_front_points_found(tmp_path: Path) -> None:
    from hsconas.report.search_plots import front_plot_data, render_front

    # a table of 6 rows: the front is (10%, 1 ms), (50%, 2 ms), (80%, 4 ms), (90%, 8 ms)
    acc = np.array([10.0, 50.0, 40.0, 80.0, 70.0, 90.0])
    lat = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 8.0])
    truth = TrueFront.from_table(acc, lat)
    queried = [1, 2, 5]  # finds (50, 2) and (90, 8); (40, 3) is dominated
    data = front_plot_data(acc[queried], lat[queried], truth=truth, budget_ms=6.0)
    assert data.true_found is not None and data.true_front is not None
    assert data.true_found.tolist() == [False, True, False, True]
    assert data.true_found.mean() == truth.front_share(acc[queried], lat[queried])
    assert data.found_front.tolist() == [[2.0, 50.0], [8.0, 90.0]]
    # the close-up starts just below the 20th percentile of the true front's accuracies
    assert 30.0 < data.zoom_floor() < float(np.percentile([10, 50, 80, 90], 20))
    out = render_front(data, tmp_path / "front.png", title="t")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # without a true front: nothing to mark, the close-up follows the found front
    alone = front_plot_data(acc[queried], lat[queried])
    assert alone.true_front is None and alone.true_found is None
    assert render_front(alone, tmp_path / "alone.png").stat().st_size > 0
