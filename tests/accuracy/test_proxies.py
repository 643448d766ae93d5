"""Each zero-cost proxy against its value computed by hand (numpy) on a tiny network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hsconas.accuracy.proxies import (
    PROXIES,
    grad_norm,
    jacov,
    loss_gradient_scores,
    macs,
    naswot,
    params,
    snip,
    synflow,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))


def _batch(n: int = 8, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 5, generator=g), torch.randint(0, 3, (n,), generator=g)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float64).numpy()


def test_registry_names_every_proxy() -> None:
    assert set(PROXIES) == {"naswot", "synflow", "snip", "grad_norm", "jacov", "params", "macs"}


def test_synflow_of_a_two_layer_linear_net_is_twice_its_path_sum() -> None:
    # R = 1^T |A2| |A1| 1 on an all-ones input; both layers' sum |theta * dR/dtheta| equal R
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4, bias=False), nn.BatchNorm1d(4), nn.Linear(4, 2, bias=False))
    a1, a2 = np.abs(_np(net[0].weight)), np.abs(_np(net[2].weight))
    r = np.ones(2) @ a2 @ a1 @ np.ones(3)
    x = torch.randn(4, 3)
    assert synflow(net, [(x, torch.zeros(4, dtype=torch.long))]) == pytest.approx(2 * r, rel=1e-12)
    assert float(net[0].weight.detach().min()) < 0  # the caller's network is left untouched


def test_naswot_matches_the_numpy_kernel() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 24), nn.ReLU(), nn.Linear(24, 16), nn.ReLU(), nn.Linear(16, 3))
    x, y = _batch()
    w1, b1 = _np(net[0].weight), _np(net[0].bias)
    w2, b2 = _np(net[2].weight), _np(net[2].bias)
    h1 = _np(x) @ w1.T + b1
    h2 = np.maximum(h1, 0) @ w2.T + b2
    k = np.zeros((8, 8))
    for h in (h1, h2):
        c = (h > 0).astype(float)
        k += c @ c.T + (1 - c) @ (1 - c).T
    sign, logdet = np.linalg.slogdet(k)
    assert sign > 0
    assert naswot(net, [(x, y)]) == pytest.approx(logdet, rel=1e-9)


def test_naswot_of_identical_images_is_the_lowest_score() -> None:
    x = torch.ones(4, 5)
    assert naswot(_mlp(), [(x, torch.zeros(4, dtype=torch.long))]) == -1e9


def test_snip_and_grad_norm_match_the_softmax_gradient_by_hand() -> None:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(5, 3))
    x, y = _batch()
    w, b = _np(net[0].weight), _np(net[0].bias)
    z = _np(x) @ w.T + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(3)[y.numpy()]
    grad_w = (p - onehot).T @ _np(x) / len(y)  # d mean cross-entropy / dW
    assert snip(net, [(x, y)]) == pytest.approx(np.abs(w * grad_w).sum(), rel=1e-6)
    assert grad_norm(net, [(x, y)]) == pytest.approx(np.linalg.norm(grad_w), rel=1e-6)
    assert loss_gradient_scores(net, [(x, y)]) == pytest.approx(
        (snip(net, [(x, y)]), grad_norm(net, [(x, y)]))
    )


def test_gradient_proxies_average_over_batches() -> None:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(5, 3))
    b1, b2 = _batch(seed=1), _batch(seed=2)
    both = torch.cat([b1[0], b2[0]]), torch.cat([b1[1], b2[1]])
    # two equal-size batches at half weight each = one batch of both
    assert grad_norm(net, [b1, b2]) == pytest.approx(grad_norm(net, [both]), rel=1e-6)


def test_jacov_matches_the_numpy_jacobian_correlation() -> None:
    net = _mlp(seed=2)
    x, y = _batch()
    w1, b1 = _np(net[0].weight), _np(net[0].bias)
    w2, b2 = _np(net[2].weight), _np(net[2].bias)
    w3 = _np(net[4].weight)
    h1 = _np(x) @ w1.T + b1
    h2 = np.maximum(h1, 0) @ w2.T + b2
    # d(sum of outputs)/dx for each image: W1^T D1 W2^T D2 W3^T 1
    jac = np.stack(
        [
            w1.T @ np.diag(h1[i] > 0) @ w2.T @ np.diag(h2[i] > 0) @ w3.T @ np.ones(3)
            for i in range(len(x))
        ]
    )
    v = np.linalg.eigvalsh(np.corrcoef(jac))
    k = 1e-5
    expected = -np.sum(np.log(v + k) + 1 / (v + k))
    assert jacov(net, [(x, y)]) == pytest.approx(expected, rel=1e-6)


def test_params_and_macs_of_a_conv_net_by_hand() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    x = torch.zeros(2, 3, 6, 6)
    batch = [(x, torch.zeros(2, dtype=torch.long))]
    assert params(net, batch) == 3 * 8 * 9 + 8 + 8 * 36 * 10 + 10
    assert macs(net, batch) == 6 * 6 * 8 * 3 * 9 + 8 * 36 * 10
