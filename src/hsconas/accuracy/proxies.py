"""Zero-cost accuracy proxies: scores of an untrained network that rank architectures by the
accuracy they would reach after training, from one or a few minibatches of real images.

Every proxy is a function ``proxy(model, batches) -> float`` (higher = predicted more accurate) on
a freshly initialised ``nn.Module`` and a list of ``(images, labels)`` minibatches; the registry
:data:`PROXIES` names them. Batch norms stay in train mode (batch statistics), as in the papers:

- ``naswot`` (Mellor et al. 2021, "Neural architecture search without training", v2): the
  log-determinant of the kernel ``K[i, j] = sum over activation units of [c_i == c_j]`` where
  ``c_i`` is the binary on/off pattern of the rectifier inputs of image ``i``; summed over batches.
- ``synflow`` (Tanaka et al. 2020, as used by Abdelfattah et al. 2021): batch norms removed, every
  parameter replaced by its absolute value, one all-ones input in float64; the score is
  ``sum |theta * d(sum of outputs)/d theta|`` over conv and linear weights. Data-independent.
- ``snip`` (Lee et al. 2019): ``sum |theta * dL/dtheta|`` over conv and linear weights, ``L`` the
  cross-entropy of the minibatch.
- ``grad_norm``: the sum over conv and linear layers of the L2 norm of ``dL/dW``.
- ``jacov`` (Mellor et al. 2020, v1): from the input Jacobians ``J_i = d(sum of outputs_i)/dx_i``
  of a batch, the correlation matrix ``C`` with eigenvalues ``v``:
  ``-sum(log(v + k) + 1 / (v + k))``, ``k = 1e-5``.
- ``params`` and ``macs``: parameter count and conv/linear multiply-accumulates of one image
  (:mod:`hsconas.nn.counting`), the classic baselines.

Gradient-based scores average over the batches; ``naswot`` sums kernels over batches (one
log-determinant per batch, averaged). Everything runs on ``device`` (CPU by default).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hsconas.nn.counting import count_macs, count_params

__all__ = [
    "PROXIES",
    "Batch",
    "ProxyFn",
    "grad_norm",
    "jacov",
    "loss_gradient_scores",
    "macs",
    "naswot",
    "params",
    "snip",
    "synflow",
]

Batch = tuple[torch.Tensor, torch.Tensor]
"""One minibatch: float images ``(N, C, H, W)`` and int64 labels ``(N,)``."""

ProxyFn = Callable[[nn.Module, Sequence[Batch]], float]

#: activations whose input sign pattern NASWOT reads (a unit is "on" where its input is > 0).
_RECTIFIERS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardswish, nn.SiLU, nn.GELU)


def _weights(model: nn.Module) -> list[torch.Tensor]:
    """The weight tensors of the conv and linear layers of ``model``."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def _pattern_kernel(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The (N, N) float64 Hamming-similarity kernel of the rectifier patterns of ``images``."""
    n = images.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64, device=images.device)

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        x = (inputs[0].detach().reshape(n, -1) > 0).to(torch.float64)
        kernel.add_(x @ x.T).add_((1.0 - x) @ (1.0 - x).T)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _RECTIFIERS)]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for h in handles:
            h.remove()
    return kernel


def naswot(model: nn.Module, batches: Sequence[Batch]) -> float:
    """NASWOT score: log|K| of the activation-pattern kernel, averaged over batches.

    ``K = C C^T + (1 - C)(1 - C)^T`` with ``C`` the (N, units) 0/1 matrix of rectifier inputs
    above zero, summed over every rectifier module (its Hamming-similarity form). A singular
    kernel (two images with identical patterns everywhere) scores -1e9, the lowest score.
    """
    model.train()
    scores = []
    for images, _ in batches:
        sign, logdet = torch.linalg.slogdet(_pattern_kernel(model, images))
        # a singular kernel (identical patterns for two images) scores as low as possible
        scores.append(float(logdet) if float(sign) > 0 else -1e9)
    return float(np.mean(scores))


