"""Supernet of Once-for-All's ResNet50 space (``ofa-resnet50``).

Extraction gives the standalone network of the ResNet builder with the same output, the largest
member is the whole supernet, one training step touches only the member's slices and slots, and
``hsconas supernet train ofa-resnet50 --data digits`` runs (slow: a 46M-parameter checkpoint).
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
from hsconas.nn.supernet import OFAResNetSupernet, build_supernet, supernet_spaces
from hsconas.space import Architecture
from hsconas.spaces.ofa_resnet import RESNET_MAX_DEPTHS

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def supernet() -> OFAResNetSupernet:
    torch.manual_seed(0)
    sn = build_supernet("ofa-resnet50", num_classes=10)
    assert isinstance(sn, OFAResNetSupernet)
    randomise_bn(sn)
    return sn.eval()


def _member(sn: OFAResNetSupernet, stem_depth: int, seed: int) -> Architecture:
    """A sampled member with the given stem depth and at least one unit below its max depth."""
    rng = np.random.default_rng(seed)
    space = sn.space
    for _ in range(100):
        arch = sn.sample(rng)
        d = space.as_dict(arch)
        if d["stem.depth"] == stem_depth and d["u3.depth"] < 6 and d["u1.width"] != 1.0:
            return arch
    raise AssertionError("no such member sampled")


def test_ofa_resnet50_is_a_supernet_space() -> None:
    assert "ofa-resnet50" in supernet_spaces()


def test_extracted_members_equal_the_supernet(supernet: OFAResNetSupernet) -> None:
    sn = supernet
    archs = [sn.largest(), sn.smallest(), _member(sn, 0, 0), _member(sn, 2, 1)]
    x = torch.randn(2, 3, 32, 32)
    outputs = []
    for arch in archs:
        net = extract_subnet(sn, arch)
        assert type(net).__name__ == "OFAResNet"
        with torch.no_grad():
            out = sn(x, arch)
            assert (out - net(x)).abs().max().item() < 1e-4, sn.space.to_string(arch)
        outputs.append(out)
    assert (outputs[0] - outputs[1]).abs().max().item() > 1e-3


def test_largest_member_is_the_whole_supernet(supernet: OFAResNetSupernet) -> None:
    sn = supernet
    big = build_model(sn.largest(), num_classes=10)
    assert count_params(sn) == count_params(big)
    assert set(sn.state_dict()) == set(big.state_dict())
    assert count_params(build_model(sn.smallest(), num_classes=10)) < count_params(big)


def test_depth_width_and_expand_slice_the_slots(supernet: OFAResNetSupernet) -> None:
    sn = supernet
    small = extract_subnet(sn, sn.smallest())
    # stem depth 0: the standalone stem.1 is the supernet's last stem convolution, stem.2
    stem_mid, stem_out = sn.space.stem_channels(sn.smallest())
    assert (stem_mid, stem_out) == (24, 40)
    assert torch.equal(small.stem[1].conv.weight, sn.stem[2].conv.weight[:stem_out, :stem_mid])
    # unit 1 keeps 2 of its 4 slots: standalone block 2 is unit 2's first slot, block 4
    in_c, mid, out, stride = sn.space.block_plan(sn.smallest())[2]
    assert (in_c, out, stride) == (168, 336, 2)
    assert torch.equal(
        small.blocks[2].conv1.conv.weight, sn.blocks[4].conv1.conv.weight[:mid, :in_c]
    )
    assert torch.equal(
        small.blocks[2].downsample[1].conv.weight,
        sn.blocks[4].downsample[1].conv.weight[:out, :in_c],
    )
    assert torch.equal(
        small.classifier.weight, sn.classifier.weight[:, : small.classifier.in_features]
    )


def test_training_step_on_grey_scale_images_updates_only_the_member() -> None:
    torch.manual_seed(0)
    sn = build_supernet("ofa-resnet50", num_classes=10, in_channels=1)
    assert isinstance(sn, OFAResNetSupernet)
    assert sn.config() == {"space": "ofa-resnet50", "num_classes": 10, "in_channels": 1}
    arch = _member(sn, 0, 2)
    d = sn.space.as_dict(arch)
    before = {k: v.detach().clone() for k, v in sn.state_dict().items()}
    sn.train()
    opt = torch.optim.SGD(sn.parameters(), lr=0.01)
    x = torch.randn(4, 1, 8, 8)  # digits' size
    nn.functional.cross_entropy(sn(x, arch), torch.arange(4)).backward()
    opt.step()
    after = sn.state_dict()

    def changed(prefix: str) -> bool:
        return any(not torch.equal(before[n], after[n]) for n in before if n.startswith(prefix))

    assert changed("stem.0.") and changed("stem.2.") and changed("classifier.")
    assert not changed("stem.1.")  # the skipped residual stem convolution
    plan = sn.space.block_plan(arch)
    k = 0
    first = 0
    for u, max_depth in enumerate(RESNET_MAX_DEPTHS, 1):
        depth = int(d[f"u{u}.depth"])
        for slot in range(first, first + max_depth):
            prefix = f"blocks.{slot}."
            if slot - first >= depth:
                assert not changed(prefix), slot
                continue
            in_c, mid, _, _ = plan[k]
            k += 1
            name = prefix + "conv1.conv.weight"
            delta = (after[name] - before[name]).abs()
            assert delta[:mid, :in_c].sum() > 0 and delta[mid:].sum() == 0, slot
            assert delta[:, in_c:].sum() == 0, slot
        first += max_depth
    assert k == len(plan)
    # the trained supernet still equals its extracted member on grey-scale images
    sn.eval()
    net = extract_subnet(sn, arch)
    with torch.no_grad():
        assert (sn(x, arch) - net(x)).abs().max().item() < 1e-4


@pytest.mark.slow
def test_cli_supernet_train_ofa_resnet50_on_digits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sn"
    argv = ["supernet", "train", "ofa-resnet50", "--data", "digits", "--subset", "96"]
    argv += ["--batch-size", "32", "--epochs", "1", "--out", str(out)]
    argv += ["--store", str(tmp_path / "s.db"), "--no-progress", "--json"]
    assert main(argv) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["epoch"] == 1.0 and 0.0 <= last["val_acc_largest"] <= 1.0
    model, _ = load_trained(out)
    assert isinstance(model, OFAResNetSupernet) and model.space.name == "ofa-resnet50"
    assert (
        main(["supernet", "eval", str(out), "--sample", "1", "--json", "--calib-images", "32"]) == 0
    )
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.0 <= row["top1"] <= 1.0
