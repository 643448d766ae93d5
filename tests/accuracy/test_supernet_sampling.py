"""Member sampling of supernet training: fair steps, in-place distillation, their checks."""

from __future__ import annotations

from collections import Counter
from contextlib import nullcontext

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from hsconas.accuracy import TrainConfig
from hsconas.accuracy.sampling import (
    check_fair,
    check_rule,
    distill_loss,
    fair_members,
    fair_spaces,
    fair_width,
    step_members,
    train_members,
)
from hsconas.accuracy.train import seeded
from hsconas.errors import HsconasError, UnsupportedSamplingError
from hsconas.nn.supernet import build_supernet
from hsconas.space import get_space

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(["nb201", "hsconas-digits"]))
def test_fair_step_uses_every_choice_of_every_gene(seed: int, name: str) -> None:
    space = get_space(name)
    rng = np.random.default_rng(seed)
    m = fair_width(space)
    for _ in range(3):  # several consecutive steps from one generator
        members = fair_members(space, rng)
        assert len(members) == m
        assert all(space.contains(a) for a in members)
        for i, gene in enumerate(space.genes):
            used = Counter(
                a.values[i] for a in members if space.active_mask(a.values)[i]
            )  # choices the step trains (a skipped layer's factor trains nothing)
            assert set(used) == set(gene.choices), gene.name
            if len(gene.choices) == m:
                assert all(n == 1 for n in used.values()), gene.name


def test_fair_widths_and_exactly_once_on_nb201() -> None:
    nb = get_space("nb201")
    assert fair_width(nb) == 5 and fair_width(get_space("hsconas-digits")) == 7
    members = fair_members(nb, np.random.default_rng(3))
    for i in range(len(nb.genes)):
        assert sorted(str(a.values[i]) for a in members) == sorted(map(str, nb.genes[i].choices))
    # hsconas: exactly one member skips each layer that may skip, so its factor is trained by
    # the other six members (five factors: each at least once)
    hs = get_space("hsconas-digits")
    members = fair_members(hs, np.random.default_rng(4))
    op = hs.gene_names.index("u1.l2.op")
    assert sum(a.values[op] == "skip" for a in members) == 1


def test_fair_refuses_elastic_depth_and_starved_restrictions() -> None:
    assert set(fair_spaces()) == {"nb201", "hsconas", "hsconas-cifar", "hsconas-digits"}
    for name in ("ofa-mbv3", "proxylessnas", "ofa-resnet50"):
        with pytest.raises(UnsupportedSamplingError, match=rf"{name}.*supports .*nb201"):
            check_fair(get_space(name))
    # a layer's op restricted to {skip, one MB op}: 7 members per step, of which all but one
    # may skip it (one skip, five random extras), fewer than its five channel factors
    hs = get_space("hsconas-digits")
    check_fair(hs.restrict({"u1.l2.op": ["mb_k3_e3"]}))  # no skip: fine
    with pytest.raises(UnsupportedSamplingError, match=r"u1\.l2"):
        check_fair(hs.restrict({"u1.l2.op": ["skip", "mb_k3_e3"]}))
    assert issubclass(UnsupportedSamplingError, HsconasError)


def test_sandwich_members_start_with_the_largest() -> None:
    with seeded(0):
        sn = build_supernet("hsconas-digits")
    members = step_members(sn, "sandwich", 3, np.random.default_rng(0))
    assert members[:2] == [sn.largest(), sn.smallest()] and len(members) == 5
    assert len(step_members(sn, "uniform", 3, np.random.default_rng(0))) == 1
    assert len(step_members(sn, "fair", 3, np.random.default_rng(0))) == 7


def test_distill_loss_is_the_hand_computed_kl() -> None:
    teacher = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, -1.0]])
    student = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.5, 0.5]])
    labels = torch.tensor([1, 2])
    q = np.exp(teacher.numpy()) / np.exp(teacher.numpy()).sum(1, keepdims=True)
    p = np.exp(student.numpy()) / np.exp(student.numpy()).sum(1, keepdims=True)
    kl = float(np.mean(np.sum(q * (np.log(q) - np.log(p)), axis=1)))  # nats per image
    ce = F.cross_entropy
    assert float(distill_loss(student, teacher, labels, ce)) == pytest.approx(kl, rel=1e-5)
    half = float(distill_loss(student, teacher, labels, ce, 0.5))
    assert half == pytest.approx(0.5 * float(ce(student, labels)) + 0.5 * kl, rel=1e-5)
    assert float(distill_loss(teacher, teacher, labels, ce)) == pytest.approx(0.0, abs=1e-6)


def _step_losses(distill: float | None, y: torch.Tensor) -> list[torch.Tensor]:
    with seeded(2):
        sn = build_supernet("hsconas-digits")
    x = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    losses: list[torch.Tensor] = []
    members = [sn.largest(), sn.smallest()]
    train_members(
        sn, members, x, y, torch.nn.CrossEntropyLoss(), losses.append, nullcontext, distill
    )
    return [loss.detach() for loss in losses]


def test_distilled_members_learn_from_the_largest_not_the_labels() -> None:
    y = torch.arange(8) % 10
    shuffled = y.flip(0)
    plain, plain_shuffled = _step_losses(None, y), _step_losses(None, shuffled)
    dist, dist_shuffled = _step_losses(1.0, y), _step_losses(1.0, shuffled)
    # the largest always learns from the labels
    assert float(dist[0]) == pytest.approx(float(plain[0]))
    assert float(dist_shuffled[0]) != pytest.approx(float(dist[0]))
    # without distillation the smallest's loss follows the labels; with it, the teacher only
    assert float(plain_shuffled[1]) != pytest.approx(float(plain[1]))
    assert float(dist_shuffled[1]) == pytest.approx(float(dist[1]))
    # and it is the KL to the largest member's outputs on the same batch
    with seeded(2):
        sn = build_supernet("hsconas-digits")
    x = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    expected = distill_loss(sn(x, sn.smallest()), sn(x, sn.largest()), y, F.cross_entropy)
    assert float(dist[1]) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_config_validation_of_rules() -> None:
    assert TrainConfig(sampling="fair").to_dict()["distill"] is False
    assert TrainConfig(sampling="sandwich", distill=True, distill_weight=0.3).distill_weight == 0.3
    for sampling in ("uniform", "fair"):
        with pytest.raises(UnsupportedSamplingError, match="sandwich"):
            TrainConfig(sampling=sampling, distill=True)
    with pytest.raises(ValueError, match="distill_weight"):
        TrainConfig(sampling="sandwich", distill=True, distill_weight=1.5)
    with pytest.raises(ValueError, match="sampling"):
        TrainConfig(sampling="fairnas")
    with seeded(0):
        nb = build_supernet("nb201", channels=4, cells_per_stage=1)
    check_rule(nb, "fair", False)
    with pytest.raises(UnsupportedSamplingError, match="largest"):
        check_rule(nb, "sandwich", True)
    # a checkpoint written before distillation existed compares equal to the default config
    old = TrainConfig().to_dict()
    del old["distill"], old["distill_weight"]
    assert TrainConfig.stored(old) == TrainConfig().to_dict()
    assert TrainConfig.stored(old) != TrainConfig(sampling="sandwich", distill=True).to_dict()
