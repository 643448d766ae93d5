"""PyTorch builders of the MobileNet-family spaces (OFA MobileNetV3, ProxylessNAS).

Networks are resolution-agnostic (global average pooling before the classifier), so one module
serves every input size; parameter counts do not depend on the resolution, MACs do.

Layouts (shapes for a 224 input):

- ``MobileNetV3``: stem 3x3/2 (h-swish) -> MBConv blocks -> 1x1 final expand (BN, h-swish)
  -> global pool -> 1x1 feature mix (no BN, h-swish) -> dropout -> linear.
- ``ProxylessNASNets``: stem 3x3/2 (ReLU6) -> MBConv blocks -> 1x1 feature mix (BN, ReLU6)
  -> global pool -> dropout -> linear.
"""

from __future__ import annotations

import torch
from torch import nn

from hsconas.nn.blocks import ConvBNAct, MBConv
from hsconas.nn.registry import register_builder
from hsconas.space import Architecture, SearchSpace
from hsconas.spaces.ofa_mbv3 import BlockSpec, ElasticMBConvSpace, MBNetMacro
from hsconas.spaces.proxylessnas import ProxylessMacroSpace


class MobileNetFamilyNet(nn.Module):
    """A standalone MobileNetV3 / ProxylessNAS network built from a macro and block list.

    Args:
        macro: the fixed macro-architecture.
        blocks: every MBConv block in order (the fixed first block included).
        num_classes: classifier outputs.
        dropout_rate: dropout before the classifier; ``None`` uses the macro's published value.
        in_channels: image channels (3 for RGB, 1 for grey-scale data).
    """

    def __init__(
        self,
        macro: MBNetMacro,
        blocks: list[BlockSpec],
        *,
        num_classes: int = 1000,
        dropout_rate: float | None = None,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        bn = {"bn_eps": macro.bn_eps, "bn_momentum": macro.bn_momentum}
        self.family = macro.family
        self.first_conv = ConvBNAct(
            in_channels,
            macro.stem_width,
            3,
            2,
            act=macro.stem_act,
            bn_eps=macro.bn_eps,
            bn_momentum=macro.bn_momentum,
        )
        self.blocks = nn.Sequential(
            *(
                MBConv(
                    b.in_channels,
                    b.out_channels,
                    b.kernel_size,
                    b.stride,
                    b.expand_ratio,
                    act=b.act,
                    use_se=b.use_se,
                    mid_channels=b.mid_channels,
                    residual=b.residual,
                    bn_eps=macro.bn_eps,
                    bn_momentum=macro.bn_momentum,
                )
                for b in blocks
            )
        )
        last = blocks[-1].out_channels
        self.final_expand: nn.Module = nn.Identity()
        if macro.family == "MobileNetV3":
            if macro.final_expand_width is None:
                raise ValueError("a MobileNetV3 macro needs final_expand_width")
            self.final_expand = ConvBNAct(
                last,
                macro.final_expand_width,
                1,
                act=macro.head_act,
                bn_eps=bn["bn_eps"],
                bn_momentum=bn["bn_momentum"],
            )
            last = macro.final_expand_width
        self.feature_mix = ConvBNAct(
            last,
            macro.feature_mix_width,
            1,
            act=macro.head_act,
            use_bn=macro.feature_mix_bn,
            bn_eps=bn["bn_eps"],
            bn_momentum=bn["bn_momentum"],
        )
        rate = macro.dropout_rate if dropout_rate is None else dropout_rate
        self.dropout = nn.Dropout(rate) if rate > 0 else nn.Identity()
        self.classifier = nn.Linear(macro.feature_mix_width, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features before the classifier, shape (N, feature_mix_width)."""
        x = self.blocks(self.first_conv(x))  # (N, C_last, H / 32, W / 32)
        x = self.final_expand(x)
        if self.family == "MobileNetV3":
            x = x.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
            x = self.feature_mix(x)
        else:
            x = self.feature_mix(x)
            x = x.mean(dim=(2, 3), keepdim=True)
        return torch.flatten(x, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.forward_features(x)))  # (N, num_classes)


def build_mobilenet(
    space: SearchSpace,
    arch: Architecture,
    *,
    num_classes: int = 1000,
    dropout_rate: float | None = None,
    in_channels: int = 3,
) -> MobileNetFamilyNet:
    """The network of ``arch`` in a MobileNet-family space.

    Args:
        space: an :class:`ElasticMBConvSpace` or :class:`ProxylessMacroSpace`.
        arch: a valid architecture of ``space``.
        num_classes: classifier outputs (1000 for ImageNet).
        dropout_rate: dropout before the classifier; defaults to the published value.
        in_channels: image channels (3 for RGB, 1 for grey-scale data such as ``digits``).
    """
    if not isinstance(space, ElasticMBConvSpace | ProxylessMacroSpace):
        raise TypeError(f"space {space.name!r} is not a MobileNet-family space")
    return MobileNetFamilyNet(
        space.macro,
        space.block_specs(arch),
        num_classes=num_classes,
        dropout_rate=dropout_rate,
        in_channels=in_channels,
    )


for _name in (
    "ofa-mbv3",
    "ofa-mbv3-w1.2",
    "proxylessnas",
    "proxylessnas-mobile",
    "proxylessnas-mobile14",
    "proxylessnas-cpu",
    "proxylessnas-gpu",
):
    register_builder(_name)(build_mobilenet)
