"""Shared PyTorch building blocks of the MobileNet-family networks (and others).

Every block is a plain, stateless ``nn.Module`` whose structure is fixed at construction: no
"active subnet" switches, no global state. Shapes in comments are ``(N, C, H, W)``.

The conventions follow the Once-for-All / ProxylessNAS reference networks so that built networks
reproduce the published parameter and MAC counts:

- convolutions have no bias and ``padding = kernel_size // 2`` (same-size output at stride 1);
- an inverted residual block with ``expand_ratio == 1`` has no expansion convolution;
- the squeeze-and-excitation bottleneck is ``make_divisible(channels // reduction, 8)`` wide,
  with biased 1x1 convolutions, ReLU inside and a hard-sigmoid gate.
"""

from __future__ import annotations

import torch
from torch import nn

from hsconas.space.channels import make_divisible

ACTIVATIONS: tuple[str, ...] = ("relu", "relu6", "h_swish", "h_sigmoid", "swish", "sigmoid", "none")
"""Names accepted by :func:`make_activation` (``hswish``/``hsigmoid``/``silu`` are aliases)."""

_ALIASES = {"hswish": "h_swish", "hsigmoid": "h_sigmoid", "silu": "swish", "identity": "none"}


def make_activation(name: str | None) -> nn.Module:
    """The activation module called ``name`` (``None`` or ``"none"`` gives identity).

    Raises:
        ValueError: for an unknown name; the message lists :data:`ACTIVATIONS`.
    """
    key = "none" if name is None else _ALIASES.get(name.lower(), name.lower())
    if key == "relu":
        return nn.ReLU(inplace=True)
    if key == "relu6":
        return nn.ReLU6(inplace=True)
    if key == "h_swish":
        return nn.Hardswish(inplace=True)
    if key == "h_sigmoid":
        return nn.Hardsigmoid(inplace=True)
    if key == "swish":
        return nn.SiLU(inplace=True)
    if key == "sigmoid":
        return nn.Sigmoid()
    if key == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}; choose one of: {', '.join(ACTIVATIONS)}")


class ConvBNAct(nn.Module):
    """Convolution, optional batch norm, optional activation (the OFA ``ConvLayer``).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size; padding is ``kernel_size // 2``.
        stride: spatial stride.
        groups: convolution groups (``in_channels`` for a depthwise convolution).
        act: activation name (see :func:`make_activation`), ``None`` for none.
        use_bn: whether to add a ``BatchNorm2d`` after the convolution.
        bias: whether the convolution has a bias.
        bn_eps: batch-norm epsilon.
        bn_momentum: batch-norm momentum.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        *,
        groups: int = 1,
        act: str | None = "relu",
        use_bn: bool = True,
        bias: bool = False,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=bias,
        )
        self.bn: nn.Module = nn.Identity()
        if use_bn:
            self.bn = nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum)
        self.act = make_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))  # (N, C_out, H / stride, W / stride)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: channel gates from globally pooled features.

    Args:
        channels: channels of the gated tensor.
        reduction: bottleneck reduction; the bottleneck has
            ``make_divisible(channels // reduction, divisor)`` channels.
        divisor: channel rounding of the bottleneck.
        act: activation inside the bottleneck.
        gate: gate activation (hard sigmoid as in MobileNetV3).
    """

    def __init__(
        self,
        channels: int,
        *,
        reduction: int = 4,
        divisor: int = 8,
        act: str = "relu",
        gate: str = "h_sigmoid",
    ) -> None:
        super().__init__()
        self.channels = channels
        self.mid_channels = make_divisible(channels // reduction, divisor)
        self.reduce = nn.Conv2d(channels, self.mid_channels, 1, bias=True)
        self.act = make_activation(act)
        self.expand = nn.Conv2d(self.mid_channels, channels, 1, bias=True)
        self.gate = make_activation(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
        s = self.gate(self.expand(self.act(self.reduce(s))))
        return x * s


class MBConv(nn.Module):
    """Inverted residual block (MobileNetV2/V3): expand 1x1, depthwise kxk, SE, project 1x1.

    The projection has batch norm and no activation. The identity shortcut is added when
    ``stride == 1`` and ``in_channels == out_channels`` (unless ``residual=False``).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: depthwise kernel size (3, 5, 7, ...).
        stride: depthwise stride.
        expand_ratio: expansion ratio; 1 means no expansion convolution.
        act: activation of the expansion and depthwise convolutions.
        use_se: whether to add squeeze-and-excitation after the depthwise convolution.
        mid_channels: expanded width; defaults to ``make_divisible(round(in * expand_ratio), 8)``
            (``in_channels`` when ``expand_ratio == 1``).
        residual: force the shortcut off (``False``) or require it (``True``); ``None`` applies
            the rule above. Requiring it where shapes differ raises ``ValueError``.
        se_reduction: squeeze-and-excitation reduction.
        bn_eps: batch-norm epsilon.
        bn_momentum: batch-norm momentum.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        expand_ratio: float = 6,
        *,
        act: str = "relu6",
        use_se: bool = False,
        mid_channels: int | None = None,
        residual: bool | None = None,
        se_reduction: int = 4,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        if expand_ratio <= 0:
            raise ValueError(f"expand_ratio must be positive, got {expand_ratio}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.expand_ratio = expand_ratio
        self.use_se = use_se
        if mid_channels is None:
            mid_channels = (
                in_channels
                if expand_ratio == 1
                else make_divisible(round(in_channels * expand_ratio), 8)
            )
        self.mid_channels = mid_channels
        can_add = stride == 1 and in_channels == out_channels
        if residual and not can_add:
            raise ValueError(
                f"a residual MBConv needs stride 1 and in == out, got stride {stride}, "
                f"{in_channels} -> {out_channels} channels"
            )
        self.use_residual = can_add if residual is None else residual
        self.expand: nn.Module = (
            nn.Identity()
            if expand_ratio == 1 and mid_channels == in_channels
            else ConvBNAct(
                in_channels, mid_channels, 1, act=act, bn_eps=bn_eps, bn_momentum=bn_momentum
            )
        )
        self.depthwise = ConvBNAct(
            mid_channels,
            mid_channels,
            kernel_size,
            stride,
            groups=mid_channels,
            act=act,
            bn_eps=bn_eps,
            bn_momentum=bn_momentum,
        )
        self.se: nn.Module = (
            SqueezeExcite(mid_channels, reduction=se_reduction) if use_se else nn.Identity()
        )
        self.project = ConvBNAct(
            mid_channels, out_channels, 1, act=None, bn_eps=bn_eps, bn_momentum=bn_momentum
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x)  # (N, mid, H, W)
        y = self.se(self.depthwise(y))  # (N, mid, H / s, W / s)
        y = self.project(y)  # (N, out, H / s, W / s)
        return x + y if self.use_residual else y
