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

Ray is imported only when a :class:`RayExecutor` is made; without it that is a
:class:`RayUnavailableError` naming ``pip install hsconas[ray]``.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import os
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from hsconas.errors import HsconasError
from hsconas.hardware.backends import REMOTE_PREFIX, Backend, get_backend, list_backends
from hsconas.hardware.measure import (
    DEFAULT_DEVICE,
    calibrate_reference,
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
    "RayExecutor",
    "RayUnavailableError",
    "WorkerSpec",
    "import_ray",
    "make_executor",
    "parse_worker",
    "ray_session",
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


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        RayUnavailableError: Ray is not installed (the message names the extra to install).
    """
    try:
        import ray
    except ImportError:
        raise RayUnavailableError(
            f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}"
        ) from None
    return ray


@contextmanager
def ray_session(address: str | None = None) -> Iterator[Any]:
    """A connected Ray: the one already initialised, else ``ray.init(address)`` (``None``:
    ``$RAY_ADDRESS``, else a new local instance), shut down on exit if this call started it.

    Raises:
        RayUnavailableError: Ray is not installed.
        FanoutError: the cluster at ``address`` cannot be joined.
    """
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = address or "a new local instance"
            raise FanoutError(f"cannot connect to Ray at {where}: {exc}") from None
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


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


@dataclass(frozen=True)
class WorkerSpec:
    """One kind of unit of a Ray pool (see :func:`parse_worker`).

    Attributes:
        backend: the backend the unit times with (``remote:URL`` or a local backend name).
        resource: the Ray custom resource that places the unit on its node (``None``: anywhere,
            for an agent reached over the network).
    """

    backend: str
    resource: str | None = None

    @property
    def label(self) -> str:
        return (
            self.backend if self.resource is None else f"{RAY_PREFIX}{self.resource}:{self.backend}"
        )


def parse_worker(name: str) -> WorkerSpec:
    """``remote:URL`` or ``ray:RESOURCE:BACKEND`` as a :class:`WorkerSpec`.

    Raises:
        FanoutError: anything else (a local backend cannot be fanned out from this machine).
    """
    if name.startswith(REMOTE_PREFIX):
        from hsconas.hardware.remote import check_url

        return WorkerSpec(REMOTE_PREFIX + check_url(name[len(REMOTE_PREFIX) :]))
    if name.startswith(RAY_PREFIX):
        resource, _, backend = name[len(RAY_PREFIX) :].rpartition(":")
        if not resource or backend not in list_backends():
            raise FanoutError(
                f"bad Ray backend {name!r}: expected ray:RESOURCE:BACKEND with BACKEND one of "
                f"{', '.join(list_backends())} (e.g. ray:device:pi5:onnxruntime)"
            )
        return WorkerSpec(backend, resource)
    raise FanoutError(
        f"--executor ray spreads measurements over devices: give --backend remote:URL (device "
        f"agents) or ray:RESOURCE:BACKEND (Ray nodes), not {name!r}"
    )


class _Unit:
    """The body of a Ray actor: one backend, measuring one job at a time."""

    def __init__(
        self,
        backend: str,
        options: dict[str, Any],
        reference: tuple[str, int | None] | None,
        env: dict[str, str],
    ) -> None:
        os.environ.update(env)
        ref = None
        if reference is not None:
            from hsconas.hardware.reference import space_reference

            ref = space_reference(*reference)
        self.backend = get_backend(backend, reference=ref, **options)

    def info(self) -> dict[str, Any]:
        be = self.backend
        reason = be.unavailable_reason()
        return {
            "unavailable": reason,
            "settings": be.settings() if reason is None else {},
            "runtime_settings": be.runtime_settings() if reason is None else {},
            "fingerprint": be.device_fingerprint(),
        }

    def calibrate(self, device: str) -> Measurement:
        return calibrate_reference(self.backend, store=None, device=device, reuse=False)

    def set_base(self, base_ms: float) -> None:
        if self.backend.reference is not None:
            self.backend.reference.base_ms = base_ms

    def measure(self, job: MeasureJob, timing: TimingConfig | None, device: str) -> Measurement:
        return run_job(self.backend, job, timing=timing, store=None, device=device, reuse=False)


def _comparable(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if k != "agent"}


class RayExecutor(Executor):
    """Jobs spread over several units of one device model through Ray actors.

    Ray must be initialised (:func:`ray_session`). Args:
        workers: ``remote:URL`` agents and ``ray:RESOURCE:BACKEND`` node groups.
        threads: intra-op threads of every unit.
        clock: ``wall`` or ``thread_cpu``.
        reference: (space, resolution) of the reference network every run is paired with.
        token: the agents' token (one token for all agents).
        start_timeout_s: how long the units may take to start, seconds.

    Raises:
        FanoutError: a resource no node offers, a unit that does not start.
        MixedDevicesError: units that are not the same device.
    """

    def __init__(
        self,
        workers: Sequence[str],
        *,
        threads: int | None = 1,
        clock: str = "wall",
        reference: tuple[str, int | None] | None = None,
        token: str | None = None,
        start_timeout_s: float = 300.0,
    ) -> None:
        self._ray = ray = import_ray()
        if not ray.is_initialized():
            raise FanoutError("RayExecutor needs a connected Ray (use ray_session)")
        specs = [parse_worker(w) for w in workers]
        if not specs:
            raise FanoutError("--executor ray needs at least one --backend")
        env = {k: os.environ[k] for k in ("HSCONAS_DEVICE_CA",) if k in os.environ}
        actor_cls = ray.remote(num_cpus=0, max_restarts=0)(_Unit)
        self._actors: list[Any] = []
        self.labels: list[str] = []
        available = ray.cluster_resources()
        for spec in specs:
            opts: dict[str, Any] = {"threads": threads, "clock": clock}
            copies, placement = 1, {}
            if spec.resource is None:
                opts["token"] = token
            else:
                copies = int(available.get(spec.resource, 0))
                if copies < 1:
                    raise FanoutError(
                        f"no node of the Ray cluster offers the resource {spec.resource!r}; start "
                        f"one on the device with: ray start --address=HEAD:6379 "
                        f"--resources='{{\"{spec.resource}\": 1}}'"
                    )
                placement = {"resources": {spec.resource: 1}}
            for i in range(copies):
                actor = actor_cls.options(**placement).remote(spec.backend, opts, reference, env)
                self._actors.append(actor)
                self.labels.append(spec.label if copies == 1 else f"{spec.label}#{i}")
        try:
            infos = self._get([a.info.remote() for a in self._actors], start_timeout_s, "start")
            self._check_same_device(infos)
        except BaseException:
            self.close()
            raise
        self._infos = infos
        self.name = "remote" if specs[0].resource is None else specs[0].backend
        self._settings = dict(infos[0]["settings"])
        self._runtime = dict(infos[0]["runtime_settings"])
        if len(infos) > 1 and "agent" in self._settings:
            cpu = infos[0]["fingerprint"].get("cpu_model")
            self._settings["agent"] = self._runtime["agent"] = f"*/{cpu}"
        self._reference = None
        if reference is not None:
            from hsconas.hardware.reference import space_reference

            self._reference = space_reference(*reference)

    def __repr__(self) -> str:
        return f"RayExecutor({self.labels!r})"

    def _get(self, refs: list[Any], timeout_s: float | None, what: str) -> list[Any]:
        ray = self._ray
        try:
            out: list[Any] = ray.get(refs, timeout=timeout_s)
        except ray.exceptions.GetTimeoutError:
            raise FanoutError(
                f"the Ray units did not {what} within {timeout_s:.0f} s (a resource no free node "
                "offers, or a node without hsconas installed?)"
            ) from None
        except ray.exceptions.RayTaskError as exc:
            raise self._cause(exc, what) from None
        except ray.exceptions.RayActorError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FanoutError(f"a Ray unit died before it could {what}: {first}") from None
        return out

    @staticmethod
    def _cause(exc: Any, what: str) -> HsconasError:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, HsconasError):
            return cause
        text = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
        lines = text.strip().splitlines() or [type(exc).__name__]
        return FanoutError(f"a Ray unit failed to {what}: {lines[0]}")

    def _check_same_device(self, infos: list[dict[str, Any]]) -> None:
        for label, info in zip(self.labels, infos, strict=True):
            if info["unavailable"]:
                raise FanoutError(f"unit {label}: backend unavailable: {info['unavailable']}")
        first = infos[0]
        cpu0 = first["fingerprint"].get("cpu_model")
        for label, info in zip(self.labels[1:], infos[1:], strict=True):
            cpu = info["fingerprint"].get("cpu_model")
            if cpu != cpu0:
                raise MixedDevicesError(
                    f"the units are different devices: {self.labels[0]} runs on CPU {cpu0!r}, "
                    f"{label} on {cpu!r}; fan out only over units of the same device model "
                    "(profile each model separately)"
                )
            mine, theirs = _comparable(first["settings"]), _comparable(info["settings"])
            if mine != theirs:
                diff = sorted(
                    k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k)
                )
                raise MixedDevicesError(
                    f"the units run different runtimes: {self.labels[0]} and {label} differ in "
                    f"{', '.join(diff)} ({mine.get(diff[0])!r} vs {theirs.get(diff[0])!r})"
                )

    @property
    def n_units(self) -> int:
        """Number of units (actors) in the pool."""
        return len(self._actors)

    def settings(self) -> dict[str, Any]:
        return dict(self._settings)

    def device_fingerprint(self) -> dict[str, Any]:
        fp = dict(self._infos[0]["fingerprint"])
        fp["units"] = list(self.labels)
        return fp

    @property
    def reference(self) -> Any:
        return self._reference

    def _calibrate(self, store: ResultStore | None, device: str) -> None:
        ref = self._reference
        if ref is None or ref.base_ms is not None:
            return
        settings = {**self._runtime, "batch": 1, "input_shape": list(ref.input_shape)}
        found = None
        if store is not None:
            found = store.get_measurement(
                space="", kind="reference", key=ref.key, device=device, backend=self.name,
                settings=settings,
            )  # fmt: skip
        if found is None:
            (m,) = self._get([self._actors[0].calibrate.remote(device)], None, "calibrate")
            found = dataclasses.replace(m, backend=self.name, settings=settings)
            if store is not None:
                store.put_measurement(found)
        ref.base_ms = found.median_ms
        self._get([a.set_base.remote(found.median_ms) for a in self._actors], 60.0, "start")

    def _stored_as(self, job: MeasureJob) -> tuple[str, str, dict[str, Any]]:
        space, key, shape = job.store_fields()
        return space, key, {**self._settings, "batch": 1, "input_shape": list(shape)}

    def measure(
        self,
        jobs: Sequence[MeasureJob],
        *,
        timing: TimingConfig | None = None,
        store: ResultStore | None = None,
        device: str = DEFAULT_DEVICE,
        progress: Progress | None = None,
    ) -> list[Measurement]:
        ray = self._ray
        results: list[Measurement | None] = [None] * len(jobs)
        todo: deque[int] = deque()
        for i, job in enumerate(jobs):
            space, key, settings = self._stored_as(job)
            found = None
            if store is not None:
                found = store.get_measurement(
                    space=space, kind=job.kind, key=key, device=device, backend=self.name,
                    settings=settings,
                )  # fmt: skip
            if found is not None:
                results[i] = found
            else:
                todo.append(i)
        done = len(jobs) - len(todo)
        if progress is not None and done:
            progress(done, len(jobs))
        if todo:
            self._calibrate(store, device)
        free = list(range(len(self._actors)))
        running: dict[Any, tuple[int, int]] = {}  # object ref -> (unit, job index)
        failure: HsconasError | None = None
        while todo or running:
            while free and todo and failure is None:
                unit, i = free.pop(0), todo.popleft()
                running[self._actors[unit].measure.remote(jobs[i], timing, device)] = (unit, i)
            if not running:
                break
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                unit, i = running.pop(ref)
                try:
                    m = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    failure = failure or self._cause(exc, f"measure {self._stored_as(jobs[i])[1]}")
                    continue
                except ray.exceptions.RayActorError as exc:
                    failure = failure or FanoutError(f"unit {self.labels[unit]} died: {exc}")
                    continue
                space, key, settings = self._stored_as(jobs[i])
                m = dataclasses.replace(
                    m, backend=self.name, settings=settings,
                    extra={**m.extra, "unit": self.labels[unit]},
                )  # fmt: skip
                if store is not None:
                    store.put_measurement(m)  # as it arrives: an interruption loses nothing
                results[i] = m
                free.append(unit)
                done += 1
                if progress is not None:
                    progress(done, len(jobs))
        if failure is not None:
            raise failure
        return [m for m in results if m is not None]

    def close(self) -> None:
        for actor in self._actors:
            with contextlib.suppress(Exception):  # an actor that is gone already
                self._ray.kill(actor)
        self._actors = []

    def __del__(self) -> None:  # pragma: no cover - best effort
        if getattr(self, "_actors", None) and self._ray.is_initialized():
            self.close()


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
