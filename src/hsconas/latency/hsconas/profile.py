"""Profile a device for the HSCoNAS model: build the block LUT, measure a few networks end to end,
fit the correction (:func:`profile_device`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hsconas.hardware.reference import Reference, space_reference
from hsconas.latency.hsconas.model import HSCoNASModel, IncompatibleModelError
from hsconas.space import Architecture, get_space

__all__ = ["ProfileResult", "model_reference", "profile_device", "sample_archs"]


def model_reference(model: HSCoNASModel) -> Reference | None:
    """The reference network ``model`` was measured against, calibrated as then (or ``None``).

    Measurements that are compared with the model's predictions must be normalised by the same
    reference with the same base latency, so the base is taken from the model file.

    Raises:
        IncompatibleModelError: if the model names a reference this version cannot rebuild.
    """
    key = model.lut.settings.get("reference")
    if key is None:
        return None
    ref = space_reference(model.space, model.lut.resolution)
    saved = model.info.get("reference") or {}
    if ref.key != key or saved.get("base_ms") is None:
        raise IncompatibleModelError(
            f"this latency model was measured against the reference network {key!r}, which "
            "this hsconas cannot rebuild; profile the device again with `hsconas latency profile`"
        )
    ref.base_ms = float(saved["base_ms"])
    return ref


def sample_archs(
    space: str, n: int, *, resolution: int | None, seed: int, exclude: Sequence[Architecture] = ()
) -> list[Architecture]:
    """``n`` distinct architectures of ``space`` at ``resolution`` not in ``exclude`` (seeded)."""
    sp = get_space(space).at_resolution(resolution)
    rng = np.random.default_rng(seed)
    seen = set(exclude)
    out: list[Architecture] = []
    tries = 0
    while len(out) < n and tries < 100 * max(n, 1):
        a = sp.sample(rng)
        tries += 1
        if a not in seen:
            seen.add(a)
            out.append(a)
    return out


@dataclass(frozen=True)
class ProfileResult:
    """What :func:`profile_device` did.

    Attributes:
        model: the fitted model.
        train_archs: the architectures measured end to end.
        train_ms: their measured latencies, milliseconds.
        n_blocks: LUT entries.
        collect_s: seconds spent enumerating distinct blocks.
        lut_s: seconds spent measuring blocks (zero for entries found in the store).
        e2e_s: seconds spent on end-to-end measurements.
    """

    model: HSCoNASModel
    train_archs: tuple[Architecture, ...]
    train_ms: tuple[float, ...]
    n_blocks: int
    collect_s: float
    lut_s: float
    e2e_s: float


def profile_device(
    space: str,
    backend: Any,
    *,
    resolution: int | None = None,
    n_e2e: int = 30,
    seed: int = 0,
    store: Any = None,
    device: str | None = None,
    timing: Any = None,
    block_timing: Any = None,
    blocks: Mapping[str, Any] | None = None,
    progress: Any = None,
) -> ProfileResult:
    """Build the LUT of ``space`` on ``backend``, measure ``n_e2e`` networks, fit the model.

    Args:
        space: space name.
        backend: a :class:`~hsconas.hardware.backends.Backend` or its name (measured here, one
            at a time), or an :class:`~hsconas.hardware.fanout.Executor` (e.g. a
            :class:`~hsconas.hardware.fanout_ray.RayExecutor` over several units of one device).
        resolution: input resolution, pixels (``None``: the space's default).
        n_e2e: end-to-end measurements for the correction.
        seed: seed of block collection and of the end-to-end sample.
        store: :class:`~hsconas.store.ResultStore`; stored results are reused (resume).
        device: device name results are filed under (default ``local-cpu``).
        timing: timing protocol of end-to-end measurements.
        block_timing: timing protocol of block measurements (default: ``timing``).
        blocks: precollected distinct blocks (from ``collect_blocks``), to share between backends.
        progress: called with (phase, done, total); phases 'collect', 'measure', 'e2e'.
    """
    import time

    from hsconas.hardware.fanout import Executor, LocalExecutor, MeasureJob
    from hsconas.hardware.measure import DEFAULT_DEVICE
    from hsconas.latency.hsconas.lut import LookupTable, LutEntry, collect_blocks

    ex = backend if isinstance(backend, Executor) else LocalExecutor(backend)
    dev = device or DEFAULT_DEVICE

    def report(phase: str, done: int, total: int) -> None:
        if progress is not None:
            progress(phase, done, total)

    t0 = time.perf_counter()
    if blocks is None:
        blocks = collect_blocks(
            space, resolution=resolution, seed=seed,
            progress=lambda n, k: report("collect", n, k),
        )  # fmt: skip
    t1 = time.perf_counter()
    block_jobs = [
        MeasureJob(call.module, kind="block", key=key, space=space, input_shape=call.input_shape,
                   extra={"block": call.name})
        for key, call in blocks.items()
    ]  # fmt: skip
    measured = ex.measure(
        block_jobs, timing=block_timing or timing, store=store, device=dev,
        progress=lambda n, k: report("measure", n, k),
    )  # fmt: skip
    lut = LookupTable(
        space=space, device=dev, backend=ex.name, settings=ex.settings(), resolution=resolution,
        entries={
            j.key: LutEntry(j.key, m.median_ms, m.spread_ms, m.stable, j.input_shape)
            for j, m in zip(block_jobs, measured, strict=True)
            if j.key is not None and j.input_shape is not None
        },
    )  # fmt: skip
    t2 = time.perf_counter()
    archs = sample_archs(space, n_e2e, resolution=resolution, seed=seed + 1)
    e2e = ex.measure(
        [MeasureJob(a) for a in archs], timing=timing, store=store, device=dev,
        progress=lambda n, k: report("e2e", n, k),
    )  # fmt: skip
    lat = [m.median_ms for m in e2e]
    t3 = time.perf_counter()
    info: dict[str, Any] = {
        "fingerprint": ex.device_fingerprint(),  # the agent's, for a remote backend
        "timing": None if timing is None else timing.as_dict(),
        "seed": seed,
    }
    if ex.reference is not None:
        info["reference"] = {"key": ex.reference.key, "base_ms": ex.reference.base_ms}
    model = HSCoNASModel.fit(lut, archs, lat, info=info)
    return ProfileResult(model, tuple(archs), tuple(lat), len(lut), t1 - t0, t2 - t1, t3 - t2)
