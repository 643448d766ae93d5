"""Measurement backends: run a PyTorch module on a real runtime and time it.

Backends, by name (:func:`list_backends`):

* ``torch``: PyTorch eager on the CPU under ``torch.inference_mode``, with ``threads`` intra-op
  threads (``torch.set_num_threads`` inside a context that restores the previous value).
* ``onnxruntime``: the module exported with ``torch.onnx.export`` (TorchScript exporter, static
  shapes, into memory) and run by ONNX Runtime's CPU execution provider with every graph
  optimisation on and ``threads`` intra-op threads.
* ``openvino``: the same ONNX export compiled by OpenVINO's CPU plugin (latency hint, one stream,
  ``threads`` inference threads).
* ``remote:URL``: the ONNX export uploaded to a device agent (``hsconas device serve``) at ``URL``,
  which times it with this same protocol on its own runtime (:mod:`hsconas.hardware.remote`).
* ``clock``: ``wall`` (default) times with ``time.perf_counter``; ``thread_cpu`` (threads=1 only)
  counts the CPU time of the measuring thread (``time.thread_time``), which leaves out the time the
  thread waits while other processes use the core: on a shared, loaded machine it estimates the
  latency the workload would have alone (cache and memory-bandwidth interference remain).
* ``reference``: a :class:`~hsconas.hardware.reference.Reference` network; every timed run is
  then paired with a run of it and normalised by it, which cancels the machine's speed drift
  (see :mod:`hsconas.hardware.reference`).
* ``cuda``: PyTorch on a CUDA device, each run timed by a pair of CUDA events (device time,
  not host time). ``available()`` is False with a reason when there is no CUDA device.

Every backend times with the protocol of :mod:`hsconas.hardware.timing`; a backend only supplies
``run_once`` (run the workload once, return milliseconds).
"""

from __future__ import annotations

import abc
import io
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from hsconas.errors import HsconasError
from hsconas.hardware import runtimes
from hsconas.hardware.fingerprint import fingerprint
from hsconas.hardware.reference import Reference, calibration_timing, paired_time_runs
from hsconas.hardware.timing import (
    TimingConfig,
    TimingResult,
    thread_cpu_ms,
    time_runs,
    wall_clock_ms,
)

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "CudaBackend",
    "CudaEventTimer",
    "OnnxRuntimeBackend",
    "OpenVinoBackend",
    "TorchBackend",
    "UnknownBackendError",
    "get_backend",
    "list_backends",
    "torch_threads",
]


class UnknownBackendError(HsconasError):
    """A backend name that is not registered."""