def _loss_grads(model: nn.Module, batches: Sequence[Batch]) -> None:
    """Accumulate the cross-entropy gradients of every batch (mean over batches) in ``.grad``."""
    model.train()
    model.zero_grad(set_to_none=True)
    for images, labels in batches:
        loss = F.cross_entropy(model(images), labels) / len(batches)
        loss.backward()


def loss_gradient_scores(model: nn.Module, batches: Sequence[Batch]) -> tuple[float, float]:
    """(``snip``, ``grad_norm``) from one set of cross-entropy gradients."""
    _loss_grads(model, batches)
    saliency, norms = 0.0, 0.0
    for w in _weights(model):
        if w.grad is not None:
            saliency += float((w.detach() * w.grad).abs().sum())
            norms += float(w.grad.norm())
    return saliency, norms


def snip(model: nn.Module, batches: Sequence[Batch]) -> float:
    """SNIP saliency ``sum |theta * dL/dtheta|`` over conv and linear weights."""
    return loss_gradient_scores(model, batches)[0]


def grad_norm(model: nn.Module, batches: Sequence[Batch]) -> float:
    """Sum over conv and linear layers of ``||dL/dW||_2``."""
    return loss_gradient_scores(model, batches)[1]


def _strip_batchnorm(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` whose batch norms are identities."""
    clone = copy.deepcopy(model)
    for name, child in list(clone.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(clone, name, nn.Identity())
        else:
            setattr(clone, name, _strip_batchnorm(child))
    return clone


def synflow(model: nn.Module, batches: Sequence[Batch]) -> float:
    """SynFlow ``sum |theta * dR/dtheta|``, ``R`` the summed output of |theta| on all-ones input.

    Batch norms are removed and the network runs in float64 so that the product over layers does
    not overflow; ``batches`` only give the input shape.
    """
    net = _strip_batchnorm(model).double()
    net.train()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    images = batches[0][0]
    ones = torch.ones((1, *images.shape[1:]), dtype=torch.float64, device=images.device)
    net(ones).sum().backward()
    total = 0.0
    for w in _weights(net):
        if w.grad is not None:
            total += float((w.detach() * w.grad).abs().sum())
    return total


def jacov(model: nn.Module, batches: Sequence[Batch], k: float = 1e-5) -> float:
    """Jacobian covariance score ``-sum(log(v + k) + 1/(v + k))`` of the correlation matrix of the
    per-image input Jacobians, averaged over batches (v1 of Mellor et al.)."""
    model.train()
    scores = []
    for images, _ in batches:
        x = images.clone().requires_grad_(True)
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()
        assert x.grad is not None
        jac = x.grad.detach().reshape(x.shape[0], -1).to(torch.float64).cpu().numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = np.corrcoef(jac)
        if not np.all(np.isfinite(corr)):  # a constant Jacobian (dead network)
            scores.append(-1e9)
            continue
        v = np.linalg.eigvalsh(corr)
        scores.append(float(-np.sum(np.log(v + k) + 1.0 / (v + k))))
    return float(np.mean(scores))


def params(model: nn.Module, batches: Sequence[Batch]) -> float:
    """Parameter count (the baseline: bigger nets train to higher accuracy)."""
    return float(count_params(model))


def macs(model: nn.Module, batches: Sequence[Batch]) -> float:
    """Conv and linear multiply-accumulates of one image of the batches' shape."""
    shape = tuple(int(s) for s in batches[0][0].shape[1:])
    return float(count_macs(model, shape))  # type: ignore[arg-type]


#: the zero-cost proxies by name (higher = predicted more accurate).
PROXIES: dict[str, ProxyFn] = {
    "naswot": naswot,
    "synflow": synflow,
    "snip": snip,
    "grad_norm": grad_norm,
    "jacov": jacov,
    "params": params,
    "macs": macs,
}


def finite_or_nan(value: float) -> float:
    """``value`` if finite, else NaN (a missing signal)."""
    return value if math.isfinite(value) else float("nan")
