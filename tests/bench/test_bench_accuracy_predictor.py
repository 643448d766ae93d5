"""The NB201 predictor benchmark reads proxy values exactly as the scorer stored them, and stops
rather than computing one that is missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bench.accuracy_predictor_nb201 import stored_values

from hsconas.accuracy.zero_cost import ProxyConfig, ZeroCostScorer
from hsconas.space import get_space
from hsconas.store import ResultStore


def test_stored_values_match_the_scorer_and_refuse_a_gap(tmp_path: Path) -> None:
    space = get_space("hsconas-digits")
    archs = space.sample_many(3, 0, unique=True)
    config = ProxyConfig(data="digits", batch_size=32, pool=300)
    store = ResultStore(tmp_path / "p.db")
    values = ZeroCostScorer(space, config, store=store).values(archs, "params")
    keys = [space.to_string(a) for a in archs]
    got = stored_values(store, space.name, config, keys, ("params",))
    np.testing.assert_array_equal(got["params"], values)
    missing = space.to_string(space.sample_many(4, 1, unique=True)[-1])
    assert missing not in keys
    with pytest.raises(SystemExit, match="1 of 4 cells have no stored params value"):
        stored_values(store, space.name, config, [*keys, missing], ("params",))
    other = ProxyConfig(data="digits", seed=1, batch_size=32, pool=300)
    with pytest.raises(SystemExit):  # values of other settings are not these
        stored_values(store, space.name, other, keys, ("params",))
