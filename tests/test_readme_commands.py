"""Every shell command of the README's "The commands" section runs as written, in order.

The commands run in one scratch folder that sits beside a ``shared/data`` link, exactly as after
``make demo`` in a fresh clone with ``.venv`` activated, so each command finds what the commands
before it wrote. Long commands run with smaller sizes (the substitutions below change only counts:
epochs, queries, samples); the one command left out says why.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# (pattern, replacement): the long commands, made short; counts only
SMALLER = [
    (r"--epochs \d+", "--epochs 1"),
    (r"--queries \d+", "--queries 24"),
    (r"--samples \d+", "--samples 4"),
    (r"--n 50\b", "--n 3"),
    (r"--sample 10\b", "--sample 2"),
    (r"--train 100\b", "--train 30"),
    (r"--shots 10\b", "--shots 5"),
    (r"--max-images \d+", "--max-images 64"),
    (r"-n 300\b", "-n 12"),
]
# commands not run here, with the reason
LEFT_OUT = {
    "hsconas run --config configs/cifar10.yaml": "the whole pipeline: `make demo` and "
    "tests/pipeline run it",
}


# what the default (fast) run leaves to the slow one: device profiling, image proxies, and what
# needs their outputs
SLOW_ONLY = (
    "latency profile", "latency eval", "latency predict", "latency measure", "accuracy ",
    "proxy:", "cpu_digits.json", "ofa_top1.json", "titan_rtx", "gbdt", "proxylessnas --data",
    "--ofa-config",
)  # fmt: skip


def readme_commands(readme: Path = REPO_ROOT / "README.md") -> list[str]:
    """The commands of the first ``bash`` block under "## The commands", continuations joined."""
    text = readme.read_text(encoding="utf-8")
    section = text.split("## The commands", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "no bash block under '## The commands'"
    joined = block.group(1).replace("\\\n", " ")
    return [
        " ".join(line.split())
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def smaller(command: str) -> str:
    for pattern, repl in SMALLER:
        command = re.sub(pattern, repl, command)
    return command


def test_readme_lists_commands() -> None:
    commands = readme_commands()
    assert len(commands) >= 20 and all(c.startswith("hsconas ") for c in commands), commands


def _run_in_a_fresh_clone(data_dir: Path, tmp_path: Path, commands: list[str]) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(data_dir)
    work = tmp_path / "clone"
    work.mkdir()
    (work / "configs").symlink_to(REPO_ROOT / "configs")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "OMP_NUM_THREADS": "1",
    }
    env.pop("HSCONAS_DATA_DIR", None)  # the README's relative paths must do
    failures, timings = [], []
    for command in commands:
        run = smaller(command)
        start = time.perf_counter()
        done = subprocess.run(
            ["bash", "-c", run], cwd=work, env=env, capture_output=True, text=True, timeout=900
        )
        timings.append((time.perf_counter() - start, run))
        if done.returncode != 0:
            failures.append(f"{run}\n  exit {done.returncode}: {done.stderr.strip()[-400:]}")
    for seconds, run in timings:
        print(f"{seconds:7.1f} s  {run}")
    assert not failures, "\n".join(failures)


def test_quick_readme_commands_run_as_written(data_dir: Path, tmp_path: Path) -> None:
    commands = [
        c for c in readme_commands() if c not in LEFT_OUT and not any(m in c for m in SLOW_ONLY)
    ]
    assert len(commands) >= 12, commands
    _run_in_a_fresh_clone(data_dir, tmp_path, commands)


@pytest.mark.slow
def test_every_readme_command_runs_as_written(data_dir: Path, tmp_path: Path) -> None:
    _run_in_a_fresh_clone(data_dir, tmp_path, [c for c in readme_commands() if c not in LEFT_OUT])
