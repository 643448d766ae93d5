"""Supernet of Once-for-All's ProxylessNAS w1.3 space (``proxylessnas``).

Extraction gives the standalone network of the ProxylessNAS builder with the same output, the
largest member is the whole supernet, one training step touches only the member's slices, and
``hsconas supernet train proxylessnas --data digits`` runs (grey-scale stem).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from supernet_helpers import randomise_bn
from torch import nn

from hsconas.accuracy import extract_subnet
from hsconas.accuracy.checkpoint import load_trained
from hsconas.cli.main import main
from hsconas.nn import build_model, count_params
from hsconas.nn.supernet import ElasticMBConvSupernet, build_supernet, supernet_spaces
from hsconas.space import Architecture

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def supernet() -> ElasticMBConvSupernet:
    torch.manual_seed(0)
    sn = build_supernet("proxylessnas", num_classes=10)
    assert isinstance(sn, ElasticMBConvSupernet)
    randomise_bn(sn)
    return sn.eval()


def _slot(sn: ElasticMBConvSupernet, unit: int, layer: int) -> int:
    """Supernet block index of slot ``layer`` (from 0) of unit ``unit`` (from 0)."""
    return 1 + sum(u.max_depth for u in sn.space.macro.units[:unit]) + layer


def test_proxylessnas_is_a_supernet_space() -> None:
    assert "proxylessnas" in supernet_spaces()
    # the macro spaces of single published nets have no supernet
    with pytest.raises(NotImplementedError, match="supernets exist for"):
        build_supernet("proxylessnas-mobile")


def test_extracted_members_equal_the_supernet(supernet: ElasticMBConvSupernet) -> None:
    sn = supernet
    rng = np.random.default_rng(0)
    archs = [sn.largest(), sn.smallest(), *(sn.sample(rng) for _ in range(4))]
    x = torch.randn(2, 3, 32, 32)
    outputs = []
    for arch in archs:
        net = extract_subnet(sn, arch)
        assert type(net).__name__ == "MobileNetFamilyNet"
        assert count_params(net) == count_params(build_model(arch, num_classes=10))
        with torch.no_grad():
            out = sn(x, arch)
            assert (out - net(x)).abs().max().item() < 1e-5
        outputs.append(out)
    # members differ, so the agreement above is not that of a constant output
    assert (outputs[0] - outputs[1]).abs().max().item() > 1e-3


def test_largest_member_is_the_whole_supernet(supernet: ElasticMBConvSupernet) -> None:
    sn = supernet
    big = build_model(sn.largest(), num_classes=10)
    assert count_params(sn) == count_params(big) == 6_293_706
    # same parameter and buffer names: the ProxylessNAS head (no final expand, feature mix
    # with BN) and every slot of the largest member
    assert set(sn.state_dict()) == set(big.state_dict())
    assert isinstance(sn.final_expand, nn.Identity)
    small = build_model(sn.smallest(), num_classes=10)
    assert count_params(small) < count_params(big)


def test_elastic_depth_kernel_and_expand_slice_the_slots(
    supernet: ElasticMBConvSupernet,
) -> None:
    sn = supernet
    small = extract_subnet(sn, sn.smallest())
    # block 0 is the fixed k3 e1 block (40 -> 24, no expansion convolution)
    assert torch.equal(small.blocks[0].depthwise.conv.weight, sn.blocks[0].depthwise.conv.weight)
    # depth 2 of 4: standalone block 3 is unit 2's first slot, supernet block 5
    assert _slot(sn, 1, 0) == 5
    mid = small.blocks[3].mid_channels  # make_divisible(32 * 3, 8) = 96
    assert mid == 96
    assert torch.equal(
        small.blocks[3].project.conv.weight, sn.blocks[5].project.conv.weight[:, :mid]
    )
    assert torch.equal(
        small.blocks[3].expand.conv.weight, sn.blocks[5].expand.conv.weight[:mid, :32]
    )
    # kernel 3: the centre of the 7x7 kernel
    assert torch.equal(
        small.blocks[3].depthwise.conv.weight, sn.blocks[5].depthwise.conv.weight[:mid, :, 2:5, 2:5]
    )


def test_forward_keeps_no_active_subnet_state(supernet: ElasticMBConvSupernet) -> None:
    sn = supernet
    a, b = sn.largest(), sn.smallest()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        first = sn(x, a)
        sn(x, b)
        assert torch.equal(sn(x, a), first)


def _member_with_short_units(sn: ElasticMBConvSupernet) -> Architecture:
    rng = np.random.default_rng(3)
    for _ in range(50):
        arch = sn.sample(rng)
        if min(sn.space.depths(arch)[:5]) < 4 and max(sn.space.depths(arch)[:5]) > 2:
            return arch
    raise AssertionError("no sampled member with a unit shorter than 4 layers")


def test_training_step_updates_only_the_members_weights() -> None:
    torch.manual_seed(0)
    sn = build_supernet("proxylessnas", num_classes=10)
    assert isinstance(sn, ElasticMBConvSupernet)
    arch = _member_with_short_units(sn)
    before = {k: v.detach().clone() for k, v in sn.state_dict().items()}
    sn.train()
    opt = torch.optim.SGD(sn.parameters(), lr=0.5)
    loss = nn.functional.cross_entropy(sn(torch.randn(4, 3, 16, 16), arch), torch.arange(4))
    loss.backward()
    opt.step()
    after = sn.state_dict()

    def changed(name: str) -> bool:
        return not torch.equal(before[name], after[name])

    assert changed("first_conv.conv.weight") and changed("classifier.weight")
    assert changed("feature_mix.conv.weight")
    depths = sn.space.depths(arch)
    layers = sn.space.layers(arch)
    channels = sn.space.macro.first_width
    for i, unit in enumerate(sn.space.macro.units):
        for j in range(unit.max_depth):
            k = _slot(sn, i, j)
            prefix = f"blocks.{k}."
            if j >= depths[i]:  # an unused slot: nothing changes, not even BN statistics
                assert not any(changed(n) for n in before if n.startswith(prefix)), (i, j)
                continue
            kernel, expand = layers[i][j]
            mid = sn.space.macro.mid_channels(channels, float(expand))
            lo = (7 - kernel) // 2
            dw = prefix + "depthwise.conv.weight"
            delta = (after[dw] - before[dw]).abs()
            assert delta[:mid, :, lo : lo + kernel, lo : lo + kernel].sum() > 0, (i, j)
            outside = delta.clone()
            outside[:mid, :, lo : lo + kernel, lo : lo + kernel] = 0
            assert outside.sum() == 0, (i, j)  # other channels and the kernel's rim
            ex = prefix + "expand.conv.weight"
            ex_delta = (after[ex] - before[ex]).abs()
            assert ex_delta[:mid, :channels].sum() > 0 and ex_delta[mid:].sum() == 0
            rv = after[prefix + "expand.bn.running_var"]
            assert torch.equal(rv[mid:], before[prefix + "expand.bn.running_var"][mid:])
            assert not torch.equal(rv[:mid], before[prefix + "expand.bn.running_var"][:mid])
            channels = unit.width


def test_grey_scale_stem_for_digits() -> None:
    torch.manual_seed(0)
    sn = build_supernet("proxylessnas", num_classes=10, in_channels=1)
    assert isinstance(sn, ElasticMBConvSupernet)
    assert sn.config() == {"space": "proxylessnas", "num_classes": 10, "in_channels": 1}
    randomise_bn(sn)
    sn.eval()
    x = torch.randn(3, 1, 8, 8)  # digits' size: the stride-2 layers bottom out at 1x1
    for arch in (sn.largest(), sn.smallest()):
        net = extract_subnet(sn, arch)
        with torch.no_grad():
            assert (sn(x, arch) - net(x)).abs().max().item() < 1e-5
    rebuilt = build_supernet(**sn.config())
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in sn.state_dict().items()
    }
    # supernets of spaces with fixed input channels refuse another channel count
    with pytest.raises(ValueError, match="3-channel"):
        build_supernet("nb201", in_channels=1)


def test_cli_supernet_train_proxylessnas_on_digits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sn"
    argv = ["supernet", "train", "proxylessnas", "--data", "digits", "--subset", "96"]
    argv += ["--batch-size", "32", "--epochs", "1", "--out", str(out)]
    argv += ["--store", str(tmp_path / "s.db"), "--no-progress", "--json"]
    assert main(argv) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["epoch"] == 1.0 and 0.0 <= last["val_acc_largest"] <= 1.0
    model, _ = load_trained(out)
    assert isinstance(model, ElasticMBConvSupernet) and model.space.name == "proxylessnas"
    arch = "proxylessnas:r128|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3"
    assert main(["supernet", "eval", str(out), arch, "--json", "--calib-images", "32"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.0 <= row["top1"] <= 1.0
