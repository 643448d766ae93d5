"""The closed-form parameter and MAC counts agree with the project's counters on built networks."""

from __future__ import annotations

import numpy as np
import pytest

from hsconas.accuracy.costs import arch_cost, closed_form_supported
from hsconas.nn import build_model
from hsconas.nn.counting import model_cost
from hsconas.space import get_space

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("name", ["ofa-mbv3", "ofa-mbv3-w1.2", "proxylessnas"])
def test_closed_form_equals_counted(name: str) -> None:
    space = get_space(name)
    assert closed_form_supported(space)
    rng = np.random.default_rng(7)
    for arch in space.sample_many(3, rng):
        counted = model_cost(build_model(arch), space.input_shape(arch))
        cost = arch_cost(space, arch)
        assert (cost.params, cost.macs) == (counted.params, counted.macs)


def test_closed_form_matches_published_counts(data_dir) -> None:
    """The DyNAS-T table lists params and MACs measured upstream: the counts reproduce them."""
    import pandas as pd

    df = pd.read_csv(data_dir / "ofa_mbv3" / "imagenet_accuracy_dynast.csv").iloc[::97]
    space = get_space("ofa-mbv3")
    for arch, params, macs in zip(df.arch, df.params, df.macs, strict=True):
        cost = arch_cost(space, space.from_string(arch))
        assert (cost.params, cost.macs) == (int(params), int(macs))


def test_other_spaces_fall_back_to_building() -> None:
    space = get_space("nb201")
    assert not closed_form_supported(space)
    arch = space.sample(0)
    counted = model_cost(build_model(arch), space.input_shape(arch))
    assert arch_cost(space, arch).macs == counted.macs
