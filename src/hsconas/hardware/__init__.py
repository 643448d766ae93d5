"""Measurement on real hardware: backends, the timing protocol, fingerprints, block LUTs.

The names below are imported on first use, so that the timing protocol
(:mod:`hsconas.hardware.timing`) and the ONNX runtimes (:mod:`hsconas.hardware.runtimes`) can be
used without PyTorch (the device agent runs on boards that only have numpy and one runtime).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hsconas.hardware.backends import (
        Backend,
        BackendUnavailableError,
        UnknownBackendError,
        get_backend,
        list_backends,
    )
    from hsconas.hardware.fingerprint import fingerprint
    from hsconas.hardware.timing import TimingConfig, TimingResult, time_runs

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "TimingConfig",
    "TimingResult",
    "UnknownBackendError",
    "fingerprint",
    "get_backend",
    "list_backends",
    "time_runs",
]

_HOME = {
    "Backend": "backends",
    "BackendUnavailableError": "backends",
    "UnknownBackendError": "backends",
    "get_backend": "backends",
    "list_backends": "backends",
    "fingerprint": "fingerprint",
    "TimingConfig": "timing",
    "TimingResult": "timing",
    "time_runs": "timing",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(import_module(f"hsconas.hardware.{_HOME[name]}"), name)
    raise AttributeError(f"module 'hsconas.hardware' has no attribute {name!r}")
