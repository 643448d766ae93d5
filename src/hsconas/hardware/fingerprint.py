"""Device and software fingerprint stored with every measurement.

Latency depends on more than the network: the CPU model and frequency policy, how many threads ran,
what else was running (load average), and the runtime versions (nn-Meter issue #83). The
fingerprint records all of these that can be read without privileges; unreadable fields are
``None``. ``load_avg`` is read at call time, so call :func:`fingerprint` when measuring.
"""

from __future__ import annotations

import os
import platform
import socket
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["cpu_model", "fingerprint", "machine_name", "static_fingerprint"]


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError:
        return None


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown-cpu"


def _version(distribution: str) -> str | None:
    """The installed version of ``distribution`` (read from its metadata, not by importing it)."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def static_fingerprint() -> dict[str, Any]:
    """The parts of the fingerprint that do not change while a process runs."""
    import numpy

    cpufreq = "/sys/devices/system/cpu/cpu0/cpufreq"
    max_khz = _read(f"{cpufreq}/cpuinfo_max_freq")
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = None
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "governor": _read(f"{cpufreq}/scaling_governor"),
        "cpu_max_mhz": int(max_khz) / 1000 if max_khz and max_khz.isdigit() else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": _version("torch"),
        "onnxruntime": _version("onnxruntime"),
        "openvino": _version("openvino"),
    }


def fingerprint(backend: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fingerprint of this machine and software for a measurement on ``backend``.

    Args:
        backend: backend name.
        settings: backend settings (threads, ...), copied into the fingerprint.

    Returns:
        A JSON-serialisable dict: the static fields, ``backend``, ``settings``, the current
        ``cpu_mhz`` (if readable) and the 1/5/15-minute ``load_avg``.
    """
    doc = dict(static_fingerprint())
    cur_khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")
    doc["cpu_mhz"] = int(cur_khz) / 1000 if cur_khz and cur_khz.isdigit() else None
    try:
        doc["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        doc["load_avg"] = None
    doc["backend"] = backend
    doc["settings"] = dict(settings or {})
    return doc


def machine_name() -> str:
    """A short file-name-safe name of this machine: CPU model, core count and hostname."""
    model = cpu_model().replace("(R)", "").replace("(TM)", "").replace("CPU", "")
    slug = "-".join(w for w in model.replace("@", " ").split() if w.lower() != "processor")
    return f"{slug}-{os.cpu_count()}c".replace("/", "-")
