"""Which members of a supernet one training step trains: uniform, sandwich and fair sampling.

- ``uniform``: one member drawn uniformly per gene (single-path uniform sampling, SPOS).
- ``sandwich``: the largest member, the smallest member and ``num_random`` uniform members
  (BigNAS / OFA); the largest comes first, so in-place distillation can use it as the teacher.
- ``fair``: FairNAS strict fairness (Chu et al., 2021). With ``m`` the largest number of choices
  of any gene, a step trains ``m`` members chosen so that every choice of every gene is used by
  at least one of them: each gene's choices are laid out over the ``m`` members in a random
  permutation (an independent one per gene); a gene with ``k < m`` choices takes a uniform random
  choice in the ``m - k`` remaining members. Where all genes have ``m`` choices (``nb201``: six
  edges of five ops, five members per step) every choice is used exactly once.

A gene that is switched off in some members (the channel factor of a ``skip`` layer of the
``hsconas`` spaces) is laid out over the members where it is on, so that none of its choices is
lost to a member that ignores it. Spaces with elastic depth (``ofa-mbv3*``, ``proxylessnas``,
``ofa-resnet50``) cannot be trained fairly in this sense -- the kernel and expand choices of a
unit's later slots exist only in the members deep enough to reach them -- and are refused with
:class:`~hsconas.errors.UnsupportedSamplingError`; their ranking-oriented rule is the sandwich rule
with in-place distillation.

In-place distillation (US-Nets, BigNAS; :func:`distill_loss`): under the sandwich rule the largest
member, trained first on the labels, is the teacher of the other members of the same step, which
learn from its detached predictions (KL divergence at temperature 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hsconas.errors import UnsupportedSamplingError
from hsconas.nn.supernet.base import Supernet
from hsconas.space import Architecture, SearchSpace
from hsconas.space.core import Value
from hsconas.spaces.hsconas_space import HSCoNASSpace

__all__ = [
    "SAMPLINGS",
    "check_fair",
    "check_rule",
    "distill_loss",
    "fair_members",
    "fair_spaces",
    "fair_width",
    "step_members",
    "train_members",
]

SAMPLINGS = ("uniform", "sandwich", "fair")


def fair_width(space: SearchSpace) -> int:
    """Members per fair step: the largest number of choices of any gene of ``space``."""
    return max(len(g.choices) for g in space.genes)


def _always_active(space: SearchSpace) -> bool:
    return type(space).active_mask is SearchSpace.active_mask


def check_fair(space: SearchSpace) -> None:
    """Raise :class:`UnsupportedSamplingError` unless every fair step of ``space`` can use every
    choice of every gene (see the module docstring).

    Supported: spaces whose genes are always on (``nb201``) and the ``hsconas`` family, where a
    ``skip`` layer switches its channel factor off (required: the factor has no more choices than
    the members that do not skip the layer, counted for the worst draw).
    """
    if _always_active(space):
        return
    if isinstance(space, HSCoNASSpace):
        m = fair_width(space)
        for layer in space.layer_names():
            op, factor = space.gene(f"{layer}.op"), space.gene(f"{layer}.factor")
            if "skip" not in op.choices:
                continue
            on_at_least = m - 1 - (m - len(op.choices))  # one skip + extras that may all skip
            if len(factor.choices) > on_at_least:
                raise UnsupportedSamplingError(
                    f"fair sampling of {space.name}: layer {layer} may skip in all but "
                    f"{on_at_least} of the {m} members of a step, fewer than its "
                    f"{len(factor.choices)} channel factors; allow more ops there or fewer "
                    "factors, or use --sampling sandwich"
                )
        return
    raise UnsupportedSamplingError(
        f"fair sampling is not available for {space.name}: its elastic depth switches later "
        "layers of a unit off, so their choices cannot all be trained in one step; fair sampling "
        f"supports {', '.join(fair_spaces())}; use sandwich (with distillation) for {space.name}"
    )


def fair_spaces() -> tuple[str, ...]:
    """Names of the registered supernet spaces that :func:`check_fair` accepts."""
    from hsconas.nn.supernet import supernet_spaces
    from hsconas.space import get_space

    out = []
    for name in supernet_spaces():
        space = get_space(name)
        if _always_active(space) or isinstance(space, HSCoNASSpace):
            try:
                check_fair(space)
            except UnsupportedSamplingError:
                continue
            out.append(name)
    return tuple(out)


def _fair_column(k: int, slots: int, rng: np.random.Generator) -> np.ndarray:
    """Choice indices for ``slots`` members: each of ``k <= slots`` choices once, the rest
    uniform, in random order."""
    col = np.concatenate([rng.permutation(k), rng.integers(k, size=slots - k)])
    return col[rng.permutation(slots)]


def fair_members(space: SearchSpace, rng: np.random.Generator) -> list[Architecture]:
    """The ``fair_width(space)`` members of one fair step (see the module docstring).

    Raises:
        UnsupportedSamplingError: if ``space`` is not one :func:`check_fair` accepts.
    """
    genes = space.genes
    m = fair_width(space)
    cols = [_fair_column(len(g.choices), m, rng) for g in genes]
    rows: list[list[Value]] = [
        [g.choices[int(c[j])] for g, c in zip(genes, cols, strict=True)] for j in range(m)
    ]
    if not _always_active(space):
        masks = [space.active_mask(r) for r in rows]
        for i, gene in enumerate(genes):
            on = [j for j in range(m) if masks[j][i]]
            if len(on) == m:
                continue
            if len(on) < len(gene.choices):
                check_fair(space)  # names the reason
                raise UnsupportedSamplingError(
                    f"fair sampling of {space.name}: gene {gene.name} is on in {len(on)} of {m} "
                    f"members, fewer than its {len(gene.choices)} choices"
                )
            col = _fair_column(len(gene.choices), len(on), rng)
            for j, c in zip(on, col, strict=True):
                rows[j][i] = gene.choices[int(c)]
        if [space.active_mask(r) for r in rows] != masks:
            raise UnsupportedSamplingError(
                f"fair sampling of {space.name}: a gene switched off by another one also "
                "switches genes off; the space is not supported"
            )
    archs = []
    for r in rows:
        values = space._canonical(r)
        if not space._valid_values(values):
            raise UnsupportedSamplingError(
                f"fair sampling of {space.name}: a fair member breaks a constraint across "
                "genes; the space is not supported"
            )
        archs.append(Architecture(space.name, values))
    return archs


def step_members(
    model: Supernet, sampling: str, num_random: int, rng: np.random.Generator
) -> list[Architecture]:
    """The members one training step of ``model`` trains under ``sampling``.

    Under ``sandwich`` the largest member (when the space orders its members) comes first, then
    the smallest, then ``num_random`` uniform members.
    """
    if sampling == "uniform":
        return [model.sample(rng)]
    if sampling == "fair":
        return fair_members(model.space, rng)
    if sampling != "sandwich":
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    big, small = model.largest(), model.smallest()
    fixed = [a for a in (big, small) if a is not None]
    return fixed + [model.sample(rng) for _ in range(num_random)]


def check_rule(model: Supernet, sampling: str, distill: bool) -> None:
    """Raise :class:`UnsupportedSamplingError` if ``model`` cannot be trained under ``sampling``
    (fair: see :func:`check_fair`) or with in-place distillation (which needs the sandwich rule
    and a largest member to teach)."""
    if sampling == "fair":
        check_fair(model.space)
    if distill and sampling != "sandwich":
        raise UnsupportedSamplingError(
            f"distillation needs the sandwich rule (its largest member is the teacher), not "
            f"sampling {sampling!r}"
        )
    if distill and model.largest() is None:
        raise UnsupportedSamplingError(
            f"distillation needs a largest member as the teacher; the {model.space.name} "
            "supernet has none (use fair, or sandwich without distillation)"
        )


def distill_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    labels: torch.Tensor,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    weight: float = 1.0,
) -> torch.Tensor:
    """``(1 - weight) * criterion(student, labels) + weight * KL(teacher || student)``.

    Args:
        student: logits (N, classes) of the member being trained.
        teacher: logits (N, classes) of the largest member, detached.
        labels: class indices (N,).
        criterion: the label loss (cross-entropy, possibly label-smoothed).
        weight: share of the distillation term in [0, 1]; 1 (BigNAS, US-Nets) ignores labels.

    The KL divergence is at temperature 1, averaged over the batch (nats per image), in float32.
    """
    log_p = F.log_softmax(student.float(), dim=1)
    log_q = F.log_softmax(teacher.detach().float(), dim=1)
    kl = F.kl_div(log_p, log_q, reduction="batchmean", log_target=True)
    if weight >= 1.0:
        return kl
    return (1.0 - weight) * criterion(student, labels) + weight * kl


def train_members(
    model: Supernet,
    members: Sequence[Architecture],
    x: torch.Tensor,
    y: torch.Tensor,
    criterion: nn.Module,
    backward: Callable[[torch.Tensor], None],
    autocast: Callable[[], AbstractContextManager[Any]],
    distill_weight: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward and backward every member of one step on the batch ``(x, y)`` (gradients add up;
    the caller steps the optimizer once).

    With ``distill_weight`` set the first member (the largest, under the sandwich rule) learns
    from the labels and teaches the others (:func:`distill_loss`); otherwise every member learns
    from the labels.

    Returns:
        (label loss, logits) of the first member.
    """
    with autocast():
        logits = model(x, members[0])
        loss = criterion(logits, y)
    backward(loss)
    teacher = logits.detach()
    for member in members[1:]:
        with autocast():
            out = model(x, member)
            if distill_weight is None:
                member_loss = criterion(out, y)
            else:
                member_loss = distill_loss(out, teacher, y, criterion, distill_weight)
        backward(member_loss)
    return loss, logits
