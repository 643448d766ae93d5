"""Evaluation: top-1 accuracy, batch-norm recalibration and accuracy of many supernet members.

Members of a supernet share batch-norm layers whose running statistics were averaged over many
different members during training, so they fit no member in particular. Before a member is
evaluated its statistics are recomputed: reset, then a cumulative average (``momentum=None``) over
a few training batches in train mode, without gradient. :func:`evaluate_subnets` loads the
calibration and validation batches once and reuses them for every architecture.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hsconas.data.datasets import AnyDataset
from hsconas.data.streamed import StreamedImageDataset
from hsconas.nn.supernet.base import Supernet
from hsconas.space import Architecture

log = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor]

STREAM_EVAL_ABOVE_BYTES = 512 * 2**20
"""A streamed evaluation split bigger than this as float32 batches (bytes) is re-decoded per pass
instead of being held in memory."""


@torch.no_grad()
def recalibrate_bn(model: nn.Module, images: Iterable[torch.Tensor]) -> nn.Module:
    """Recompute every batch norm's running statistics of ``model`` on ``images``.

    Statistics are reset and re-estimated as the cumulative average over the given batches
    (``momentum=None``); the original momenta are restored and the model is left in eval mode.

    Args:
        model: a standalone network (an extracted member).
        images: batches (N, C, H, W) of normalised training images, without augmentation;
            each is moved to the model's device.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    device = _device_of(model)
    try:
        for x in images:
            model(x.to(device, non_blocking=True))
    finally:
        for bn, momentum in zip(bns, momenta, strict=True):
            bn.momentum = momentum
        model.eval()
    return model


@torch.no_grad()
def accuracy(model: nn.Module, batches: Iterable[Batch]) -> float:
    """Top-1 accuracy (fraction in [0, 1]) of ``model`` in eval mode over ``batches`` (moved to
    the model's device)."""
    model.eval()
    device = _device_of(model)
    correct = 0
    total = 0
    for x, y in batches:
        pred = model(x.to(device, non_blocking=True)).argmax(dim=1)
        correct += int((pred.cpu() == y).sum())
        total += len(y)
    if total == 0:
        raise ValueError("no images to evaluate on")
    return correct / total


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@dataclass(frozen=True)
class EvalBatches:
    """Batches loaded once and reused for every architecture.

    Attributes:
        calibration: normalised training images for batch-norm recalibration.
        evaluation: (images, labels) of the evaluated split: a list, or for a streamed split
            larger than :data:`STREAM_EVAL_ABOVE_BYTES` as floats, a re-iterable that decodes
            the split again on every pass (memory stays flat at the cost of decoding).
    """

    calibration: list[torch.Tensor]
    evaluation: Sequence[Batch] | Iterable[Batch]

    @classmethod
    def from_dataset(
        cls,
        dataset: AnyDataset,
        *,
        split: str = "val",
        calib_images: int = 2000,
        batch_size: int = 256,
        seed: int = 0,
    ) -> EvalBatches:
        """Calibration batches: ``calib_images`` training images in a seeded order, without
        augmentation; evaluation batches: all of ``split``."""
        g = torch.Generator().manual_seed(seed)
        calib: list[torch.Tensor] = []
        taken = 0
        loader = dataset.loader("train", batch_size, shuffle=True, augment=False)
        for x, _ in loader.batches(g):
            if taken >= calib_images:
                break
            x = x[: calib_images - taken]
            calib.append(x)
            taken += len(x)
        loader_e = dataset.loader(split, batch_size, shuffle=False, augment=False)
        evaluation: Sequence[Batch] | Iterable[Batch]
        c, h, w = dataset.input_shape
        big = (
            isinstance(dataset, StreamedImageDataset)
            and len(dataset.labels(split)) * c * h * w * 4 > STREAM_EVAL_ABOVE_BYTES
        )
        evaluation = _Restream(loader_e) if big else list(loader_e.batches())
        return cls(calib, evaluation)


class _Restream:
    """A split's batches, decoded again on every iteration (for splits too big to hold)."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def __iter__(self) -> Iterator[Batch]:
        return iter(self.loader.batches())


def evaluate_model(
    model: nn.Module,
    dataset: AnyDataset,
    *,
    split: str = "val",
    batch_size: int = 256,
) -> float:
    """Top-1 accuracy of a standalone network on ``split`` (its own batch-norm statistics)."""
    loader = dataset.loader(split, batch_size, shuffle=False, augment=False)
    return accuracy(model, loader.batches())


def evaluate_subnets(
    supernet: Supernet,
    archs: Sequence[Architecture],
    dataset: AnyDataset | None = None,
    *,
    batches: EvalBatches | None = None,
    split: str = "val",
    calib_images: int = 2000,
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = False,
) -> list[float]:
    """Top-1 accuracy of each member in ``archs`` with recalibrated batch norms.

    Each member is extracted (:func:`hsconas.accuracy.extract.extract_subnet`), so the
    supernet's own statistics are never modified; its batch norms are recalibrated on the shared
    calibration batches and it is evaluated on the shared evaluation batches.

    Args:
        supernet: the trained supernet.
        archs: members to evaluate.
        dataset: where the batches come from (unless ``batches`` is given).
        batches: pre-loaded batches (reuse them across calls).
        split: evaluated split of ``dataset`` (``val`` or ``test``).
        calib_images: training images used for recalibration.
        batch_size: images per batch.
        seed: seed of the calibration images' order.
        progress: show a progress bar (one step per member).

    Returns:
        Accuracies as fractions in [0, 1], in the order of ``archs``.
    """
    from tqdm import tqdm

    from hsconas.accuracy.extract import extract_subnet

    if batches is None:
        if dataset is None:
            raise ValueError("give a dataset or pre-loaded batches")
        batches = EvalBatches.from_dataset(
            dataset, split=split, calib_images=calib_images, batch_size=batch_size, seed=seed
        )
    out: list[float] = []
    for arch in tqdm(archs, desc="members", unit="net", disable=not progress, leave=False):
        model = extract_subnet(supernet, arch)
        recalibrate_bn(model, batches.calibration)
        out.append(accuracy(model, batches.evaluation))
        log.debug("%s: top-1 %.4f", supernet.space.to_string(arch), out[-1])
    return out
