"""The ``ofa-resnet50`` space and its builder."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from hsconas.errors import ArchitectureFormatError, InvalidArchitectureError
from hsconas.nn import build_model, count_macs, count_params
from hsconas.space import Architecture, get_space
from hsconas.space.channels import make_divisible
from hsconas.spaces.ofa_resnet import OFAResNetSpace

# Published torchvision ResNet-50 (7x7 stem, stride-2 1x1 downsample convs): 25,557,032 params and
# 4.09 GMACs at 224 (conv + linear multiply-accumulates: 4,089,184,256).
TV_RESNET50_PARAMS = 25_557_032
TV_RESNET50_MACS = 4_089_184_256


@pytest.fixture(scope="module")
def space() -> OFAResNetSpace:
    s = get_space("ofa-resnet50")
    assert isinstance(s, OFAResNetSpace)
    return s


def resnet50_genes(**overrides: object) -> dict[str, object]:
    genes: dict[str, object] = {"resolution": 224, "stem.depth": 2, "stem.w0": 1.0, "stem.w1": 1.0}
    for u, d in enumerate((3, 4, 6, 3), 1):
        genes[f"u{u}.depth"] = d
        genes[f"u{u}.width"] = 1.0
        for j in range(1, d + 1):
            genes[f"u{u}.b{j}.expand"] = 0.25
    genes.update(overrides)
    return genes


def test_hundred_samples_round_trip_and_operators_stay_inside(space: OFAResNetSpace) -> None:
    rng = np.random.default_rng(0)
    archs = space.sample_many(100, rng)
    for a in archs:
        assert space.contains(a)
        assert space.from_string(space.to_string(a)) == a
        assert space.from_json(json.dumps(space.to_json(a))) == a
        mask = space.active_mask(a.values)
        d = space.as_dict(a)
        for u in range(1, 5):
            depth = int(d[f"u{u}.depth"])
            for j in range(1, (4, 4, 6, 4)[u - 1] + 1):
                assert mask[space.gene_names.index(f"u{u}.b{j}.expand")] == (j <= depth)
    for a, b in itertools.pairwise(archs):
        m = space.mutate(a, rng)
        assert m != a and space.contains(m)
        assert space.contains(space.crossover(a, b, rng))


def test_string_is_readable(space: OFAResNetSpace) -> None:
    arch = space.make(resnet50_genes())
    assert space.to_string(arch) == (
        "r224|stem:d2,w1.0,1.0|u1:w1.0,e0.25,0.25,0.25|u2:w1.0,e0.25,0.25,0.25,0.25"
        "|u3:w1.0,e0.25,0.25,0.25,0.25,0.25,0.25|u4:w1.0,e0.25,0.25,0.25"
    )
    assert space.input_shape(arch) == (3, 224, 224)


def test_size_counts_distinct_networks(space: OFAResNetSpace) -> None:
    per_unit = [
        3 * sum(3**d for d in range(lo, hi + 1)) for lo, hi in ((2, 4), (2, 4), (4, 6), (2, 4))
    ]
    expected = 25 * 2 * 3 * 3 * math.prod(per_unit)
    assert space.size() == expected
    small = space.restrict(
        {
            "resolution": [224],
            "stem.w0": [1.0],
            "stem.w1": [1.0],
            **{f"u{u}.width": [1.0] for u in range(1, 5)},
            **{f"u{u}.depth": [(2, 2, 4, 2)[u - 1]] for u in range(1, 5)},
            **{
                f"u{u}.b{j}.expand": [0.25]
                for u in range(2, 5)
                for j in range(1, 7)
                if j <= 4 or u == 3
            },
            "u1.depth": [2, 3],
        }
    )
    listed = list(small.enumerate())
    assert len(listed) == small.size() == 2 * (3**2 + 3**3)


def test_errors_name_layer_value_and_allowed(space: OFAResNetSpace) -> None:
    with pytest.raises(InvalidArchitectureError) as err:
        space.make(resnet50_genes(**{"u2.width": 0.5}))
    assert err.value.gene == "u2.width" and err.value.value == 0.5
    assert "u2.width" in str(err.value) and "0.65" in str(err.value)
    text = space.to_string(space.make(resnet50_genes()))
    with pytest.raises(InvalidArchitectureError) as err:
        space.from_string(text.replace("u3:w1.0,e0.25,", "u3:w1.0,e0.3,", 1))
    assert err.value.gene == "u3.b1.expand" and "0.2, 0.25, 0.35" in str(err.value)
    with pytest.raises(InvalidArchitectureError) as err:
        space.from_string(text.replace("u1:w1.0,e0.25,0.25,0.25", "u1:w1.0,e0.25", 1))
    assert err.value.gene == "u1.depth" and "2, 3, 4" in str(err.value)
    with pytest.raises(InvalidArchitectureError) as err:
        space.from_string(text.replace("r224", "r226"))
    assert err.value.gene == "resolution"
    with pytest.raises(ArchitectureFormatError):
        space.from_string("r224|u1:w1.0")


def test_channel_rounding_follows_ofa(space: OFAResNetSpace) -> None:
    arch = space.make(resnet50_genes(**{"stem.w0": 0.65, "stem.w1": 0.8, "u4.width": 0.65}))
    assert space.stem_channels(arch) == (24, 48)  # OFA: mid_input_channel 24, input_channel 48
    plan = space.block_plan(arch)
    assert plan[-1][2] == make_divisible(2048 * 0.65, 8) == 1328
    assert plan[-1][1] == make_divisible(round(1328 * 0.25), 8) == 336
    assert [b[3] for b in plan] == [1, 1, 1, 2, 1, 1, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1]


@pytest.fixture(scope="module")
def resnet50(space: OFAResNetSpace) -> torch.nn.Module:
    return build_model(space.make(resnet50_genes()))


def test_resnet50_config_matches_published_counts(resnet50: torch.nn.Module) -> None:
    model = resnet50
    params = count_params(model)
    macs = count_macs(model, (3, 224, 224))
    # OFA's stem (3x3 convs 3->32 s2, 32->32 residual, 32->64, each + BN) replaces torchvision's
    # 7x7 conv 3->64 + BN; everything else has the same parameters and MACs.
    stem_params = (3 * 9 * 32 + 64) + (32 * 9 * 32 + 64) + (32 * 9 * 64 + 128) - (3 * 49 * 64 + 128)
    stem_macs = (3 * 9 * 32 + 32 * 9 * 32 + 32 * 9 * 64 - 3 * 49 * 64) * 112 * 112
    assert params == TV_RESNET50_PARAMS + stem_params  # 25,576,264: 0.02M over torchvision
    assert macs == TV_RESNET50_MACS + stem_macs  # 4.33 G: the deep stem adds 0.24 GMACs
    assert abs(params - TV_RESNET50_PARAMS) < 0.5e6


def test_shallow_stem_and_smaller_resolution_cost_less(
    space: OFAResNetSpace, resnet50: torch.nn.Module
) -> None:
    full = resnet50
    shallow = build_model(space.make(resnet50_genes(**{"stem.depth": 0})))
    assert count_params(full) - count_params(shallow) == 32 * 9 * 32 + 64
    small = space.make(resnet50_genes(resolution=128))
    assert space.input_shape(small) == (3, 128, 128)
    assert count_macs(full, (3, 128, 128)) < count_macs(full, (3, 224, 224)) / 2.5


def test_build_and_forward_samples(space: OFAResNetSpace) -> None:
    torch.manual_seed(0)
    for arch in space.sample_many(2, np.random.default_rng(5)):
        model = build_model(arch, num_classes=7).eval()
        with torch.inference_mode():
            out = model(torch.randn(1, *space.input_shape(arch)))
        assert out.shape == (1, 7)
    with pytest.raises(TypeError, match="unknown options"):
        build_model(space.sample(0), width=2)


def _blocks(space: OFAResNetSpace, arch: Architecture) -> set[tuple[object, ...]]:
    """What keys an OFA-ResNet network's LUT blocks: stem (depth, mid, out), every bottleneck's
    (in, mid, out, stride) at its unit, the head's width (one resolution)."""
    plan = space.block_plan(arch)
    stem = ("stem", space.as_dict(arch)["stem.depth"], *space.stem_channels(arch))
    return {stem, *plan, ("head", plan[-1][2])}


def test_block_cover_holds_every_block_that_sampling_finds() -> None:
    space = get_space("ofa-resnet50").at_resolution(128)
    assert isinstance(space, OFAResNetSpace)
    cover = space.block_cover()
    assert len(cover) == 27 and all(space.contains(a) for a in cover)
    covered = set().union(*(_blocks(space, a) for a in cover))
    rng = np.random.default_rng(0)
    sampled = set().union(*(_blocks(space, space.sample(rng)) for _ in range(3000)))
    assert sampled == covered and len(covered) == 159
    # a restricted space: the cover keeps to its choices and still holds all of its blocks
    small = space.restrict({"u2.width": [0.65, 1.0], "u3.b1.expand": [0.35]})
    assert isinstance(small, OFAResNetSpace)
    small_cover = small.block_cover()
    assert all(small.contains(a) for a in small_cover)
    covered = set().union(*(_blocks(small, a) for a in small_cover))
    assert set().union(*(_blocks(small, small.sample(rng)) for _ in range(1000))) <= covered
