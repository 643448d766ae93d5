"""End-to-end and block measurements that go through the results store.

A measurement is keyed by (space, kind, key, device, backend, settings); settings hold the backend
settings (threads, runtime version) plus the batch size and input shape. With a store, a key that
was already measured is returned from the store instead of being measured again, so an interrupted
profiling run resumes where it stopped. Results are written as soon as they are measured.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from torch import nn

from hsconas.hardware.backends import Backend, get_backend
from hsconas.hardware.reference import calibration_timing
from hsconas.hardware.timing import TimingConfig, TimingResult
from hsconas.space import Architecture, get_space
from hsconas.spaces.resolve import arch_input_shape
from hsconas.store import Measurement, ResultStore

__all__ = [
    "DEFAULT_DEVICE",
    "calibrate_reference",
    "measure_module",
    "measure_network",
    "measurement_settings",
]

logger = logging.getLogger(__name__)

DEFAULT_DEVICE = "local-cpu"
"""Device name used when the caller gives none (the machine the process runs on)."""


def measurement_settings(
    backend: Backend, input_shape: tuple[int, ...], batch: int
) -> dict[str, Any]:
    """The settings a measurement is keyed by: backend settings, batch size and input shape."""
    return {**backend.settings(), "batch": int(batch), "input_shape": [int(s) for s in input_shape]}


def _record(
    result: TimingResult,
    *,
    space: str,
    kind: str,
    key: str,
    device: str,
    backend: str,
    settings: dict[str, Any],
    fingerprint: dict[str, Any],
    timing: TimingConfig,
    wall_s: float,
    extra: Mapping[str, Any],
) -> Measurement:
    """The stored form of a timing result (its CI, stopping reason, protocol and cost)."""
    return Measurement(
        space=space,
        kind=kind,
        key=key,
        device=device,
        backend=backend,
        settings=settings,
        median_ms=result.median_ms,
        spread_ms=result.spread_ms,
        n_runs=result.n_runs,
        stable=result.stable,
        fingerprint=fingerprint,
        extra={
            "ci_low_ms": result.ci_low_ms,
            "ci_high_ms": result.ci_high_ms,
            "stop_reason": result.stop_reason,
            "warmup_runs": result.warmup_runs,
            "elapsed_s": round(result.elapsed_s, 4),
            "wall_s": round(wall_s, 4),
            "timing": timing.as_dict(),
            **extra,
        },
        created=time.time(),
    )


def calibrate_reference(
    backend: Backend,
    *,
    store: ResultStore | None = None,
    device: str = DEFAULT_DEVICE,
    reuse: bool = True,
) -> Measurement:
    """Set ``backend.reference.base_ms``: from the store if calibrated before, else by measuring.

    The calibration is stored (kind ``reference``, keyed by the reference's key and the backend's
    runtime settings), so that later runs against the same reference on the same device share one
    base, and their normalised milliseconds stay comparable.

    Raises:
        ValueError: if the backend has no reference network.
    """
    ref = backend.reference
    if ref is None:
        raise ValueError("this backend has no reference network")
    settings = {**backend.runtime_settings(), "batch": 1, "input_shape": list(ref.input_shape)}
    if store is not None and reuse:
        found = store.get_measurement(
            space="", kind="reference", key=ref.key, device=device, backend=backend.name,
            settings=settings,
        )  # fmt: skip
        if found is not None:
            ref.base_ms = found.median_ms
            return found
    cfg = calibration_timing()
    t0 = time.perf_counter()
    result = backend.calibrate_reference(cfg)
    fp = {**backend.device_fingerprint(), "settings": backend.runtime_settings()}
    m = _record(
        result, space="", kind="reference", key=ref.key, device=device, backend=backend.name,
        settings=settings, fingerprint=fp,
        timing=cfg, wall_s=time.perf_counter() - t0, extra={},
    )  # fmt: skip
    if store is not None:
        store.put_measurement(m)
    return m


def measure_module(
    module: nn.Module,
    input_shape: tuple[int, ...],
    backend: Backend | str,
    *,
    key: str | None = None,
    space: str = "",
    kind: str = "network",
    batch: int = 1,
    timing: TimingConfig | None = None,
    store: ResultStore | None = None,
    device: str = DEFAULT_DEVICE,
    reuse: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> Measurement:
    """Measure ``module`` on ``backend`` (or return the stored result).

    Args:
        module: the network or block.
        input_shape: shape of one input without the batch dimension.
        backend: a backend or its name (then with its default settings).
        key: the store key; default: a hash of the module's repr and the input shape.
        space: the space name ('' for free-standing modules).
        kind: 'network' or 'block'.
        batch: batch size.
        timing: timing protocol parameters.
        store: results store; with ``reuse``, a stored measurement of the same key and settings
            is returned without measuring; a new measurement is written before returning.
        device: device name the result is filed under.
        reuse: return stored results when present.
        extra: stored with the measurement (e.g. the block's description).

    Returns:
        The measurement (``stable=False`` if the precision target was not met).
    """
    be = get_backend(backend)
    shape = tuple(int(s) for s in input_shape)
    settings = measurement_settings(be, shape, batch)
    if key is None:
        key = "module:" + hashlib.sha1(repr(module).encode()).hexdigest()[:16]
    if store is not None and reuse:
        found = store.get_measurement(
            space=space, kind=kind, key=key, device=device, backend=be.name, settings=settings
        )
        if found is not None:
            return found
    if be.reference is not None and be.reference.base_ms is None:
        calibrate_reference(be, store=store, device=device)
    t0 = time.perf_counter()
    result = be.measure(module, shape, batch=batch, timing=timing)
    wall_s = time.perf_counter() - t0
    fp = be.device_fingerprint()  # the device that ran it (a remote agent's, for remote:URL)
    if not result.stable:
        logger.info(
            "%s %s: unstable (CI half-width %.2f%% of the median after %d runs, %s)",
            kind, key, 100 * result.rel_ci, result.n_runs, result.stop_reason,
        )  # fmt: skip
    ref_extra = {} if be.reference is None else {"reference_base_ms": be.reference.base_ms}
    m = _record(
        result, space=space, kind=kind, key=key, device=device, backend=be.name,
        settings=settings, fingerprint=fp, timing=timing or TimingConfig(), wall_s=wall_s,
        extra={**ref_extra, **dict(extra or {})},
    )  # fmt: skip
    if store is not None:
        store.put_measurement(m)
    return m


def measure_network(
    target: Architecture | nn.Module,
    backend: Backend | str,
    *,
    input_shape: tuple[int, ...] | None = None,
    image_size: int | None = None,
    key: str | None = None,
    batch: int = 1,
    timing: TimingConfig | None = None,
    store: ResultStore | None = None,
    device: str = DEFAULT_DEVICE,
    reuse: bool = True,
    build_options: Mapping[str, Any] | None = None,
) -> Measurement:
    """End-to-end latency of an architecture (built with :func:`build_model`) or a module.

    An architecture is keyed by its canonical string under its space, so measuring it again with
    the same store, device, backend and settings returns the stored result without building it.

    Args:
        target: an architecture of a registered space, or any ``nn.Module``.
        backend: a backend or its name.
        input_shape: (C, H, W); required for a module, default for an architecture: its space's
            input shape (with ``image_size`` if given).
        image_size: input resolution override for an architecture, pixels.
        key: store key (default: the canonical string, or a hash of a module's repr).
        batch: batch size.
        timing: timing protocol parameters.
        store: results store (see :func:`measure_module`).
        device: device name the result is filed under.
        reuse: return stored results when present.
        build_options: options of the space's builder.
    """
    if isinstance(target, Architecture):
        space = get_space(target.space)
        shape = tuple(input_shape) if input_shape else arch_input_shape(target, image_size)
        arch_key = key or space.to_string(target)
        be = get_backend(backend)
        if store is not None and reuse:
            found = store.get_measurement(
                space=target.space,
                kind="network",
                key=arch_key,
                device=device,
                backend=be.name,
                settings=measurement_settings(be, shape, batch),
            )
            if found is not None:
                return found
        from hsconas.nn.registry import build_model

        t0 = time.perf_counter()
        module = build_model(target, **dict(build_options or {}))
        build_s = round(time.perf_counter() - t0, 4)
        return measure_module(
            module, shape, be, key=arch_key, space=target.space, kind="network", batch=batch,
            timing=timing, store=store, device=device, reuse=False, extra={"build_s": build_s},
        )  # fmt: skip
    if input_shape is None:
        raise ValueError("measure_network: input_shape is required to measure a module")
    return measure_module(
        target, tuple(input_shape), backend, key=key, kind="network", batch=batch, timing=timing,
        store=store, device=device, reuse=reuse,
    )  # fmt: skip
