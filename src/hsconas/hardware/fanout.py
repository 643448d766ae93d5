"""Executors: where measurements run. One backend in this process, or several devices through Ray.

Profiling (:func:`hsconas.latency.hsconas.profile.profile_device`) and ``hsconas latency measure``
hand their work to an :class:`Executor` as a list of :class:`MeasureJob` (a block or an
architecture to time) and get :class:`~hsconas.store.Measurement` records back:

* :class:`LocalExecutor` measures one job after the other on one backend, in this process (what
  hsconas always did; the store keys are those of :func:`hsconas.hardware.measure.measure_module`).
* :class:`RayExecutor` spreads the jobs over several *units of the same device model*: device
  agents (``remote:URL``, one Ray actor per agent holding its
  :class:`~hsconas.hardware.remote.RemoteBackend`) and Ray nodes that declare a custom resource
  (``ray:RESOURCE:BACKEND``, e.g. ``ray:device:pi5:onnxruntime``: as many actors as the cluster
  has units of ``RESOURCE``, each scheduled with ``resources={RESOURCE: 1}`` and timing with the
  local ``BACKEND`` of the node it runs on). An actor runs one job at a time, so each device
  times one network at a time, as the timing protocol needs; a unit that finishes gets the next
  job. The driver (this process) skips the jobs the store holds already and writes every result
  to the store as it arrives, so an interrupted run loses nothing and a rerun resumes.

The units' measurements form one model, so they must be the same device: a pool whose units'
fingerprints name different CPU models, or whose runtimes differ (versions, threads), is refused
(:class:`MixedDevicesError`). With more than one agent, the stored settings name the CPU model
instead of each agent's host (``"agent": "*/<cpu model>"``), so that a rerun resumes whichever
unit measured what. With a reference network (``--reference``) one unit calibrates it and every
unit normalises by that one base, which also cancels small speed differences between the units.

The Ray side lives in :mod:`hsconas.hardware.fanout_ray`; Ray is imported only when a
:class:`~hsconas.hardware.fanout_ray.RayExecutor` is made; without it that is a
:class:`RayUnavailableError` naming ``pip install hsconas[ray]``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from hsconas.errors import HsconasError
from hsconas.hardware.backends import REMOTE_PREFIX, Backend, get_backend
from hsconas.hardware.measure import (
    DEFAULT_DEVICE,
    measure_module,
    measure_network,
)
from hsconas.hardware.timing import TimingConfig
from hsconas.space import Architecture, get_space
from hsconas.spaces.resolve import arch_input_shape
from hsconas.store import Measurement, ResultStore

__all__ = [
    "EXECUTORS",
    "RAY_PREFIX",
    "Executor",
    "FanoutError",
    "LocalExecutor",
    "MeasureJob",
    "MixedDevicesError",
    "RayUnavailableError",
    "make_executor",
]

EXECUTORS = ("local", "ray")
"""Names accepted by ``--executor``."""

RAY_PREFIX = "ray:"
"""``ray:RESOURCE:BACKEND`` names the Ray nodes that offer the custom resource ``RESOURCE``."""

INSTALL_HINT = "pip install hsconas[ray]"


class FanoutError(HsconasError):
    """A fan-out cannot be set up, or a unit failed a measurement."""


class RayUnavailableError(FanoutError):
    """``--executor ray`` without Ray installed."""


class MixedDevicesError(FanoutError):
    """The units of a pool are not the same device (CPU model or runtime settings differ)."""


@dataclass(frozen=True)
class MeasureJob:
    """One measurement: an architecture (built where it is timed) or a block module.

    Attributes:
        target: an :class:`~hsconas.space.Architecture`, or a block ``nn.Module`` (meta tensors
            are materialised where it is timed).
        kind: ``network`` or ``block``.
        key: store key (default for an architecture: its canonical string).
        space: space name the result is filed under (an architecture's own space by default).
        input_shape: input shape without the batch dimension (default for an architecture: its
            space's, at ``image_size``).
        image_size: input resolution of an architecture, pixels (``None``: its own).
        extra: stored with the measurement.
    """

    target: Architecture | nn.Module
    kind: str = "network"
    key: str | None = None
    space: str = ""
    input_shape: tuple[int, ...] | None = None
    image_size: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def store_fields(self) -> tuple[str, str, tuple[int, ...]]:
        """(space, key, input shape) the result is stored under."""
        if isinstance(self.target, Architecture):
            shape = self.input_shape or arch_input_shape(self.target, self.image_size)
            key = self.key or get_space(self.target.space).to_string(self.target)
            return self.target.space, key, tuple(int(s) for s in shape)
        if self.key is None or self.input_shape is None:
            raise ValueError("a module job needs its key and input_shape")
        return self.space, self.key, tuple(int(s) for s in self.input_shape)


def run_job(
    backend: Backend,
    job: MeasureJob,
    *,
    timing: TimingConfig | None,
    store: ResultStore | None,
    device: str,
    reuse: bool = True,
) -> Measurement:
    """Measure ``job`` on ``backend`` (through ``store`` when given: reused, then written)."""
    if isinstance(job.target, Architecture):
        return measure_network(
            job.target, backend, input_shape=job.input_shape, image_size=job.image_size,
            key=job.key, timing=timing, store=store, device=device, reuse=reuse,
        )  # fmt: skip
    from hsconas.latency.hsconas.lut import materialize

    space, key, shape = job.store_fields()
    return measure_module(
        materialize(job.target), shape, backend, key=key, space=space, kind=job.kind,
        timing=timing, store=store, device=device, reuse=reuse, extra=job.extra,
    )  # fmt: skip


Progress = Callable[[int, int], None]


class Executor(abc.ABC):
    """Runs measurement jobs on one device model; see the module docstring.

    Attributes:
        name: the backend name results are stored under.
    """

    name: str

    @abc.abstractmethod
    def settings(self) -> dict[str, Any]:
        """The settings results are keyed by (backend settings with the reference's key)."""

    @abc.abstractmethod
    def device_fingerprint(self) -> dict[str, Any]:
        """The fingerprint of the device (of its first unit, plus ``units`` for a pool)."""

    @property
    @abc.abstractmethod
    def reference(self) -> Any:
        """The :class:`~hsconas.hardware.reference.Reference` with its base, or ``None``."""

    @abc.abstractmethod
    def measure(
        self,
        jobs: Sequence[MeasureJob],
        *,
        timing: TimingConfig | None = None,
        store: ResultStore | None = None,
        device: str = DEFAULT_DEVICE,
        progress: Progress | None = None,
    ) -> list[Measurement]:
        """Measure ``jobs`` (stored results are reused); results in the order of ``jobs``."""

    def close(self) -> None:
        """Release the executor's workers."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalExecutor(Executor):
    """Every job on ``backend``, one after the other, in this process."""

    def __init__(self, backend: Backend | str) -> None:
        self.backend = get_backend(backend)
        self.name = self.backend.name

    def __repr__(self) -> str:
        return f"LocalExecutor({self.backend!r})"

    def settings(self) -> dict[str, Any]:
        return self.backend.settings()

    def device_fingerprint(self) -> dict[str, Any]:
        return self.backend.device_fingerprint()

    @property
    def reference(self) -> Any:
        return self.backend.reference

    def measure(
        self,
        jobs: Sequence[MeasureJob],
        *,
        timing: TimingConfig | None = None,
        store: ResultStore | None = None,
        device: str = DEFAULT_DEVICE,
        progress: Progress | None = None,
    ) -> list[Measurement]:
        out = []
        for i, job in enumerate(jobs):
            out.append(run_job(self.backend, job, timing=timing, store=store, device=device))
            if progress is not None:
                progress(i + 1, len(jobs))
        return out


def make_executor(
    executor: str,
    backends: Sequence[str],
    *,
    threads: int | None = 1,
    clock: str = "wall",
    reference: tuple[str, int | None] | None = None,
    token: str | None = None,
) -> Executor:
    """The executor ``executor`` (``local`` or ``ray``) over ``backends``.

    ``local`` takes one backend (a local one or ``remote:URL``); ``ray`` needs a connected Ray
    (:func:`ray_session`).

    Raises:
        FanoutError: an unknown executor, several backends with ``local``, a ``ray:`` backend
            without ``ray``.
    """
    if executor == "ray":
        from hsconas.hardware.fanout_ray import RayExecutor

        return RayExecutor(backends, threads=threads, clock=clock, reference=reference, token=token)
    if executor != "local":
        raise FanoutError(f"unknown executor {executor!r}; choose one of: {', '.join(EXECUTORS)}")
    if len(backends) != 1:
        raise FanoutError(
            f"{len(backends)} --backend given: several devices need --executor ray (the local "
            "executor measures on one backend)"
        )
    if backends[0].startswith(RAY_PREFIX):
        raise FanoutError(f"--backend {backends[0]} runs on Ray nodes: add --executor ray")
    ref = None
    if reference is not None:
        from hsconas.hardware.reference import space_reference

        ref = space_reference(*reference)
    options: dict[str, Any] = {"threads": threads, "clock": clock, "reference": ref}
    if backends[0].startswith(REMOTE_PREFIX) and token is not None:
        options["token"] = token
    return LocalExecutor(get_backend(backends[0], **options))
