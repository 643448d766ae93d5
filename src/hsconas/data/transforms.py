"""Image transforms with torchvision's semantics, on PIL and torch alone.

torchvision is the reference for how training images are augmented and evaluation images framed;
where it imports, :func:`train_transform` and :func:`eval_transform` build its own classes. Where
it does not (torchvision's wheels are tied to one torch build), the classes here reproduce its
documented behaviour, including its use of the global torch RNG (so ``DataLoader`` workers, which
seed torch per worker, augment reproducibly):

- :class:`RandomResizedCrop`: a crop of random area share ``scale`` (default 0.08..1) and aspect
  ratio ``ratio`` (log-uniform in 3/4..4/3), 10 attempts, then the central crop clamped to the
  ratio range; resized to the output size (bilinear, antialiased, as PIL resizes);
- :class:`RandomCrop`: zero padding then a uniformly placed crop (the CIFAR recipe);
- :class:`RandomHorizontalFlip` (probability 0.5), :class:`Resize` (the shorter side to ``size``,
  the longer one ``int(size * long / short)``), :class:`CenterCrop` (offsets rounded, zero padding
  when the image is smaller), :class:`ToTensor` (``(C, H, W)`` floats in [0, 1]) and
  :class:`Normalize` (``(x - mean) / std`` per channel).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

__all__ = [
    "CenterCrop",
    "Compose",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "Resize",
    "ToTensor",
    "eval_transform",
    "torchvision_available",
    "train_transform",
]

Transform = Callable[[Any], Any]


class Compose:
    """Apply ``transforms`` in order."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, img: Any) -> Any:
        for t in self.transforms:
            img = t(img)
        return img


class RandomResizedCrop:
    """Crop a random area share and aspect ratio, then resize to ``size`` x ``size`` pixels.

    Args:
        size: output side, pixels.
        scale: range of the crop's area as a share of the image's.
        ratio: range of the crop's aspect ratio (width / height), sampled log-uniformly.
    """

    def __init__(
        self,
        size: int,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
    ) -> None:
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError(f"scale and ratio must be (min, max), got {scale} and {ratio}")
        self.size = int(size)
        self.scale = scale
        self.ratio = ratio

    @staticmethod
    def get_params(
        img: Image.Image, scale: tuple[float, float], ratio: tuple[float, float]
    ) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the crop, in pixels."""
        width, height = img.size
        area = height * width
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            target_area = area * torch.empty(1).uniform_(scale[0], scale[1]).item()
            aspect = math.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1]).item())
            w = round(math.sqrt(target_area * aspect))
            h = round(math.sqrt(target_area / aspect))
            if 0 < w <= width and 0 < h <= height:
                i = int(torch.randint(0, height - h + 1, size=(1,)).item())
                j = int(torch.randint(0, width - w + 1, size=(1,)).item())
                return i, j, h, w
        in_ratio = float(width) / float(height)  # fallback: the central crop
        if in_ratio < min(ratio):
            w = width
            h = round(w / min(ratio))
        elif in_ratio > max(ratio):
            h = height
            w = round(h * max(ratio))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, img: Image.Image) -> Image.Image:
        i, j, h, w = self.get_params(img, self.scale, self.ratio)
        return img.crop((j, i, j + w, i + h)).resize(
            (self.size, self.size), Image.Resampling.BILINEAR
        )


class RandomCrop:
    """Pad by ``padding`` zero pixels on every side, then crop ``size`` x ``size`` at random."""

    def __init__(self, size: int, padding: int = 0) -> None:
        self.size = int(size)
        self.padding = int(padding)

    def __call__(self, img: Image.Image) -> Image.Image:
        if self.padding > 0:
            img = _pad(img, self.padding, self.padding, self.padding, self.padding)
        w, h = img.size
        th = tw = self.size
        if h < th or w < tw:
            img = _pad(img, 0, 0, max(0, tw - w), max(0, th - h))
            w, h = img.size
        i = int(torch.randint(0, h - th + 1, size=(1,)).item())
        j = int(torch.randint(0, w - tw + 1, size=(1,)).item())
        return img.crop((j, i, j + tw, i + th))


class RandomHorizontalFlip:
    """Mirror left-right with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img: Image.Image) -> Image.Image:
        if torch.rand(1).item() < self.p:
            return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return img


class Resize:
    """Resize so the shorter side is ``size`` pixels (aspect ratio kept; bilinear)."""

    def __init__(self, size: int) -> None:
        self.size = int(size)

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        short, long = (w, h) if w <= h else (h, w)
        if short == self.size:
            return img
        new_long = int(self.size * long / short)
        new_w, new_h = (self.size, new_long) if w <= h else (new_long, self.size)
        return img.resize((new_w, new_h), Image.Resampling.BILINEAR)


