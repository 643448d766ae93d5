"""Contract tests run over every registered search space and its PyTorch builder."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from hsconas.space import get_space, list_spaces

SPACES = list_spaces()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("name", SPACES)
def test_hundred_samples_round_trip_and_stay_inside(name: str) -> None:
    space = get_space(name)
    rng = np.random.default_rng(2024)
    archs = space.sample_many(100, rng)
    assert archs == space.sample_many(100, np.random.default_rng(2024))
    for a in archs:
        assert a.space == name
        assert space.contains(a)
        text = space.to_string(a)
        assert space.from_string(text) == a
        assert space.from_json(json.loads(json.dumps(space.to_json(a)))) == a
    for a, b in itertools.pairwise(archs):
        m = space.mutate(a, rng)
        assert space.contains(m) and m != a
        assert space.contains(space.crossover(a, b, rng))
    assert len({space.to_string(a) for a in archs}) == len(set(archs))


@pytest.mark.parametrize("name", SPACES)
def test_builder_forward_shape(name: str) -> None:
    from hsconas.nn import build_model

    space = get_space(name)
    torch.manual_seed(0)
    for arch in space.sample_many(3, np.random.default_rng(7)):
        try:
            model = build_model(arch, num_classes=10).eval()
        except NotImplementedError:
            pytest.skip(f"no PyTorch builder registered for space {name!r} yet")
        shape = space.input_shape(arch)
        assert len(shape) == 3 and all(d > 0 for d in shape)
        with torch.inference_mode():
            out = model(torch.randn(1, *shape))
        assert out.shape == (1, 10), space.to_string(arch)
        assert torch.isfinite(out).all()
