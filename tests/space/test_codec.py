"""GeneCodec.valid: the fast membership test agrees with SearchSpace.contains."""

from __future__ import annotations

import numpy as np
import pytest

import hsconas.spaces  # noqa: F401
from hsconas.space import get_space
from hsconas.space.codec import GeneCodec


@pytest.mark.parametrize("name", ["ofa-mbv3", "ofa-resnet50", "hsconas", "nb201"])
def test_valid_agrees_with_contains_on_random_codes(name: str) -> None:
    space = get_space(name)
    codec = GeneCodec(space)
    rng = np.random.default_rng(0)
    codes = np.stack([rng.integers(0, n, 600) for n in codec.n_choices], axis=1)
    last = space.genes[-1]
    shrunk = space.restrict(
        {last.name: [last.choices[0]], space.genes[1].name: space.genes[1].choices[:1]}
    )
    for target in (space, shrunk):
        masks = codec.allowed_mask(target)
        in_masks = np.all([m[codes[:, g]] for g, m in enumerate(masks)], axis=0)
        slow = in_masks & np.array([target.contains(a) for a in codec.decode(codes)])
        fast = codec.valid(codes, target)
        assert np.array_equal(fast, slow)
        assert 0 < fast.sum() < len(codes) or target is space
