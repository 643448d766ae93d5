"""The label-free default estimate (``EnsembleAccuracy``: zero-cost proxies and a further signal
such as the supernet, scored against a fixed reference sample) and ``StoredAccuracy``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hsconas.accuracy.zero_cost import ENSEMBLE_MEMBERS
from hsconas.evaluation.proxy import (
    EnsembleAccuracy,
    ProxyAccuracy,
    StoredAccuracy,
    positions_against,
)
from hsconas.space import Architecture, SearchSpace, get_space
from hsconas.store import ResultStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class DepthAccuracy:
    """An accuracy source from the architecture alone (the sum of its numeric genes), counting
    its evaluations: a stand-in for the supernet's signal, whose value is any number."""

    def __init__(self, space: SearchSpace, nan_for: Architecture | None = None) -> None:
        self.space = space
        self.nan_for = nan_for
        self.n_evals = 0

    @property
    def name(self) -> str:
        return "depth"

    @property
    def settings(self) -> Mapping[str, Any]:
        return {"kind": "depth"}

    def pool(self, space: SearchSpace) -> None:
        return None

    def accuracy(self, arch: Architecture) -> float:
        return float(self.evaluate([arch])[0])

    def evaluate(self, archs: Sequence[Architecture]) -> np.ndarray:
        self.n_evals += len(archs)
        out = []
        for a in archs:
            nums = [float(v) for v in a.values if isinstance(v, int | float)]
            out.append(float("nan") if a == self.nan_for else sum(nums))
        return np.array(out, dtype=np.float64)


def _ensemble(space: SearchSpace, **kw: Any) -> EnsembleAccuracy:
    return EnsembleAccuracy(space, "digits", {"depth": DepthAccuracy(space)}, reference=8, **kw)


def test_ensemble_scores_are_fixed_by_the_reference_not_by_the_queries() -> None:
    space = get_space("hsconas-digits")
    archs = space.sample_many(6, 11, unique=True)
    a, b = _ensemble(space), _ensemble(space)
    # one at a time, with other networks asked in between, vs all at once in reverse order
    one_by_one = []
    for i, x in enumerate(archs):
        a.evaluate(space.sample_many(3, 100 + i, unique=True))
        one_by_one.append(a.accuracy(x))
    together = b.evaluate(archs[::-1])[::-1]
    assert one_by_one == pytest.approx(list(together))
    # the reference is the seeded sample, the same however much was asked
    assert a.reference_archs() == b.reference_archs()
    assert len(a.reference_archs()) == 8 and a.reference_archs() != archs[:8]
    for name in a.reference():
        np.testing.assert_array_equal(a.reference()[name], b.reference()[name])


def test_ensemble_score_is_the_mean_position_of_proxies_and_the_extra_signal() -> None:
    space = get_space("hsconas-digits")
    archs = space.sample_many(5, 3, unique=True)
    ens = _ensemble(space)
    proxies = ProxyAccuracy(space, "ensemble", "digits", reference=8)
    assert ens.members == proxies.members == ENSEMBLE_MEMBERS
    ref = ens.reference()
    assert set(ref) == {*ENSEMBLE_MEMBERS, "depth"}
    # the proxies' reference values are the proxy source's own: one scorer, one scale
    for m in ENSEMBLE_MEMBERS:
        np.testing.assert_allclose(ref[m], proxies.reference()[m])
    depth = DepthAccuracy(space).evaluate(archs)
    pos_depth = positions_against(depth, ref["depth"])
    pos_proxies = proxies.evaluate(archs) / 100.0 * len(ENSEMBLE_MEMBERS)
    want = 100.0 * (pos_proxies + pos_depth) / (len(ENSEMBLE_MEMBERS) + 1)
    assert ens.evaluate(archs) == pytest.approx(want)
    assert ens.name == "ensemble"
    assert ens.settings["signals"] == [*ENSEMBLE_MEMBERS, "depth"]


def test_ensemble_leaves_out_a_missing_signal() -> None:
    space = get_space("hsconas-digits")
    (arch,) = space.sample_many(1, 21, unique=True)
    ens = EnsembleAccuracy(
        space, "digits", {"depth": DepthAccuracy(space, nan_for=arch)}, reference=8
    )
    proxies_only = ProxyAccuracy(space, "ensemble", "digits", reference=8)
    assert ens.accuracy(arch) == pytest.approx(proxies_only.accuracy(arch))


def test_stored_accuracy_reads_back_instead_of_computing(tmp_path: Path) -> None:
    space = get_space("hsconas-digits")
    archs = space.sample_many(4, 2, unique=True)
    store = ResultStore(tmp_path / "r.db")
    first = DepthAccuracy(space)
    values = StoredAccuracy(first, store, space, {"checkpoint": "a"}).evaluate(archs)
    assert first.n_evals == 4
    again = DepthAccuracy(space)
    stored = StoredAccuracy(again, store, space, {"checkpoint": "a"})
    assert stored.evaluate(archs[::-1]) == pytest.approx(values[::-1])
    assert again.n_evals == 0 and stored.n_evals == 0
    # values of another identity (another checkpoint) are not read
    other = DepthAccuracy(space)
    StoredAccuracy(other, store, space, {"checkpoint": "b"}).evaluate(archs)
    assert other.n_evals == 4


def test_a_resumed_ensemble_computes_nothing_again(tmp_path: Path) -> None:
    space = get_space("hsconas-digits")
    archs = space.sample_many(3, 4, unique=True)

    def source() -> tuple[EnsembleAccuracy, DepthAccuracy]:
        store = ResultStore(tmp_path / "r.db")
        depth = DepthAccuracy(space)
        stored = StoredAccuracy(depth, store, space, {"checkpoint": "a"})
        return EnsembleAccuracy(space, "digits", {"depth": stored}, reference=8, store=store), depth

    ens, _ = source()
    scores = ens.evaluate(archs)
    assert ens.n_evals > 0
    resumed, depth = source()
    assert resumed.evaluate(archs) == pytest.approx(scores)
    assert resumed.n_evals == 0 and depth.n_evals == 0
