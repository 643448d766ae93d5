"""Block lookup tables (LUT): decompose networks into blocks and measure each block in isolation.

Decomposition is generic: the *block-level modules* of a network are its top-level children,
with ``nn.Sequential`` / ``nn.ModuleList`` children (a builder's ``stem``, ``blocks``, ``head``
containers) expanded one level; a model can override this by defining ``block_modules()``
returning ``(name, module)`` pairs. A forward pass with pre-hooks records the input shape of each
block call. A block is keyed by its class, input shape, dtype and a hash of its ``repr`` (which
lists every layer and hyper-parameter), so identical blocks at identical shapes share one entry
however many networks contain them.

Operations a network's ``forward`` runs outside its blocks (a flatten, a functional pooling) and
the data movement between blocks are not in the LUT; the HSCoNAS model's learned correction
accounts for them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from hsconas.errors import HsconasError
from hsconas.hardware.backends import Backend, get_backend
from hsconas.hardware.measure import DEFAULT_DEVICE, measure_module
from hsconas.hardware.timing import TimingConfig
from hsconas.space import Architecture, SearchSpace, get_space
from hsconas.store import ResultStore

__all__ = [
    "BlockCall",
    "LookupTable",
    "LutEntry",
    "MissingBlockError",
    "block_key",
    "block_modules",
    "build_lut",
    "collect_blocks",
    "decompose",
    "materialize",
    "measure_blocks",
    "meta_build",
]

logger = logging.getLogger(__name__)

_CONTAINERS = (nn.Sequential, nn.ModuleList)


class MissingBlockError(HsconasError):
    """A network contains a block that the lookup table has no entry for."""


@dataclass(frozen=True)
class BlockCall:
    """One call of a block-level module during a forward pass.

    Attributes:
        key: the LUT key (class, input shape, dtype, repr hash).
        name: the module's qualified name in the network (``blocks.3``).
        module: the block module itself (shares weights with the network).
        input_shape: input shape without the batch dimension.
        dtype: input dtype name.
    """

    key: str
    name: str
    module: nn.Module = field(repr=False, compare=False)
    input_shape: tuple[int, ...]
    dtype: str


def block_key(module: nn.Module, input_shape: Sequence[int], dtype: str = "float32") -> str:
    """Stable key of ``module`` called on inputs of ``input_shape`` (batch excluded)."""
    digest = hashlib.sha1(repr(module).encode()).hexdigest()[:12]
    shape = "x".join(str(int(s)) for s in input_shape)
    return f"{type(module).__name__}|{shape}|{dtype}|{digest}"


def block_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The block-level modules of ``model`` in registration order (see the module docstring)."""
    custom = getattr(model, "block_modules", None)
    if callable(custom):
        return list(custom())
    out: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        if isinstance(child, _CONTAINERS) and len(child) > 0:
            out.extend((f"{name}.{sub}", m) for sub, m in child.named_children())
        else:
            out.append((name, child))
    return out


