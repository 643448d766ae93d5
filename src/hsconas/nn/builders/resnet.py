"""Builder of the ``ofa-resnet50`` space: OFA's ResNet50 (deep 3x3 stem, avg-pool downsampling)."""

from __future__ import annotations

import torch
from torch import nn

from hsconas.nn.blocks import ConvBNAct
from hsconas.nn.registry import register_builder
from hsconas.space import Architecture, SearchSpace
from hsconas.spaces.ofa_resnet import OFAResNetSpace


class Bottleneck(nn.Module):
    """ResNet bottleneck (OFA ``ResNetBottleneckBlock``, ``avgpool_conv`` downsampling).

    ``conv1x1(in -> mid) -> conv3x3(mid -> mid, stride) -> conv1x1(mid -> out)``, each with batch
    norm, ReLU after the first two and after the residual sum. The shortcut is the identity when
    ``stride == 1`` and ``in == out``, else ``AvgPool(stride) -> conv1x1(in -> out) -> BN``.
    """

    def __init__(
        self, in_channels: int, mid_channels: int, out_channels: int, stride: int = 1
    ) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, mid_channels, 1, act="relu")
        self.conv2 = ConvBNAct(mid_channels, mid_channels, 3, stride, act="relu")
        self.conv3 = ConvBNAct(mid_channels, out_channels, 1, act=None)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.AvgPool2d(stride, stride, padding=0, ceil_mode=True),
                ConvBNAct(in_channels, out_channels, 1, act=None),
            )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3(self.conv2(self.conv1(x)))  # (N, out, H / s, W / s)
        return self.act(y + self.downsample(x))


class _ResidualConv(nn.Module):
    """``x + conv(x)``: the middle block of OFA's input stem."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = ConvBNAct(channels, channels, 3, act="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class OFAResNet(nn.Module):
    """A standalone network of the OFA ResNet50 space.

    Args:
        stem: (middle, output) channels of the input stem.
        stem_depth: 2 keeps the residual middle stem convolution, 0 skips it.
        blocks: (in, mid, out, stride) of every bottleneck block.
        num_classes: classifier outputs.
        dropout_rate: dropout before the classifier.
        in_channels: image channels (3 for RGB, 1 for grey-scale data).
    """

    def __init__(
        self,
        stem: tuple[int, int],
        stem_depth: int,
        blocks: list[tuple[int, int, int, int]],
        num_classes: int = 1000,
        dropout_rate: float = 0.0,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        mid, out = stem
        layers: list[nn.Module] = [ConvBNAct(in_channels, mid, 3, 2, act="relu")]
        if stem_depth > 0:
            layers.append(_ResidualConv(mid))
        layers.append(ConvBNAct(mid, out, 3, 1, act="relu"))
        self.stem = nn.Sequential(*layers)
        self.max_pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.blocks = nn.Sequential(*(Bottleneck(*b) for b in blocks))
        last = blocks[-1][2]
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()
        self.classifier = nn.Linear(last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.max_pool(self.stem(x))  # (N, stem_out, H / 4, W / 4)
        x = self.blocks(x)  # (N, last, H / 32, W / 32)
        x = torch.flatten(self.pool(x), 1)  # (N, last)
        return self.classifier(self.dropout(x))  # (N, num_classes)


@register_builder("ofa-resnet50")
def build_ofa_resnet(
    space: SearchSpace,
    arch: Architecture,
    *,
    num_classes: int | None = None,
    dropout_rate: float = 0.0,
    in_channels: int = 3,
) -> nn.Module:
    """The network of ``arch`` (``num_classes`` defaults to the space's, 1000; ``in_channels``
    is 3 for RGB, 1 for grey-scale data such as ``digits``)."""
    if not isinstance(space, OFAResNetSpace):
        raise TypeError(f"expected an OFAResNetSpace, got {type(space).__name__}")
    return OFAResNet(
        space.stem_channels(arch),
        int(space.as_dict(arch)["stem.depth"]),
        space.block_plan(arch),
        num_classes=space.num_classes if num_classes is None else num_classes,
        dropout_rate=dropout_rate,
        in_channels=in_channels,
    )
