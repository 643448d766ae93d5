"""The ``hsconas`` space family and its builder."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from hsconas.errors import ArchitectureFormatError, InvalidArchitectureError
from hsconas.nn import build_model, count_params
from hsconas.space import get_space
from hsconas.spaces.hsconas_space import HSCONAS_OPS, HSCoNASSpace

VARIANTS = ("hsconas", "hsconas-cifar", "hsconas-digits")


def get(name: str) -> HSCoNASSpace:
    space = get_space(name)
    assert isinstance(space, HSCoNASSpace)
    return space


@pytest.mark.parametrize("name", VARIANTS)
def test_hundred_samples_round_trip_and_operators_stay_inside(name: str) -> None:
    space = get(name)
    rng = np.random.default_rng(1)
    archs = space.sample_many(100, rng)
    for a in archs:
        assert space.contains(a)
        assert space.from_string(space.to_string(a)) == a
        assert space.from_json(json.dumps(space.to_json(a))) == a
        d = space.as_dict(a)
        for i in range(1, len(space.unit_depths) + 1):
            assert d[f"u{i}.l1.op"] != "skip"
        for layer in space.layer_names():
            if d[f"{layer}.op"] == "skip":  # inactive factor holds the default
                assert d[f"{layer}.factor"] == space.layer_factors[0]
    for a, b in itertools.pairwise(archs):
        m = space.mutate(a, rng)
        assert m != a and space.contains(m)
        assert space.contains(space.crossover(a, b, rng))


def test_variant_shapes() -> None:
    assert get("hsconas").input_shape(get("hsconas").sample(0)) == (3, 224, 224)
    assert get("hsconas-cifar").input_shape(get("hsconas-cifar").sample(0)) == (3, 32, 32)
    digits = get("hsconas-digits")
    assert digits.input_shape(digits.sample(0)) == (1, 8, 8)
    assert (digits.num_classes, digits.unit_widths, digits.unit_depths) == (
        10,
        (16, 24, 32),
        (2, 3, 3),
    )
    big = get("hsconas")
    assert big.unit_widths == (24, 32, 64, 112, 184, 352) and big.unit_strides == (2, 2, 2, 1, 2, 1)


def test_string_format_and_parse() -> None:
    space = get("hsconas-digits")
    text = (
        "w1.0,0.75,0.5|mb_k3_e6x0.75-skip|mb_k5_e3x1.0-mb_k7_e6x0.5-skip"
        "|mb_k3_e3x0.625-mb_k3_e3x0.875-mb_k7_e3x1.0"
    )
    arch = space.from_string(text)
    assert space.to_string(arch) == text
    d = space.as_dict(arch)
    assert d["u1.width"] == 1.0 and d["u2.width"] == 0.75 and d["u3.width"] == 0.5
    assert d["u1.l2.op"] == "skip"
    assert d["u2.l3.op"] == "skip" and d["u3.l1.factor"] == 0.625


def test_errors_name_layer_value_and_allowed() -> None:
    space = get("hsconas-digits")
    good = "w1.0,0.75,0.5|mb_k3_e6x0.75-skip|mb_k5_e3x1.0-mb_k7_e6x0.5-skip|mb_k3_e3x1.0-skip-skip"
    space.from_string(good)
    with pytest.raises(InvalidArchitectureError) as err:
        space.from_string(good.replace("|mb_k5_e3x1.0-", "|skip-"))
    assert err.value.gene == "u2.l1.op" and "skip" not in err.value.allowed
    assert "u2.l1.op" in str(err.value) and "mb_k7_e6" in str(err.value)
    with pytest.raises(InvalidArchitectureError) as err:
        space.from_string(good.replace("mb_k3_e6x0.75", "mb_k3_e6x0.6"))
    assert err.value.gene == "u1.l1.factor" and err.value.value == 0.6
    assert "0.625" in str(err.value)
    with pytest.raises(InvalidArchitectureError) as err:
        space.from_string(good.replace("mb_k7_e6", "mb_k9_e6"))
    assert err.value.gene == "u2.l2.op" and "mb_k9_e6" in str(err.value)
    with pytest.raises(InvalidArchitectureError) as err:
        space.from_string(good.replace("w1.0,0.75,", "w1.0,0.8,"))
    assert err.value.gene == "u2.width"
    with pytest.raises(ArchitectureFormatError, match="u2 needs 3"):
        space.from_string(good.replace("-mb_k7_e6x0.5", ""))
    with pytest.raises(ArchitectureFormatError):
        space.from_string("mb_k3_e6x0.75")
    # the cross-gene check also guards a gene list built by hand with skip first
    values = list(space.from_string(good).values)
    values[space.gene_names.index("u1.l1.op")] = "skip"
    with pytest.raises(InvalidArchitectureError):
        space._check(tuple(values))


def test_size_counts_distinct_networks() -> None:
    space = get("hsconas-digits")
    first, other = 6 * 5, 6 * 5 + 1
    assert space.size() == 3**3 * (first * other) * (first * other**2) ** 2
    tiny = HSCoNASSpace(
        "tiny", 8, 1, 10, 8, (8, 8), (1, 2), (1, 2), layer_factors=(0.5, 1.0), unit_factors=(1.0,)
    )
    small = tiny.restrict({"u1.l1.op": ["mb_k3_e3", "mb_k5_e6"], "u2.l2.op": ["mb_k3_e3", "skip"]})
    assert len(list(small.enumerate())) == small.size() == (2 * 2) * (6 * 2) * (1 * 2 + 1)


def test_channel_plan_scales_mid_channels_and_widths() -> None:
    space = get("hsconas")
    full = space.from_string(
        "w1.0,1.0,1.0,1.0,1.0,1.0|"
        + "|".join("-".join(["mb_k5_e6x1.0"] * d) for d in space.unit_depths)
    )
    plan = space.channel_plan(full)
    assert len(plan) == sum(space.unit_depths) == 21
    assert (plan[0].in_channels, plan[0].mid_channels, plan[0].out_channels) == (16, 96, 24)
    assert (plan[0].kernel, plan[0].stride, plan[0].input_size) == (5, 2, 112)
    assert plan[-1].out_channels == 352 and plan[-1].input_size == 7
    assert [p.stride for p in plan if p.stride == 2] == [2, 2, 2, 2]
    # Every channel count of a scaled network is at most the widest one (supernet slicing).
    scaled = space.sample(3)
    for small, big in zip(space.channel_plan(scaled), plan, strict=True):
        assert small.in_channels <= big.in_channels and small.out_channels <= big.out_channels
        assert small.mid_channels <= big.mid_channels
    half = space.from_string(
        "w0.5,1.0,1.0,1.0,1.0,1.0|mb_k3_e6x0.5-skip-skip-skip|"
        + "|".join("-".join(["mb_k5_e6x1.0"] * d) for d in space.unit_depths[1:])
    )
    hp = space.channel_plan(half)
    assert (hp[0].mid_channels, hp[0].out_channels) == (48, 16)  # 16*6*0.5, make_divisible(12)
    assert (hp[1].op, hp[1].mid_channels, hp[1].in_channels, hp[1].out_channels) == (
        "skip",
        0,
        16,
        16,
    )
    assert hp[4].in_channels == 16


def test_features_have_numeric_columns() -> None:
    space = get("hsconas-digits")
    arch = space.from_string(
        "w1.0,0.75,0.5|mb_k3_e6x0.75-skip|mb_k5_e3x1.0-mb_k7_e6x0.5-skip"
        "|mb_k3_e3x0.625-mb_k3_e3x0.875-mb_k7_e3x1.0"
    )
    names = space.feature_names
    feats = space.features(arch)
    assert feats.shape == (len(names),)
    col = dict(zip(names, feats, strict=True))
    assert col["u1.l1.op=mb_k3_e6"] == 1.0
    assert col["u1.l1:kernel"] == 3 and col["u1.l1:expand"] == pytest.approx(4.5)
    assert col["u1.l2:kernel"] == 0 and col["u1.l2:mid"] == 0
    assert col["u2.l2:kernel"] == 7 and col["u2.l2:mid"] == 72  # 24 in, e6, x0.5
    assert col["u3:channels"] == 16 and col["u2:channels"] == 24
    assert space.feature_matrix([arch, space.sample(0)]).shape == (2, len(names))
    assert len(set(names)) == len(names) and len(HSCONAS_OPS) == 7


@pytest.mark.parametrize("name", VARIANTS)
def test_build_and_forward(name: str) -> None:
    space = get(name)
    torch.manual_seed(0)
    n = 2 if name == "hsconas" else 4
    for arch in space.sample_many(n, np.random.default_rng(11)):
        model = build_model(arch).eval()
        with torch.inference_mode():
            out = model(torch.randn(1, *space.input_shape(arch)))
        assert out.shape == (1, space.num_classes)
        assert torch.isfinite(out).all()


def test_built_network_follows_channel_plan() -> None:
    space = get("hsconas-digits")
    arch = space.sample(4)
    model = build_model(arch, num_classes=3)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    depthwise = [c for c in convs if c.groups > 1]
    mids = [p.mid_channels for p in space.channel_plan(arch) if p.op != "skip"]
    assert [c.in_channels for c in depthwise] == mids
    kernels = [p.kernel for p in space.channel_plan(arch) if p.op != "skip"]
    assert [c.kernel_size[0] for c in depthwise] == kernels
    assert count_params(model) < 200_000  # small enough to train on digits in seconds
