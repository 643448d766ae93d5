"""Where training runs: the torch device, mixed precision and the distributed process group.

- :func:`resolve_device`: ``auto`` (CUDA when present, else the CPU), ``cpu``, ``cuda[:N]`` or
  ``mps``; a device that is not there is a :class:`DeviceError` (one line, exit 2 in the CLI).
- :class:`Precision`: ``--amp`` as autocast settings: bfloat16 on the CPU, float16 with a
  gradient scaler on CUDA (or bfloat16, which needs none).
- :func:`dist_info`, :func:`init_distributed`: the rank and world size of a ``torchrun`` /
  elastic-launch worker (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), gloo on CPU, NCCL on CUDA.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from hsconas.errors import HsconasError

__all__ = [
    "DEVICES",
    "DeviceError",
    "DistInfo",
    "Precision",
    "all_reduce_gradients",
    "barrier",
    "broadcast_parameters",
    "dist_info",
    "init_distributed",
    "resolve_device",
    "sum_over_ranks",
]

DEVICES = ("auto", "cpu", "cuda", "mps")


class DeviceError(HsconasError):
    """A device that is unknown or not present on this machine."""


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """The torch device for ``name``.

    Args:
        name: ``auto`` (``cuda`` when a CUDA GPU is present, else ``cpu``), ``cpu``,
            ``cuda`` / ``cuda:N``, ``mps``, or a ``torch.device``; ``None`` means ``auto``.

    Raises:
        DeviceError: an unknown name, or a device this machine does not have.
    """
    if isinstance(name, torch.device):
        name = str(name)
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind, _, index = name.partition(":")
    if kind not in DEVICES[1:] or (index and not index.isdigit()):
        raise DeviceError(f"unknown device {name!r}; choose one of: {', '.join(DEVICES)}")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                "device 'cuda' asked for, but this machine has no usable CUDA GPU (or this torch "
                "is a CPU build); use --device cpu or auto"
            )
        if index and int(index) >= torch.cuda.device_count():
            raise DeviceError(
                f"device {name!r} asked for, but there are {torch.cuda.device_count()} CUDA GPUs"
            )
    if kind == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise DeviceError("device 'mps' asked for, but Apple's MPS backend is not available here")
    return torch.device(name)


@dataclass(frozen=True)
class Precision:
    """Mixed-precision settings of a training run.

    Attributes:
        device: the device the model runs on.
        enabled: autocast on (``--amp``).
        dtype: the autocast dtype: ``torch.bfloat16`` (CPU; CUDA on request) or
            ``torch.float16`` (CUDA default).
    """

    device: torch.device
    enabled: bool = False
    dtype: torch.dtype = torch.float32

    @classmethod
    def for_device(cls, device: torch.device, amp: bool, dtype: str = "auto") -> Precision:
        """``--amp`` on ``device``: bf16 on CPU, fp16 (``dtype='auto'``) or bf16 on CUDA.

        Raises:
            DeviceError: AMP on a device without a supported half type (MPS).
        """
        if not amp:
            return cls(device, False, torch.float32)
        if dtype not in ("auto", "bf16", "fp16"):
            raise DeviceError(f"unknown AMP dtype {dtype!r}; choose auto, bf16 or fp16")
        if device.type == "cpu":
            if dtype == "fp16":
                raise DeviceError("fp16 autocast is for CUDA; on the CPU --amp uses bf16")
            return cls(device, True, torch.bfloat16)
        if device.type == "cuda":
            return cls(device, True, torch.bfloat16 if dtype == "bf16" else torch.float16)
        raise DeviceError(f"--amp is supported on cpu (bf16) and cuda (fp16/bf16), not {device}")

    @property
    def needs_scaler(self) -> bool:
        """float16 gradients underflow without loss scaling (bfloat16's range needs none)."""
        return self.enabled and self.dtype == torch.float16

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The autocast context of a forward pass (a no-op when disabled)."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """A gradient scaler for fp16 on CUDA, else ``None``."""
        return torch.amp.GradScaler(self.device.type) if self.needs_scaler else None

    def describe(self) -> str:
        """``fp32``, ``bf16`` or ``fp16`` (what the metrics record)."""
        if not self.enabled:
            return "fp32"
        return "bf16" if self.dtype == torch.bfloat16 else "fp16"


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a distributed run.

    Attributes:
        rank: global rank (0 writes checkpoints, metrics and the store).
        world_size: number of processes.
        local_rank: rank on this node (the CUDA device index).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1


def dist_info() -> DistInfo:
    """The rank and world size: from the process group when initialised, else the launcher's
    environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), else a single process."""
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local)
    return DistInfo(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")), local)


@contextlib.contextmanager
def init_distributed(device: torch.device) -> Iterator[DistInfo]:
    """Join the launcher's process group for the duration of the block (no-op for one process).

    The backend is NCCL for CUDA devices (each rank on ``cuda:LOCAL_RANK``), gloo otherwise.
    """
    import torch.distributed as dist

    info = dist_info()
    if not info.distributed or dist.is_initialized():
        yield info
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend=backend)
    try:
        yield dist_info()
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------------------------- collectives
def broadcast_parameters(model: torch.nn.Module) -> None:
    """Start every rank from rank 0's weights and buffers."""
    import torch.distributed as dist

    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            dist.broadcast(t.data, src=0)


def all_reduce_gradients(model: torch.nn.Module, world_size: int) -> None:
    """Average the gradients over the ranks in one flat all-reduce.

    Every rank trained the same members, so the same parameters hold gradients everywhere.
    """
    import torch.distributed as dist
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return
    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat /= world_size
    for g, reduced in zip(grads, _unflatten_dense_tensors(flat, grads), strict=True):
        g.copy_(reduced)


def sum_over_ranks(
    loss_sum: float, correct: int, seen: int, device: torch.device
) -> tuple[float, int, int]:
    """One epoch's loss sum, correct and seen counts summed over the ranks."""
    import torch.distributed as dist

    t = torch.tensor([loss_sum, float(correct), float(seen)], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t[0]), int(t[1]), int(t[2])


def barrier() -> None:
    """Wait for every rank (no-op outside a process group)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
