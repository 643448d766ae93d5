"""The run-directory lock: one ``hsconas run`` per run folder at a time.

``<run_dir>/run.lock`` holds who owns the folder (pid, host, boot id, start time, command) as
JSON. Ownership itself is an exclusive ``flock`` on that file, which the kernel drops when the
owning process dies, however it dies (``kill -9`` included): a lock file left behind by a killed
run is therefore *stale* by construction, and the next run takes it over and says so. Where
``flock`` is unavailable (not POSIX), the owner's pid and boot id decide: a pid that no longer
runs on this host, or a lock written before the host's last boot, is stale.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from hsconas.errors import HsconasError

__all__ = ["LOCK_NAME", "RunDirLock", "RunLockedError", "boot_id", "pid_alive"]

log = logging.getLogger(__name__)

LOCK_NAME = "run.lock"


class RunLockedError(HsconasError):
    """The run folder is in use by another live run."""


def boot_id() -> str:
    """An identifier of the host's current boot (Linux: ``/proc/sys/kernel/random/boot_id``;
    elsewhere the boot time when known, else ``''``)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        pass
    try:
        import psutil

        return str(int(psutil.boot_time()))
    except Exception:  # psutil missing or unsupported: no boot id
        return ""


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host (signal 0 probe)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    return True


def _owner_stale(owner: dict[str, Any]) -> bool:
    """Staleness by pid and boot id (used where ``flock`` is not available)."""
    if owner.get("host") != socket.gethostname():
        return False  # another host's process: cannot probe it, assume it is alive
    if owner.get("boot_id") and owner.get("boot_id") != boot_id():
        return True
    return not pid_alive(int(owner.get("pid", -1)))


def _describe(owner: dict[str, Any]) -> str:
    started = owner.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else "?"
    return f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}, started {when}"


class RunDirLock:
    """An exclusive, crash-safe lock on a run folder (a context manager).

    Args:
        run_dir: the run folder (created).

    Attributes:
        path: the lock file.
        took_over: the owner record of a stale lock this lock replaced, else ``None``.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.took_over: dict[str, Any] | None = None
        self._fd: int | None = None

    def _read_owner(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, json.JSONDecodeError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def acquire(self) -> RunDirLock:
        """Take the lock, taking over a stale one.

        Raises:
            RunLockedError: another live run holds the folder (one line naming it).
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            previous = self._read_owner()
            try:
                import fcntl
            except ImportError:  # not POSIX: decide by pid and boot id
                if previous and previous.get("pid") != os.getpid() and not _owner_stale(previous):
                    raise RunLockedError(
                        f"run folder {self.run_dir} is in use by {_describe(previous)}; wait for "
                        f"it, or delete {self.path} if that run is gone"
                    ) from None
            else:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise RunLockedError(
                        f"run folder {self.run_dir} is in use by {_describe(previous)}; wait for "
                        "it to finish or use another run_dir"
                    ) from None
            if previous.get("pid"):
                # The file outlived its owner (kill -9, power loss): a stale lock, taken over.
                self.took_over = previous
                log.warning(
                    "took over the stale lock of %s (%s)", self.run_dir, _describe(previous)
                )
            owner = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "boot_id": boot_id(),
                "started": time.time(),
                "command": " ".join(sys.argv),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(owner).encode(), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock back: the owner record is cleared (the file stays) and the lock dropped."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunDirLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
