"""MobileNet-family spaces: ofa-mbv3 (w1.0, w1.2), proxylessnas (w1.3), original ProxylessNAS macros."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hsconas.errors import ArchitectureFormatError, InvalidArchitectureError
from hsconas.nn import build_model
from hsconas.nn.blocks import MBConv, make_divisible
from hsconas.nn.counting import count_params
from hsconas.space import get_space
from hsconas.spaces.ofa_mbv3 import ElasticMBConvSpace
from hsconas.spaces.proxylessnas import ProxylessMacroSpace

ELASTIC = ("ofa-mbv3", "ofa-mbv3-w1.2", "proxylessnas")
ORIGINAL = ("proxylessnas-mobile", "proxylessnas-mobile14", "proxylessnas-cpu", "proxylessnas-gpu")
ALL = ELASTIC + ORIGINAL


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def elastic(name: str) -> ElasticMBConvSpace:
    space = get_space(name)
    assert isinstance(space, ElasticMBConvSpace)
    return space


def test_make_divisible_matches_published_widths() -> None:
    assert [make_divisible(b * 1.2) for b in (16, 24, 40, 80, 112, 160, 960, 1280)] == [
        24, 32, 48, 96, 136, 192, 1152, 1536,
    ]  # fmt: skip
    assert [make_divisible(b * 1.3) for b in (32, 16, 24, 40, 80, 96, 192, 320, 1280)] == [
        40, 24, 32, 56, 104, 128, 248, 416, 1664,
    ]  # fmt: skip


def test_make_divisible_rounds_to_a_near_multiple_losing_at_most_ten_percent() -> None:
    for tenths in range(10, 20_000, 7):
        v = tenths / 10
        r = make_divisible(v)
        assert r % 8 == 0 and r >= 8
        assert r >= 0.9 * v  # never drops more than 10%
        assert abs(r - v) <= 8 or v < 8  # and stays within one step of the value


@pytest.mark.parametrize(
    ("name", "stem", "widths", "head"),
    [
        ("ofa-mbv3", 16, (24, 40, 80, 112, 160), 1280),
        ("ofa-mbv3-w1.2", 24, (32, 48, 96, 136, 192), 1536),
        ("proxylessnas", 40, (32, 56, 104, 128, 248, 416), 1664),
    ],
)
def test_macro_widths(name: str, stem: int, widths: tuple[int, ...], head: int) -> None:
    macro = elastic(name).macro
    assert macro.stem_width == stem
    assert tuple(u.width for u in macro.units) == widths
    assert macro.feature_mix_width == head


def test_ofa_mbv3_structure_se_and_activations() -> None:
    space = elastic("ofa-mbv3")
    units = space.macro.units
    assert [u.use_se for u in units] == [False, True, False, True, True]
    assert [u.act for u in units] == ["relu", "relu", "h_swish", "h_swish", "h_swish"]
    assert [u.stride for u in units] == [2, 2, 2, 1, 2]
    assert space.gene("resolution").choices == tuple(range(128, 225, 4))
    assert space.gene("u3.l2.kernel").choices == (3, 5, 7)
    assert space.gene("u3.l2.expand").choices == (3, 4, 6)
    prox = elastic("proxylessnas")
    assert prox.gene("u6.depth").choices == (1,)
    assert [u.stride for u in prox.macro.units] == [2, 2, 2, 1, 2, 1]


def test_size_counts_distinct_networks() -> None:
    per_unit = 9**2 + 9**3 + 9**4
    assert elastic("ofa-mbv3").size() == 25 * per_unit**5
    assert elastic("proxylessnas").size() == 25 * per_unit**5 * 9
    small = elastic("ofa-mbv3").restrict(
        {"resolution": [224], **{f"u{i}.depth": [2] for i in range(1, 6)}}
    )
    assert small.size() == 81**5
    # brute force on a tiny restriction: count distinct canonical architectures
    tiny_r = {f"u{i}.l{j}.kernel": [3] for i in range(1, 6) for j in range(1, 5)}
    tiny_r |= {f"u{i}.l{j}.expand": [3] for i in range(1, 6) for j in range(1, 5)}
    tiny_r |= {"resolution": [160, 224], "u1.l4.kernel": [3, 5]}
    tiny = elastic("ofa-mbv3").restrict(tiny_r)
    # unit 1: depth 2 or 3 (1 network each) or 4 (2 networks); other units: 3 depths
    assert tiny.size() == 2 * 4 * 3**4
    assert len(set(tiny.enumerate())) == tiny.size()
    assert set(tiny.sample_many(300, 0)) <= set(tiny.enumerate())
    orig = get_space("proxylessnas-mobile")
    assert orig.size() == 6**6 * 7**15


@pytest.mark.parametrize("name", ALL)
def test_sample_mutate_crossover_stay_inside(name: str) -> None:
    space = get_space(name)
    rng = np.random.default_rng(3)
    archs = space.sample_many(50, rng)
    for a, b in itertools.pairwise(archs):
        assert space.contains(a)
        m = space.mutate(a, rng)
        assert m != a and space.contains(m)
        c = space.crossover(a, b, rng)
        assert space.contains(c)
        assert space.from_string(space.to_string(c)) == c
    # inactive layers hold their defaults, so equal networks have one representation
    if isinstance(space, ElasticMBConvSpace):
        for a in archs:
            mask = space.active_mask(a.values)
            for g, v, on in zip(space.genes, a.values, mask, strict=True):
                assert on or v == g.default


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(ALL))
def test_string_and_json_round_trip(seed: int, name: str) -> None:
    space = get_space(name)
    a = space.sample(seed)
    assert space.from_string(space.to_string(a)) == a
    assert space.from_json(json.dumps(space.to_json(a))) == a


def test_canonical_string_form() -> None:
    space = elastic("ofa-mbv3")
    text = "r224|k3e4-k5e6|k3e3-k3e3-k7e6|k5e4-k3e3|k7e6-k5e3-k3e4-k3e3|k3e6-k5e4"
    a = space.from_string(text)
    assert space.to_string(a) == text
    assert space.depths(a) == (2, 3, 2, 4, 2)
    assert space.input_shape(a) == (3, 224, 224)
    assert space.as_dict(a)["u2.l3.kernel"] == 7
    assert space.as_dict(a)["u1.l3.kernel"] == 3  # inactive: default
    assert space.from_string(" " + text.replace("|", " | ") + " ") == a
    orig = get_space("proxylessnas-gpu")
    t2 = "k5e3-skip-skip-skip|k7e3-skip-skip-k3e3|k7e6-skip-skip-k5e3|k5e6-skip-k3e3-k5e3|k7e6-k7e6-k7e6-k5e6|k7e6"
    assert orig.to_string(orig.from_string(t2)) == t2


@pytest.mark.parametrize(
    ("text", "gene", "needle"),
    [
        ("r224|k4e4-k5e6|k3e3-k3e3|k5e4-k3e3|k7e6-k5e3|k3e6-k5e4", "u1.l1.kernel", "3, 5, 7"),
        ("r224|k3e4-k5e6|k3e3-k3e5|k5e4-k3e3|k7e6-k5e3|k3e6-k5e4", "u2.l2.expand", "3, 4, 6"),
        ("r225|k3e4-k5e6|k3e3-k3e3|k5e4-k3e3|k7e6-k5e3|k3e6-k5e4", "resolution", "128"),
        ("r224|k3e4|k3e3-k3e3|k5e4-k3e3|k7e6-k5e3|k3e6-k5e4", "u1.depth", "2, 3, 4"),
        ("r224|k3e4-k3e4-k3e4-k3e4-k3e4|k3e3-k3e3|k5e4|k7e6-k5e3|k3e6", "u1.depth", "2, 3, 4"),
    ],
)
def test_bad_strings_name_layer_and_choices(text: str, gene: str, needle: str) -> None:
    space = get_space("ofa-mbv3")
    with pytest.raises(InvalidArchitectureError) as info:
        space.from_string(text)
    assert info.value.gene == gene
    assert gene in str(info.value) and needle in str(info.value)


def test_malformed_strings() -> None:
    space = get_space("ofa-mbv3")
    with pytest.raises(ArchitectureFormatError, match="5 units"):
        space.from_string("r224|k3e4-k5e6")
    with pytest.raises(ArchitectureFormatError, match="resolution"):
        space.from_string("224|k3e4-k5e6|k3e3-k3e3|k5e4-k3e3|k7e6-k5e3|k3e6-k5e4")
    with pytest.raises(ArchitectureFormatError, match=r"u3\.l2.*k3x4") as info:
        space.from_string("r224|k3e4-k5e6|k3e3-k3e3|k5e4-k3x4|k7e6-k5e3|k3e6-k5e4")
    assert "{3,5,7}" in str(info.value)
    orig = get_space("proxylessnas-mobile")
    good = orig.to_string(orig.sample(0))
    with pytest.raises(InvalidArchitectureError) as err:
        orig.from_string("skip" + good[4:] if good.startswith("k") else good)
    assert err.value.gene == "u1.l1.op" and "skip" in str(err.value)
    with pytest.raises(ArchitectureFormatError, match="unit 2"):
        orig.from_string(good.replace("|", "-skip|", 2).replace("-skip|", "|", 1))


def test_features_have_numeric_columns() -> None:
    space = elastic("ofa-mbv3")
    a = space.from_string("r160|k3e4-k5e6|k3e3-k3e3-k7e6|k5e4-k3e3|k7e6-k5e3-k3e4-k3e3|k3e6-k5e4")
    f = space.features(a)
    names = space.feature_names
    assert f.shape == (len(names),)
    col = dict(zip(names, f, strict=True))
    assert col["resolution"] == 160 and col["resolution=160"] == 1
    assert [col[f"u{i}.depth"] for i in range(1, 6)] == [2, 3, 2, 4, 2]
    assert col["u1.l3.kernel=3"] == 0  # inactive layer: all-zero one-hot
    assert space.feature_matrix([a, a]).shape == (2, len(names))


@pytest.mark.parametrize("name", ALL)
def test_builder_forward_and_options(name: str) -> None:
    space = get_space(name)
    arch = space.sample(11)
    torch.manual_seed(0)
    model = build_model(arch, num_classes=7).eval()
    r = 64  # resolution-agnostic: any input size works
    with torch.inference_mode():
        out = model(torch.randn(2, 3, r, r))
    assert out.shape == (2, 7)
    assert isinstance(space, ElasticMBConvSpace | ProxylessMacroSpace)
    mbconvs = [m for m in model.modules() if isinstance(m, MBConv)]
    specs = space.block_specs(arch)
    assert len(mbconvs) == len(specs)
    for m, s in zip(mbconvs, specs, strict=True):
        assert (m.in_channels, m.out_channels, m.kernel_size, m.stride) == (
            s.in_channels, s.out_channels, s.kernel_size, s.stride,
        )  # fmt: skip
        assert m.use_residual == s.residual
        assert m.use_se == s.use_se


def test_deeper_and_wider_choices_add_parameters() -> None:
    space = elastic("ofa-mbv3")
    small = space.from_string("r224|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3")
    deeper = space.from_string("r224|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3-k3e3")
    wider = space.from_string("r224|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e6")
    p = [count_params(build_model(a)) for a in (small, deeper, wider)]
    assert p[0] < p[1] and p[0] < p[2]
    # 1000-class head: feature mix 960x1280 (no BN, no bias) and a 1280x1000 linear
    n_cls = count_params(build_model(small, num_classes=10))
    assert p[0] - n_cls == 1280 * 990 + 990


def test_mbconv_block_rules() -> None:
    b = MBConv(24, 24, 5, 1, 4, act="h_swish", use_se=True)
    assert b.use_residual and b.mid_channels == 96
    assert not MBConv(24, 32, 3, 1, 3).use_residual
    assert not MBConv(24, 24, 3, 2, 3).use_residual
    with pytest.raises(ValueError, match="residual"):
        MBConv(24, 32, 3, 1, 3, residual=True)
    x = torch.randn(1, 24, 9, 9)
    assert b(x).shape == (1, 24, 9, 9)
    assert MBConv(24, 40, 7, 2, 6)(x).shape == (1, 40, 5, 5)