def decompose(
    model: nn.Module, input_shape: Sequence[int], *, dtype: torch.dtype = torch.float32
) -> list[BlockCall]:
    """The block calls of one forward pass of ``model`` on a ``(1, *input_shape)`` input, in order.

    Raises:
        HsconasError: if a block receives something other than one tensor.
    """
    calls: list[BlockCall] = []
    handles = []

    def make_hook(name: str) -> Callable[[nn.Module, tuple[Any, ...]], None]:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            if len(args) != 1 or not isinstance(args[0], torch.Tensor):
                raise HsconasError(
                    f"block {name} ({type(module).__name__}) takes {len(args)} inputs; LUT "
                    "decomposition needs blocks with one tensor input (define block_modules())"
                )
            shape = tuple(int(s) for s in args[0].shape[1:])
            dt = str(args[0].dtype).removeprefix("torch.")
            calls.append(BlockCall(block_key(module, shape, dt), name, module, shape, dt))

        return hook

    for name, module in block_modules(model):
        handles.append(module.register_forward_pre_hook(make_hook(name)))
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(torch.zeros(1, *input_shape, dtype=dtype, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return calls


def meta_build(arch: Architecture) -> nn.Module:
    """``build_model(arch)`` on the meta device: shapes without memory or initialisation cost.

    Blocks of such a model must go through :func:`materialize` before they can run.
    """
    from hsconas.nn.registry import build_model

    with torch.device("meta"):
        return build_model(arch)


def materialize(module: nn.Module) -> nn.Module:
    """``module`` with real CPU tensors: meta tensors are allocated and re-initialised.

    Every submodule with ``reset_parameters`` (convolutions, linear and norm layers) is reset to
    its default initialisation and norm layers' running statistics to mean 0 / variance 1, so the
    values are ordinary floats (no denormals or NaNs from uninitialised memory). A module without
    meta tensors is returned unchanged.
    """
    tensors = list(module.parameters()) + list(module.buffers())
    if not any(t.is_meta for t in tensors):
        return module
    module = module.to_empty(device="cpu")
    with torch.no_grad():
        for sub in module.modules():
            reset = getattr(sub, "reset_parameters", None)
            if callable(reset):
                reset()
            elif any(True for _ in sub.parameters(recurse=False)):
                for p in sub.parameters(recurse=False):
                    nn.init.normal_(p, std=0.02)
            for name, buf in sub.named_buffers(recurse=False):
                if buf.is_floating_point() and "var" not in name:
                    buf.zero_()
                elif buf.is_floating_point():
                    buf.fill_(1.0)
                else:
                    buf.zero_()
    return module


def _input_shape(space: SearchSpace, arch: Architecture, resolution: int | None) -> tuple[int, ...]:
    c, h, w = space.input_shape(arch)
    if resolution is None or "resolution" in space.gene_names:
        return (c, h, w)
    return (c, resolution, resolution)


def collect_blocks(
    space: SearchSpace | str,
    *,
    resolution: int | None = None,
    seed: int = 0,
    max_samples: int = 2000,
    patience: int = 150,
    build: Callable[[Architecture], nn.Module] | None = None,
    progress: Callable[[int, int], None] | None = None,
    block_calls: Callable[[Architecture], Iterable[BlockCall]] | None = None,
) -> dict[str, BlockCall]:
    """Distinct (block, input shape) pairs of a space, by sampling architectures.

    First decomposes the networks of the space's ``block_cover()``, if it has one (networks
    that together hold every block, for spaces whose blocks combine several genes), then
    samples architectures (seeded) and decomposes each until ``patience`` consecutive samples add
    no new key or ``max_samples`` were drawn. With per-layer choices that each appear with
    probability >= 1/10, 150 samples without a new key leave a missed key with probability
    below 1e-6 per key.

    Args:
        space: the space or its name.
        resolution: input resolution, pixels (fixes a ``resolution`` gene if the space has one).
        seed: seed of the architecture sampler.
        max_samples: cap on sampled architectures.
        patience: stop after this many samples without a new key.
        build: arch -> module (default :func:`hsconas.nn.build_model`).
        progress: called with (samples drawn, distinct keys) after each sample.
        block_calls: arch -> its block calls, replacing the build-and-decompose default (a space
            that can list its blocks without a forward pass passes a faster function here).

    Returns:
        key -> a representative block call, in order of discovery.
    """
    sp = get_space(space) if isinstance(space, str) else space
    sp = sp.at_resolution(resolution)
    make = meta_build if build is None else build
    rng = np.random.default_rng(seed)
    found: dict[str, BlockCall] = {}

    def calls_of(arch: Architecture) -> Iterable[BlockCall]:
        if block_calls is not None:
            return block_calls(arch)
        return decompose(make(arch), _input_shape(sp, arch, resolution))

    # a space whose blocks combine several genes (ofa-resnet50: a unit's first block takes the
    # previous unit's width) lists networks that hold all of them; sampling alone misses some
    cover = getattr(sp, "block_cover", None)
    for arch in cover() if callable(cover) else []:
        for call in calls_of(arch):
            found.setdefault(call.key, call)
    since_new = 0
    for i in range(max_samples):
        arch = sp.sample(rng)
        new = 0
        for call in calls_of(arch):
            if call.key not in found:
                found[call.key] = call
                new += 1
        since_new = 0 if new else since_new + 1
        if progress is not None:
            progress(i + 1, len(found))
        if since_new >= patience:
            break
    return found


@dataclass(frozen=True)
class LutEntry:
    """Isolated latency of one block.

    Attributes:
        key: the block key.
        latency_ms: median latency, milliseconds.
        spread_ms: half the IQR of the runs, milliseconds.
        stable: whether the timing protocol met its precision target.
        input_shape: input shape without batch.
    """

    key: str
    latency_ms: float
    spread_ms: float
    stable: bool
    input_shape: tuple[int, ...]


@dataclass(frozen=True)
class LookupTable:
    """Block latencies of one space on one device and backend.

    Attributes:
        space: the space name.
        device: device name.
        backend: backend name.
        settings: backend settings (threads, ...).
        resolution: input resolution the blocks were collected at (``None``: space default).
        entries: key -> entry.
    """

    space: str
    device: str
    backend: str
    settings: Mapping[str, Any]
    resolution: int | None
    entries: Mapping[str, LutEntry]

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def missing(self, keys: Iterable[str]) -> list[str]:
        """The keys without an entry."""
        return [k for k in keys if k not in self.entries]

    def latencies(self, keys: Sequence[str]) -> np.ndarray:
        """Latency of each key, milliseconds.

        Raises:
            MissingBlockError: if a key has no entry (the message names it).
        """
        miss = self.missing(keys)
        if miss:
            raise MissingBlockError(
                f"LUT of {self.space!r} ({self.backend}, {self.device}) has no entry for "
                f"{len(miss)} block(s), e.g. {miss[0]!r}; rebuild the LUT with more samples or "
                "at this resolution"
            )
        return np.array([self.entries[k].latency_ms for k in keys], dtype=float)

    def total_ms(self, keys: Sequence[str]) -> float:
        """Sum of the latencies of ``keys`` (a network's blocks), milliseconds."""
        return float(self.latencies(keys).sum())

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (see :meth:`from_json`)."""
        return {
            "space": self.space,
            "device": self.device,
            "backend": self.backend,
            "settings": dict(self.settings),
            "resolution": self.resolution,
            "entries": [
                {
                    "key": e.key,
                    "latency_ms": e.latency_ms,
                    "spread_ms": e.spread_ms,
                    "stable": e.stable,
                    "input_shape": list(e.input_shape),
                }
                for e in self.entries.values()
            ],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> LookupTable:
        """Inverse of :meth:`to_json`."""
        entries = {
            d["key"]: LutEntry(
                key=d["key"],
                latency_ms=float(d["latency_ms"]),
                spread_ms=float(d["spread_ms"]),
                stable=bool(d["stable"]),
                input_shape=tuple(int(s) for s in d["input_shape"]),
            )
            for d in doc["entries"]
        }
        return cls(
            space=str(doc["space"]),
            device=str(doc["device"]),
            backend=str(doc["backend"]),
            settings=dict(doc["settings"]),
            resolution=None if doc.get("resolution") is None else int(doc["resolution"]),
            entries=entries,
        )


def measure_blocks(
    blocks: Mapping[str, BlockCall],
    backend: Backend | str,
    *,
    space: str,
    resolution: int | None = None,
    store: ResultStore | None = None,
    device: str = DEFAULT_DEVICE,
    timing: TimingConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LookupTable:
    """Measure every block in isolation (batch 1), reusing stored entries; the lookup table.

    Args:
        blocks: key -> block call (from :func:`collect_blocks`).
        backend: backend or its name.
        space: space name the entries are filed under (kind 'block').
        resolution: recorded in the table.
        store: results store; entries already there are not measured again.
        device: device name.
        timing: timing protocol parameters.
        progress: called with (done, total) after each block.
    """
    be = get_backend(backend)
    entries: dict[str, LutEntry] = {}
    for i, (key, call) in enumerate(blocks.items()):
        m = measure_module(
            materialize(call.module), call.input_shape, be, key=key, space=space, kind="block",
            timing=timing, store=store, device=device, extra={"block": call.name},
        )  # fmt: skip
        entries[key] = LutEntry(key, m.median_ms, m.spread_ms, m.stable, call.input_shape)
        if progress is not None:
            progress(i + 1, len(blocks))
    return LookupTable(
        space=space,
        device=device,
        backend=be.name,
        settings=be.settings(),
        resolution=resolution,
        entries=entries,
    )


def build_lut(
    space: str,
    backend: Backend | str,
    *,
    resolution: int | None = None,
    seed: int = 0,
    store: ResultStore | None = None,
    device: str = DEFAULT_DEVICE,
    timing: TimingConfig | None = None,
    max_samples: int = 2000,
    patience: int = 150,
    progress: Callable[[str, int, int], None] | None = None,
) -> LookupTable:
    """Collect the distinct blocks of ``space`` at ``resolution`` and measure each one.

    Args:
        progress: called with (phase, done, total) where phase is 'collect' or 'measure' (for
            'collect', ``total`` is the number of distinct keys so far).
    """

    def on_collect(n: int, k: int) -> None:
        if progress is not None:
            progress("collect", n, k)

    def on_measure(n: int, k: int) -> None:
        if progress is not None:
            progress("measure", n, k)

    blocks = collect_blocks(
        space, resolution=resolution, seed=seed, max_samples=max_samples, patience=patience,
        progress=on_collect,
    )  # fmt: skip
    logger.info("%s: %d distinct blocks at resolution %s", space, len(blocks), resolution)
    return measure_blocks(
        blocks, backend, space=space, resolution=resolution, store=store, device=device,
        timing=timing, progress=on_measure,
    )  # fmt: skip
