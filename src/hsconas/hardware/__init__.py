"""Measurement on real hardware: backends, the timing protocol, fingerprints, block LUTs."""

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
