"""Multi-process training from the CLI: ``--nproc N`` starts N workers through torch's elastic
launcher (the machinery of ``torchrun --standalone``), each running the same command without
``--nproc``; a worker ends when its launcher ends."""

from __future__ import annotations

import argparse

from hsconas.errors import HsconasError

__all__ = ["die_with_launcher", "launch", "worker_argv"]


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``hsconas <argv>`` in ``nproc`` processes with torch's elastic launcher (the
    machinery of ``torchrun --standalone``); returns 0 when every worker succeeded."""
    import os
    import sys
    import uuid

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"hsconas-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.5,
    )
    os.environ["HSCONAS_DDP_LAUNCHER"] = str(os.getpid())  # the workers inherit it
    try:
        elastic_launch(config, sys.executable)("-m", "hsconas", *argv)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        raise HsconasError(
            f"training worker {rank} of {nproc} failed with exit code {failure.exitcode}"
        ) from None
    return 0


def die_with_launcher() -> None:
    """In a worker started by ``--nproc``: end when the launcher ends, even by ``kill -9``
    (Linux ``PR_SET_PDEATHSIG``), instead of training on as an orphan."""
    import os
    import signal
    import sys

    launcher = os.environ.get("HSCONAS_DDP_LAUNCHER")
    if not launcher or not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != launcher:  # the launcher died before the signal was armed
        os.kill(os.getpid(), signal.SIGTERM)


def worker_argv(args: argparse.Namespace) -> list[str]:
    """This command's arguments for the workers: the same, without ``--nproc``."""
    import sys

    argv = list(getattr(args, "argv", None) or sys.argv[1:])
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        out.append(a)
    return out
