"""Dynamic-width operators: convolution, batch norm and linear layers on sliced shared weights.

A supernet holds every layer at its widest (and, for depthwise kernels, largest) size in ordinary
``nn.Conv2d`` / ``nn.BatchNorm2d`` / ``nn.Linear`` modules. A member network uses the *leading*
channels of those tensors (dynamic channel scaling's weight sharing) and the *centre crop* of the
largest kernel (elastic kernel). The functions below run such a slice without copying the
module or keeping any "active width" state: the width is read from the input tensor or passed in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["center_crop_kernel", "fit_tensor", "sliced_bn", "sliced_conv", "sliced_linear"]


def center_crop_kernel(weight: torch.Tensor, kernel: int) -> torch.Tensor:
    """The centre ``kernel x kernel`` window of a (O, I, K, K) weight (K >= kernel, same parity)."""
    full = weight.shape[-1]
    if kernel == full:
        return weight
    if kernel > full or (full - kernel) % 2:
        raise ValueError(f"cannot crop a {full}x{full} kernel to {kernel}x{kernel}")
    start = (full - kernel) // 2
    return weight[..., start : start + kernel, start : start + kernel]


def sliced_conv(
    conv: nn.Module,
    x: torch.Tensor,
    out_channels: int,
    *,
    kernel: int | None = None,
    depthwise: bool = False,
) -> torch.Tensor:
    """``conv`` applied with its leading ``out_channels`` filters over the input's channels.

    Args:
        conv: the widest convolution (padding is recomputed as ``kernel // 2``).
        x: input (N, C_in, H, W); ``C_in`` leading input channels of the weight are used.
        out_channels: output channels (ignored for depthwise, where it equals ``C_in``).
        kernel: kernel size, a centre crop of the full kernel; default the full kernel.
        depthwise: a depthwise convolution (groups = channels).
    """
    assert isinstance(conv, nn.Conv2d)
    c_in = x.shape[1]
    k = conv.kernel_size[0] if kernel is None else kernel
    if depthwise:
        weight = conv.weight[:c_in]  # (C_in, 1, K, K)
        groups = c_in
    else:
        weight = conv.weight[:out_channels, :c_in]  # (C_out, C_in, K, K)
        groups = 1
    weight = center_crop_kernel(weight, k)
    bias = None
    if conv.bias is not None:
        bias = conv.bias[: weight.shape[0]]
    stride = conv.stride
    return F.conv2d(x, weight, bias, stride, k // 2, 1, groups)  # (N, C_out, H/s, W/s)


def sliced_bn(bn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``bn`` over the leading ``x.shape[1]`` channels of its affine weights and running stats.

    In training mode the running statistics of those channels are updated in place (the slices
    are views of the full buffers); ``momentum=None`` gives a cumulative average as in
    ``nn.BatchNorm2d``.
    """
    assert isinstance(bn, nn.BatchNorm2d)
    c = x.shape[1]
    running_mean = bn.running_mean[:c] if bn.running_mean is not None else None
    running_var = bn.running_var[:c] if bn.running_var is not None else None
    weight = bn.weight[:c] if bn.weight is not None else None
    bias = bn.bias[:c] if bn.bias is not None else None
    use_batch_stats = bn.training or running_mean is None
    momentum = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:
            momentum = 1.0 / float(bn.num_batches_tracked)
    return F.batch_norm(
        x, running_mean, running_var, weight, bias, use_batch_stats, momentum, bn.eps
    )


def sliced_linear(
    linear: nn.Linear, x: torch.Tensor, out_features: int | None = None
) -> torch.Tensor:
    """``linear`` over the input's leading features (and the leading ``out_features`` outputs)."""
    out = linear.out_features if out_features is None else out_features
    weight = linear.weight[:out, : x.shape[-1]]
    bias = linear.bias[:out] if linear.bias is not None else None
    return F.linear(x, weight, bias)


def fit_tensor(source: torch.Tensor, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """A copy of ``source`` cut to ``shape``: leading slices of the first two dimensions, centre
    crops of the spatial ones (dims 2 and later), as the supernet's sliced operators use them.

    Raises:
        ValueError: if ``shape`` has another rank or a larger size than ``source``.
    """
    if source.dim() != len(shape):
        raise ValueError(f"cannot fit a tensor of shape {tuple(source.shape)} to {tuple(shape)}")
    out = source
    for dim, size in enumerate(shape):
        full = out.shape[dim]
        if size > full:
            raise ValueError(
                f"cannot fit a tensor of shape {tuple(source.shape)} to {tuple(shape)}"
            )
        start = (full - size) // 2 if dim >= 2 else 0
        out = out.narrow(dim, start, size)
    return out.detach().clone()