class BackendUnavailableError(HsconasError):
    """The backend exists but cannot run on this machine (no GPU, missing runtime, ...)."""


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the body with ``torch.set_num_threads(threads)``; restore the old value afterwards."""
    if threads is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _example(input_shape: tuple[int, ...], batch: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *input_shape, generator=gen)


class Backend(abc.ABC):
    """A runtime that executes a module and times it.

    Args:
        threads: intra-op threads (``None`` leaves the runtime's default, which is not
            reproducible across machines: prefer an explicit number).
        clock: ``wall`` or ``thread_cpu`` (see the module docstring).
        reference: time every run against this reference network (see the module docstring).
    """

    name: ClassVar[str]

    clocks: ClassVar[tuple[str, ...]] = ("wall", "thread_cpu")

    def __init__(
        self, *, threads: int | None = 1, clock: str = "wall", reference: Reference | None = None
    ) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if clock not in self.clocks:
            raise HsconasError(
                f"backend {self.name!r} has no clock {clock!r}; choose one of: "
                f"{', '.join(self.clocks)}"
            )
        if clock == "thread_cpu" and threads != 1:
            raise HsconasError(
                "clock 'thread_cpu' counts the CPU time of the calling thread only, so it needs "
                f"threads=1 (got {threads})"
            )
        self.threads = threads
        self.clock = clock
        self.reference = reference

    def __repr__(self) -> str:
        ref = "" if self.reference is None else f", reference={self.reference.key!r}"
        return f"{type(self).__name__}(threads={self.threads}, clock={self.clock!r}{ref})"

    def _timer(self, fn: Callable[[], object]) -> Callable[[], float]:
        """``run_once`` of ``fn`` with this backend's clock (milliseconds)."""
        return wall_clock_ms(fn) if self.clock == "wall" else thread_cpu_ms(fn)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this backend cannot run here, or ``None`` if it can."""
        return None

    @classmethod
    def available(cls) -> bool:
        """Whether this backend can run on this machine."""
        return cls.unavailable_reason() is None

    def device_fingerprint(self) -> dict[str, Any]:
        """The fingerprint of the device that ran the last measurement (this machine here; the
        agent's for a remote backend), stored with each result."""
        return fingerprint(self.name, self.settings())

    def settings(self) -> dict[str, Any]:
        """The settings that identify measurements of this backend (stored with each result)."""
        base = self.runtime_settings()
        return base if self.reference is None else {**base, "reference": self.reference.key}

    def runtime_settings(self) -> dict[str, Any]:
        """The runtime's own settings (threads, versions, clock), without the reference."""
        return self._with_clock({"threads": self.threads})

    def _with_clock(self, settings: dict[str, Any]) -> dict[str, Any]:
        # the default clock is left out so that settings (store keys) of wall-clock results are
        # the plain {"threads": ...} they always were
        return settings if self.clock == "wall" else {**settings, "clock": self.clock}

    @abc.abstractmethod
    @contextmanager
    def session(self, module: nn.Module, example: torch.Tensor) -> Iterator[Callable[[], float]]:
        """Prepare ``module`` for input ``example``; yield ``run_once`` (returns milliseconds)."""

    def measure(
        self,
        module: nn.Module,
        input_shape: tuple[int, ...],
        *,
        batch: int = 1,
        timing: TimingConfig | None = None,
    ) -> TimingResult:
        """Time ``module`` on a random input of shape ``(batch, *input_shape)``.

        Raises:
            BackendUnavailableError: if the backend cannot run here.
        """
        reason = self.unavailable_reason()
        if reason is not None:
            raise BackendUnavailableError(f"backend {self.name!r} is unavailable: {reason}")
        base_ms: float | None = None  # set: time against the reference
        if self.reference is not None:
            base_ms = self.reference.base_ms or self.calibrate_reference().median_ms
        example = _example(tuple(input_shape), batch)
        was_training = module.training
        module.eval()
        try:
            with self.session(module, example) as run_once:
                if base_ms is None:
                    return time_runs(run_once, timing)
                with self.reference_session() as ref_once:
                    return paired_time_runs(run_once, ref_once, base_ms, timing)
        finally:
            module.train(was_training)

    @contextmanager
    def reference_session(self) -> Iterator[Callable[[], float]]:
        """A session of the reference network; yields its ``run_once`` (milliseconds)."""
        if self.reference is None:
            raise ValueError("this backend has no reference network")
        with self.session(self.reference.module, _example(self.reference.input_shape, 1)) as run:
            yield run

    def calibrate_reference(self, timing: TimingConfig | None = None) -> TimingResult:
        """Measure the reference network alone (a long protocol) and set its ``base_ms``.

        :meth:`measure` calls it when the reference is not calibrated yet;
        :func:`hsconas.hardware.measure.calibrate_reference` also stores the result.
        """
        if self.reference is None:
            raise ValueError("this backend has no reference network")
        with self.reference_session() as run:
            result = time_runs(run, timing or calibration_timing())
        self.reference.base_ms = result.median_ms
        return result


class TorchBackend(Backend):
    """PyTorch eager on the CPU (``inference_mode``, fixed intra-op threads)."""

    name = "torch"

    @contextmanager
    def session(self, module: nn.Module, example: torch.Tensor) -> Iterator[Callable[[], float]]:
        with torch_threads(self.threads), torch.inference_mode():

            def forward() -> None:
                module(example)

            yield self._timer(forward)


def export_onnx_bytes(module: nn.Module, example: torch.Tensor, *, opset: int = 17) -> bytes:
    """``module`` exported to ONNX with static shapes (TorchScript exporter), as bytes."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            buf,  # type: ignore[arg-type]
            input_names=["input"],
            output_names=["output"],
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return buf.getvalue()


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime, CPU execution provider, all graph optimisations, fixed intra-op threads."""

    name = "onnxruntime"
    _reference_cache: tuple[str, Callable[[], object]] | None = None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return runtimes.runtime_unavailable(cls.name)

    def runtime_settings(self) -> dict[str, Any]:
        return self._with_clock(runtimes.runtime_settings(self.name, self.threads))

    def make_session(self, model_bytes: bytes) -> Any:
        """An ``InferenceSession`` for serialised ONNX ``model_bytes`` with this backend's options."""
        return runtimes.ort_session(model_bytes, self.threads)

    def _forward(self, module: nn.Module, example: torch.Tensor) -> Callable[[], object]:
        """``module`` exported and loaded into the runtime; a function that runs it once."""
        model_bytes = export_onnx_bytes(module, example)
        return runtimes.make_runner(self.name, model_bytes, example.numpy(), self.threads)

    @contextmanager
    def session(self, module: nn.Module, example: torch.Tensor) -> Iterator[Callable[[], float]]:
        yield self._timer(self._forward(module, example))

    @contextmanager
    def reference_session(self) -> Iterator[Callable[[], float]]:
        """The reference's session, exported once and kept (exporting costs about a second)."""
        if self.reference is None:
            raise ValueError("this backend has no reference network")
        if self._reference_cache is None or self._reference_cache[0] != self.reference.key:
            example = _example(self.reference.input_shape, 1)
            self._reference_cache = (
                self.reference.key,
                self._forward(self.reference.module, example),
            )
        yield self._timer(self._reference_cache[1])


class OpenVinoBackend(OnnxRuntimeBackend):
    """OpenVINO's CPU plugin on the same ONNX export: latency hint, one stream, fixed threads."""

    name = "openvino"
    _reference_cache: tuple[str, Callable[[], object]] | None = None

    def make_session(self, model_bytes: bytes) -> Any:
        """An OpenVINO ``CompiledModel`` of ONNX ``model_bytes`` with this backend's options."""
        return runtimes.openvino_compiled(model_bytes, self.threads)


class _Event(Protocol):
    def record(self) -> None: ...
    def synchronize(self) -> None: ...
    def elapsed_time(self, end: Any) -> float: ...


class CudaEventTimer:
    """Times one call of ``fn`` with a pair of device events (``torch.cuda.Event`` on a GPU).

    Args:
        fn: the workload (launches device work asynchronously).
        event_factory: makes an event with ``record()``, ``synchronize()`` and
            ``elapsed_time(end)`` in milliseconds; ``torch.cuda.Event(enable_timing=True)``.
    """

    def __init__(self, fn: Callable[[], object], event_factory: Callable[[], _Event]) -> None:
        self.fn = fn
        self.event_factory = event_factory

    def __call__(self) -> float:
        """Run ``fn`` once; its device time between the two events, milliseconds."""
        start, end = self.event_factory(), self.event_factory()
        start.record()
        self.fn()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end))


