"""The Ray side of the executors: a pool of units of one device model (device agents or Ray nodes
with a custom resource), one actor per unit, one job at a time per unit (see
:mod:`hsconas.hardware.fanout`)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hsconas.errors import HsconasError
from hsconas.hardware.backends import REMOTE_PREFIX, get_backend, list_backends
from hsconas.hardware.fanout import (
    INSTALL_HINT,
    RAY_PREFIX,
    Executor,
    FanoutError,
    MeasureJob,
    MixedDevicesError,
    Progress,
    RayUnavailableError,
    run_job,
)
from hsconas.hardware.measure import (
    DEFAULT_DEVICE,
    calibrate_reference,
)
from hsconas.hardware.timing import TimingConfig
from hsconas.store import Measurement, ResultStore

__all__ = ["RayExecutor", "WorkerSpec", "import_ray", "parse_worker", "ray_session"]


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
