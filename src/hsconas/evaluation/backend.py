"""Real end-to-end timing on a backend of this machine (torch, onnxruntime, cuda) as a latency
source. Torch is imported only when it first measures."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hsconas.evaluation.base import SourceError
from hsconas.space import Architecture, SearchSpace, get_space
from hsconas.store import ResultStore

__all__ = ["BackendLatency"]


@dataclass
class BackendLatency:
    """Real end-to-end timing on this machine (:func:`hsconas.hardware.measure.measure_network`).

    Args:
        backend: ``torch``, ``onnxruntime`` or ``cuda``.
        device: the device name results are filed under.
        batch: batch size.
        threads: intra-op threads of the backend.
        image_size: input resolution override, pixels (default: the space's).
        timing: a :class:`hsconas.hardware.timing.TimingConfig` (default: the protocol's own).
        reference: time every run against the space's middle network (cancels the machine's
            speed drift; see :mod:`hsconas.hardware.reference`).
    """

    backend: str
    device: str = "local-cpu"
    batch: int = 1
    threads: int | None = 1
    image_size: int | None = None
    timing: Any = None
    reference: bool = False
    # the backend of the last measure() call and its space: kept, so that every chunk of one
    # profile is timed against one reference with one calibration
    _backend: Any = field(default=None, repr=False, compare=False)
    _backend_space: str | None = field(default=None, repr=False, compare=False)

    @property
    def kind(self) -> str:
        return self.backend

    @property
    def settings(self) -> Mapping[str, Any]:
        return {
            "batch": self.batch,
            "threads": self.threads,
            "image_size": self.image_size,
            "reference": self.reference,
        }

    def pool(self, space: SearchSpace) -> None:
        return None

    def latency_ms(self, arch: Architecture) -> float:
        """Measured latency of ``arch`` (not stored; :meth:`measure` stores), ms."""
        values, _ = self.measure(get_space(arch.space), [arch], store=None)
        return float(values[0])

    def _measure_fn(self) -> Callable[..., Any]:
        try:
            from hsconas.hardware.measure import measure_network
        except ImportError as exc:  # the measurement package or torch is missing
            raise SourceError(
                f"backend:{self.backend} needs hsconas.hardware.measure (and torch), which cannot "
                f"be imported here ({exc}); use --source table:CSV or model:FILE instead"
            ) from None
        return measure_network

    def measure(
        self, space: SearchSpace, archs: Sequence[Architecture], *, store: ResultStore | None
    ) -> tuple[np.ndarray, int]:
        measure_network = self._measure_fn()
        from hsconas.hardware.backends import get_backend
        from hsconas.hardware.measure import measurement_settings
        from hsconas.spaces.resolve import arch_input_shape

        if self._backend is None or self._backend_space != space.name:
            from hsconas.hardware.reference import space_reference

            # the middle network of the space being profiled (a restricted space: among its
            # choices, e.g. at its one resolution)
            ref = space_reference(space, self.image_size) if self.reference else None
            try:
                self._backend = get_backend(self.backend, threads=self.threads, reference=ref)
            except (KeyError, ValueError, RuntimeError) as exc:
                raise SourceError(f"backend {self.backend!r} is not usable here: {exc}") from None
            self._backend_space = space.name
        be = self._backend

        out = np.empty(len(archs))
        new = 0
        for i, a in enumerate(archs):
            settings = measurement_settings(be, arch_input_shape(a, self.image_size), self.batch)
            stored = None
            if store is not None:
                stored = store.get_measurement(
                    space=space.name, kind="network", key=space.to_string(a),
                    device=self.device, backend=be.name, settings=settings,
                )  # fmt: skip
            if stored is None:
                new += 1
                stored = measure_network(
                    a, be, timing=self.timing, batch=self.batch, image_size=self.image_size,
                    store=store, device=self.device, reuse=False,
                )  # fmt: skip
            out[i] = stored.median_ms
        return out, new
