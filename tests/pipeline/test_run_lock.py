"""The run-folder lock: a busy folder is refused in one line, a killed run's lock is taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from hsconas.pipeline.lock import LOCK_NAME, RunDirLock, RunLockedError, pid_alive
from hsconas.pipeline.runner import Stage, run_stages

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from hsconas.pipeline.lock import RunDirLock
    lock = RunDirLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    time.sleep(60)
    """
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock of ``tmp_path / 'run'``; killed at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def test_busy_folder_is_refused_naming_the_owner(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(RunLockedError, match=f"in use by pid {holder.pid} on "):
        RunDirLock(tmp_path / "run").acquire()
    ran: list[str] = []
    stage = Stage("a", lambda ctx: ran.append("a") or {}, {})
    with pytest.raises(RunLockedError):
        run_stages([stage], tmp_path / "run")
    assert ran == []


def test_killed_owner_leaves_a_stale_lock_that_is_taken_over(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    owner = json.loads((tmp_path / "run" / LOCK_NAME).read_text())
    assert owner["pid"] == holder.pid and not pid_alive(holder.pid)  # the file outlived it
    with RunDirLock(tmp_path / "run") as lock:
        assert lock.took_over is not None and lock.took_over["pid"] == holder.pid
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    # A clean release leaves nothing to take over.
    with RunDirLock(tmp_path / "run") as again:
        assert again.took_over is None


def test_cli_run_on_a_busy_folder_exits_2_with_one_line(
    tmp_path: Path, holder: subprocess.Popen[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from hsconas.cli.main import main

    code = main(["run", "--run-dir", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len([line for line in err if "error" in line]) == 1
    assert f"pid {holder.pid}" in err[-1] and "in use" in err[-1]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cli_run_asking_for_a_missing_gpu_fails_before_any_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hsconas.cli.main import main

    cfg = tmp_path / "gpu.yaml"
    cfg.write_text(f"run_dir: {tmp_path / 'run'}\nsupernet: {{device: cuda}}\n", encoding="utf-8")
    assert main(["run", "--config", str(cfg), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no usable CUDA GPU" in err[0]
    assert not (tmp_path / "run" / "hw_model").exists()  # no stage started