class CudaBackend(Backend):
    """PyTorch on a CUDA device, each run timed by CUDA events.

    Args:
        threads: host threads (``torch.set_num_threads``) while measuring.
        device_index: which CUDA device.
    """

    name = "cuda"
    clocks = ("wall",)  # device time from CUDA events; "wall" names the default

    def __init__(
        self,
        *,
        threads: int | None = 1,
        clock: str = "wall",
        reference: Reference | None = None,
        device_index: int = 0,
    ) -> None:
        super().__init__(threads=threads, clock=clock, reference=reference)
        self.device_index = device_index

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if not torch.backends.cuda.is_built():
            return f"this PyTorch build ({torch.__version__}) has no CUDA support"
        if not torch.cuda.is_available():
            return "no CUDA device is visible (torch.cuda.is_available() is False)"
        return None

    def runtime_settings(self) -> dict[str, Any]:
        name = torch.cuda.get_device_name(self.device_index) if self.available() else "unavailable"
        return {"threads": self.threads, "device_index": self.device_index, "gpu": name}

    @contextmanager
    def session(self, module: nn.Module, example: torch.Tensor) -> Iterator[Callable[[], float]]:
        device = torch.device("cuda", self.device_index)
        module.to(device)
        x = example.to(device)
        try:
            with torch_threads(self.threads), torch.inference_mode():

                def forward() -> None:
                    module(x)

                yield CudaEventTimer(forward, lambda: torch.cuda.Event(enable_timing=True))
        finally:
            module.to("cpu")


_BACKENDS: dict[str, type[Backend]] = {
    TorchBackend.name: TorchBackend,
    OnnxRuntimeBackend.name: OnnxRuntimeBackend,
    OpenVinoBackend.name: OpenVinoBackend,
    CudaBackend.name: CudaBackend,
}

REMOTE_PREFIX = "remote:"
"""``remote:URL`` names a device agent at ``URL`` (:class:`hsconas.hardware.remote.RemoteBackend`)."""


def list_backends() -> list[str]:
    """Names of every registered backend (available here or not); ``remote:URL`` comes on top."""
    return sorted(_BACKENDS)


def is_backend_name(name: str) -> bool:
    """Whether ``name`` is a registered backend or a ``remote:URL``."""
    return name in _BACKENDS or name.startswith(REMOTE_PREFIX)


def get_backend(name: str | Backend, **options: Any) -> Backend:
    """The backend called ``name`` configured with ``options`` (e.g. ``threads=1``).

    Raises:
        UnknownBackendError: if ``name`` is not registered (the message lists the backends).
    """
    if isinstance(name, Backend):
        return name
    if name.startswith(REMOTE_PREFIX):
        from hsconas.hardware.remote import RemoteBackend

        return RemoteBackend(name[len(REMOTE_PREFIX) :], **options)
    try:
        cls = _BACKENDS[name]
    except KeyError:
        raise UnknownBackendError(
            f"unknown backend {name!r}; available backends: {', '.join(list_backends())}, "
            "or remote:http(s)://HOST:PORT (a device agent)"
        ) from None
    return cls(**options)
