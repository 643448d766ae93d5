"""The ensemble combination and the cached proxy scorer (on the bundled digits data)."""

from __future__ import annotations

import numpy as np
import pytest

from hsconas.accuracy.zero_cost import (
    ENSEMBLE_MEMBERS,
    METHODS,
    ProxyConfig,
    UnknownMethodError,
    ZeroCostScorer,
    check_method,
    combine,
)
from hsconas.space import get_space
from hsconas.store import ResultStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_combine_is_the_mean_of_mid_rank_positions() -> None:
    got = combine({"a": [3.0, 1.0, 2.0], "b": [10.0, 30.0, 20.0]})
    # positions (rank - 0.5) / 3: a -> 5/6, 1/6, 1/2; b -> 1/6, 5/6, 1/2
    assert got == pytest.approx([0.5, 0.5, 0.5])
    ties = combine({"a": [1.0, 1.0, 2.0]})
    assert ties == pytest.approx([1 / 3, 1 / 3, 5 / 6])


def test_combine_does_not_depend_on_the_order_of_architectures_or_signals() -> None:
    rng = np.random.default_rng(0)
    signals = {name: rng.normal(size=20) for name in ("naswot", "synflow", "jacov")}
    base = combine(signals)
    perm = rng.permutation(20)
    shuffled = {name: signals[name][perm] for name in reversed(list(signals))}
    assert combine(shuffled) == pytest.approx(base[perm])


def test_combine_ignores_a_missing_signal() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=10), rng.normal(size=10)
    # a signal missing for every architecture changes nothing
    assert combine({"a": a, "b": b, "sn": np.full(10, np.nan)}) == pytest.approx(
        combine({"a": a, "b": b})
    )
    # missing for one architecture: its score is its position in the other signal alone
    b_missing = b.copy()
    b_missing[3] = np.nan
    got = combine({"a": a, "b": b_missing})
    assert got[3] == pytest.approx(combine({"a": a})[3])
    assert np.all(np.isfinite(got))
    assert np.isnan(combine({"a": [np.nan, 1.0]})[0])


def test_combine_against_a_reference() -> None:
    got = combine({"a": [0.0, 2.5, 9.0]}, reference={"a": [1.0, 2.0, 3.0, 4.0]})
    assert got == pytest.approx([0.0, 0.5, 1.0])


def test_combine_rejects_ragged_signals() -> None:
    with pytest.raises(ValueError):
        combine({"a": [1.0, 2.0], "b": [1.0]})
    with pytest.raises(ValueError):
        combine({})


def test_methods() -> None:
    assert set(ENSEMBLE_MEMBERS) <= set(METHODS)
    assert check_method("ensemble") == "ensemble"
    with pytest.raises(UnknownMethodError, match="choose one of"):
        check_method("zen")


@pytest.fixture(scope="module")
def digits_scorer_parts() -> tuple[object, list[object]]:
    space = get_space("hsconas-digits")
    return space, space.sample_many(3, 0, unique=True)


def test_scorer_stores_values_and_a_repeat_is_free(tmp_path, digits_scorer_parts) -> None:
    space, archs = digits_scorer_parts
    config = ProxyConfig(data="digits", seed=0, batch_size=32, pool=300)
    store = ResultStore(tmp_path / "r.db")
    first = ZeroCostScorer(space, config, store=store)
    vals = first.values_of(archs, ["naswot", "synflow", "params"])
    assert first.n_computed == 3
    assert all(np.all(np.isfinite(v)) for v in vals.values())
    again = ZeroCostScorer(space, config, store=ResultStore(tmp_path / "r.db"))
    repeat = again.values_of(archs, ["naswot", "synflow", "params"])
    assert {k: list(v) for k, v in repeat.items()} == {k: list(v) for k, v in vals.items()}
    assert again.n_computed == 0
    # the same seed recomputes the same values; another seed gives other weights and images
    fresh = ZeroCostScorer(space, config).values(archs, "naswot")
    assert fresh == pytest.approx(vals["naswot"])
    other = ZeroCostScorer(space, ProxyConfig(data="digits", seed=1, batch_size=32, pool=300))
    assert not np.allclose(other.values(archs, "naswot"), vals["naswot"])


def test_scorer_ensemble_is_the_combination_of_its_members(digits_scorer_parts) -> None:
    space, archs = digits_scorer_parts
    scorer = ZeroCostScorer(space, ProxyConfig(data="digits", batch_size=32, pool=300))
    members = ("naswot", "params")
    got = scorer.scores(archs, "ensemble", members=members, extra={"supernet": [1.0, 3.0, 2.0]})
    expected = combine({**scorer.values_of(archs, members), "supernet": [1.0, 3.0, 2.0]})
    assert got == pytest.approx(expected)
    with pytest.raises(UnknownMethodError):
        scorer.scores(archs, "supernet")
    with pytest.raises(UnknownMethodError, match="not a zero-cost proxy"):
        scorer.values(archs, "supernet")
    with pytest.raises(UnknownMethodError, match="not a zero-cost proxy"):
        scorer.scores(archs, "ensemble", members=("naswot", "zen"))