class CenterCrop:
    """Crop the central ``size`` x ``size`` pixels (zero padding where the image is smaller)."""

    def __init__(self, size: int) -> None:
        self.size = int(size)

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        th = tw = self.size
        if tw > w or th > h:
            pl, pt = (tw - w) // 2 if tw > w else 0, (th - h) // 2 if th > h else 0
            pr, pb = (tw - w + 1) // 2 if tw > w else 0, (th - h + 1) // 2 if th > h else 0
            img = _pad(img, pl, pt, pr, pb)
            w, h = img.size
            if w == tw and h == th:
                return img
        top = round((h - th) / 2.0)
        left = round((w - tw) / 2.0)
        return img.crop((left, top, left + tw, top + th))


class ToTensor:
    """A PIL image (``L`` or ``RGB``) as a float tensor ``(C, H, W)`` in [0, 1]."""

    def __call__(self, img: Image.Image) -> torch.Tensor:
        arr = np.asarray(img, dtype=np.uint8)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        return torch.from_numpy(arr.transpose(2, 0, 1).copy()).float().div_(255.0)


class Normalize:
    """``(x - mean) / std`` per channel of a ``(C, H, W)`` tensor."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = torch.tensor(list(mean), dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(list(std), dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _pad(img: Image.Image, left: int, top: int, right: int, bottom: int) -> Image.Image:
    w, h = img.size
    out = Image.new(img.mode, (w + left + right, h + top + bottom))
    out.paste(img, (left, top))
    return out


@functools.cache
def torchvision_available() -> bool:
    """Whether ``torchvision.transforms`` imports beside this torch."""
    try:
        import torchvision.transforms  # noqa: F401
    except Exception:  # ImportError, or a build mismatch raising RuntimeError at import
        return False
    return True


def train_transform(
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    crop: str = "resized",
    use_torchvision: bool | None = None,
) -> Transform:
    """The training transform at ``size`` pixels: a random crop, a horizontal flip, the tensor
    and the normalisation.

    Args:
        size: output side, pixels.
        mean: per-channel mean of ``[0, 1]`` images.
        std: per-channel standard deviation.
        crop: ``resized`` (RandomResizedCrop, scale 0.08..1: the ImageNet recipe) or ``padded``
            (resize the shorter side to ``size``, pad ``size // 8`` and crop: the CIFAR recipe).
        use_torchvision: build torchvision's classes (default: when it imports).
    """
    if crop not in ("resized", "padded"):
        raise ValueError(f"crop must be 'resized' or 'padded', got {crop!r}")
    tv = torchvision_available() if use_torchvision is None else use_torchvision
    if tv:
        import torchvision.transforms as T

        first: list[Any] = (
            [T.RandomResizedCrop(size)]
            if crop == "resized"
            else [T.Resize(size), T.RandomCrop(size, padding=max(1, size // 8))]
        )
        return T.Compose([*first, T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])
    head: list[Transform] = (
        [RandomResizedCrop(size)]
        if crop == "resized"
        else [Resize(size), RandomCrop(size, padding=max(1, size // 8))]
    )
    return Compose([*head, RandomHorizontalFlip(), ToTensor(), Normalize(mean, std)])


def eval_transform(
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    crop_ratio: float = 0.875,
    use_torchvision: bool | None = None,
) -> Transform:
    """The evaluation transform: resize the shorter side to ``size / crop_ratio``, crop the
    central ``size`` x ``size`` pixels, tensor, normalisation (no randomness).

    Args:
        size: output side, pixels.
        mean: per-channel mean of ``[0, 1]`` images.
        std: per-channel standard deviation.
        crop_ratio: share of the resized image kept by the centre crop (0.875: 224 of 256).
        use_torchvision: build torchvision's classes (default: when it imports).
    """
    if not 0 < crop_ratio <= 1:
        raise ValueError(f"crop_ratio must lie in (0, 1], got {crop_ratio}")
    resize = math.floor(size / crop_ratio + 1e-9)
    tv = torchvision_available() if use_torchvision is None else use_torchvision
    if tv:
        import torchvision.transforms as T

        return T.Compose(
            [T.Resize(resize), T.CenterCrop(size), T.ToTensor(), T.Normalize(mean, std)]
        )
    return Compose([Resize(resize), CenterCrop(size), ToTensor(), Normalize(mean, std)])
