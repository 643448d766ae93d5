"""Supernets: weight sharing by slicing, extraction equals the supernet, BN recalibration."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from supernet_helpers import randomise_bn
from torch import nn

from hsconas.accuracy import evaluate_subnets, extract_subnet, recalibrate_bn
from hsconas.data import load_dataset
from hsconas.nn import build_model, count_params
from hsconas.nn.supernet import HSCoNASSupernet, NB201Supernet, build_supernet
from hsconas.nn.supernet.slicing import center_crop_kernel, fit_tensor
from hsconas.space import get_space

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits_supernet() -> HSCoNASSupernet:
    torch.manual_seed(0)
    sn = build_supernet("hsconas-digits")
    assert isinstance(sn, HSCoNASSupernet)
    randomise_bn(sn)
    return sn.eval()


def test_extracted_subnet_equals_supernet_output(digits_supernet: HSCoNASSupernet) -> None:
    sn = digits_supernet
    rng = np.random.default_rng(0)
    archs = [sn.largest(), sn.smallest(), *(sn.sample(rng) for _ in range(6))]
    x = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    for arch in archs:
        net = extract_subnet(sn, arch)
        assert type(net).__name__ == "HSCoNASNet"  # the builder's module, exportable as is
        with torch.no_grad():
            diff = (sn(x, arch) - net(x)).abs().max().item()
        assert diff < 1e-5, (sn.space.to_string(arch), diff)


def test_weights_are_shared_by_leading_slices_and_kernel_crops(
    digits_supernet: HSCoNASSupernet,
) -> None:
    sn = digits_supernet
    # The supernet is exactly as large as its widest member.
    assert count_params(sn) == count_params(build_model(sn.largest()))
    small = sn.smallest()
    net = extract_subnet(sn, small)
    plan = get_space("hsconas-digits").channel_plan(small)  # type: ignore[attr-defined]
    lp = plan[0]
    assert (lp.op, lp.kernel) == ("mb_k3_e3", 3)
    full_dw = sn.layers[0].depthwise.conv.weight  # (max_mid, 1, 7, 7)
    got_dw = net.layers[0].depthwise.conv.weight  # (mid, 1, 3, 3)
    assert got_dw.shape == (lp.mid_channels, 1, 3, 3)
    assert torch.equal(got_dw, full_dw[: lp.mid_channels, :, 2:5, 2:5])
    full_pw = sn.layers[0].expand.conv.weight
    assert torch.equal(
        net.layers[0].expand.conv.weight, full_pw[: lp.mid_channels, : lp.in_channels]
    )
    assert torch.equal(
        net.layers[0].expand.bn.running_var, sn.layers[0].expand.bn.running_var[: lp.mid_channels]
    )
    # skip layers bypass: the standalone has identities there
    assert isinstance(net.layers[1], nn.Identity) and plan[1].op == "skip"


def test_forward_keeps_no_active_subnet_state(digits_supernet: HSCoNASSupernet) -> None:
    sn = digits_supernet
    a, b = sn.largest(), sn.smallest()
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        first = sn(x, a)
        sn(x, b)
        assert torch.equal(sn(x, a), first)


def test_member_gradient_touches_only_its_slices() -> None:
    torch.manual_seed(0)
    sn = build_supernet("hsconas-digits")
    small = sn.smallest()
    sn.train()
    loss = sn(torch.randn(4, 1, 8, 8), small).square().mean()
    loss.backward()
    plan = sn.space.channel_plan(small)
    grad = sn.layers[0].depthwise.conv.weight.grad
    mid = plan[0].mid_channels
    assert grad is not None and grad[:mid, :, 2:5, 2:5].abs().sum() > 0
    outside = grad.clone()
    outside[:mid, :, 2:5, 2:5] = 0
    assert outside.abs().sum() == 0
    assert sn.layers[1].expand.conv.weight.grad is None  # a skipped layer
    # training-mode BN updated the running statistics of the member's channels only
    rv = sn.layers[0].expand.bn.running_var
    assert not torch.all(rv[:mid] == 1.0) and torch.all(rv[mid:] == 1.0)


def test_nb201_supernet_extraction_and_sharing() -> None:
    torch.manual_seed(0)
    sn = build_supernet("nb201", channels=4, cells_per_stage=1)
    assert isinstance(sn, NB201Supernet)
    randomise_bn(sn)
    sn.eval()
    rng = np.random.default_rng(0)
    x = torch.randn(2, 3, 16, 16)
    archs = [sn.sample(rng) for _ in range(4)]
    for arch in archs:
        net = extract_subnet(sn, arch)
        with torch.no_grad():
            assert (sn(x, arch) - net(x)).abs().max().item() < 1e-5
    # two members choosing nor_conv_3x3 on edge 0 share that weight
    a = get_space("nb201").make(["nor_conv_3x3"] + ["skip_connect"] * 5)
    b = get_space("nb201").make(["nor_conv_3x3"] + ["avg_pool_3x3"] * 5)
    wa = extract_subnet(sn, a).cells[0].edges[0].op[1].weight
    wb = extract_subnet(sn, b).cells[0].edges[0].op[1].weight
    assert torch.equal(wa, wb)


def test_build_supernet_rejects_spaces_without_one() -> None:
    with pytest.raises(NotImplementedError, match="supernets exist for"):
        build_supernet("fbnet")


def test_restricted_space_supernet_samples_inside_the_restriction() -> None:
    space = get_space("hsconas-digits").restrict({"u1.l1.op": ["mb_k3_e3"]})
    sn = build_supernet(space)
    rng = np.random.default_rng(0)
    assert all(sn.space.as_dict(sn.sample(rng))["u1.l1.op"] == "mb_k3_e3" for _ in range(10))
    rebuilt = build_supernet(**sn.config())
    assert rebuilt.space.restriction() == space.restriction()


def test_fit_tensor_and_crop() -> None:
    w = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).view(2, 1, 5, 5)
    assert torch.equal(center_crop_kernel(w, 3), w[:, :, 1:4, 1:4])
    assert torch.equal(fit_tensor(w, (1, 1, 3, 3)), w[:1, :, 1:4, 1:4])
    with pytest.raises(ValueError):
        fit_tensor(w, (3, 1, 5, 5))
    with pytest.raises(ValueError):
        center_crop_kernel(w, 4)


def test_recalibrate_bn_computes_the_batch_statistics() -> None:
    torch.manual_seed(0)
    net = build_model(get_space("hsconas-digits").sample(np.random.default_rng(0)))
    batches = [torch.randn(16, 1, 8, 8) for _ in range(3)]
    recalibrate_bn(net, batches)
    assert not net.training
    with torch.no_grad():
        stem_out = torch.cat([net.stem.conv(b) for b in batches])  # (48, 16, 8, 8)
    expected = stem_out.mean(dim=(0, 2, 3))
    assert torch.allclose(net.stem.bn.running_mean, expected, atol=1e-5)
    assert net.stem.bn.momentum == 0.1  # restored


def test_evaluate_subnets_on_digits_untrained_is_near_chance() -> None:
    torch.manual_seed(0)
    sn = build_supernet("hsconas-digits")
    data = load_dataset("digits", subset=300, val_fraction=0.3, seed=0)
    accs = evaluate_subnets(sn, [sn.largest(), sn.smallest()], data, calib_images=64)
    assert len(accs) == 2 and all(0.0 <= a <= 0.35 for a in accs)


def test_ofa_mbv3_supernet_elastic_depth_kernel_expand() -> None:
    torch.manual_seed(0)
    sn = build_supernet("ofa-mbv3", num_classes=10)
    randomise_bn(sn)
    sn.eval()
    rng = np.random.default_rng(0)
    x = torch.randn(2, 3, 32, 32)
    for arch in [sn.largest(), sn.smallest(), sn.sample(rng)]:
        net = extract_subnet(sn, arch)
        assert type(net).__name__ == "MobileNetFamilyNet"
        with torch.no_grad():
            assert (sn(x, arch) - net(x)).abs().max().item() < 1e-5
    assert count_params(sn) == count_params(build_model(sn.largest(), num_classes=10))
    # Elastic depth: the smallest member keeps the first 2 of 4 slots per unit, so its block 3
    # (after the fixed block 0 and unit 1's blocks 1-2) is unit 2's first slot, supernet block 5.
    small = extract_subnet(sn, sn.smallest())
    assert torch.equal(
        small.blocks[3].project.conv.weight,
        sn.blocks[5].project.conv.weight[:, : small.blocks[3].mid_channels],
    )
