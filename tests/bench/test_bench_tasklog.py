"""The benchmark grids' resumable task log (bench/common.py)."""

from __future__ import annotations

import json
from multiprocessing.pool import ThreadPool
from pathlib import Path

import pytest
from bench.common import TaskLog, read_log, task_key

CALLS: list[tuple] = []


def square(task: tuple) -> list[dict]:
    CALLS.append(task)
    name, x = task
    return [{"name": name, "value": x * x}]


def grid(n: int) -> list[tuple]:
    return [(f"t{i}", i) for i in range(n)]


def run(path: Path, tasks: list[tuple], wanted: list[tuple] | None = None) -> list[dict]:
    keys = [task_key("sq", t) for t in (wanted or tasks)]
    with ThreadPool(2) as pool:
        return TaskLog(path, keys).run(pool, "sq", square, tasks)


def by_name(rows: list[dict]) -> dict[str, int]:
    return {r["name"]: r["value"] for r in rows}


def test_interrupted_grid_resumes_without_rerunning(tmp_path: Path) -> None:
    log = tmp_path / "grid.partial.jsonl"
    tasks = grid(6)
    run(log, tasks[:2], wanted=tasks)  # the first run stopped after two tasks
    CALLS.clear()
    rows = run(log, tasks)
    assert sorted(CALLS) == sorted(tasks[2:])  # finished tasks are read back, not rerun
    assert by_name(rows) == {f"t{i}": i * i for i in range(6)}
    assert len(read_log(log)) == 6


def test_torn_last_line_and_other_grids_are_ignored(tmp_path: Path) -> None:
    log = tmp_path / "grid.partial.jsonl"
    tasks = grid(3)
    run(log, tasks)
    other = {"task": task_key("sq", ("elsewhere", 9)), "rows": [{"name": "x", "value": -1}]}
    with open(log, "a") as fh:
        fh.write(json.dumps(other) + "\n")
        fh.write('{"task": "torn')  # a write cut off by the interruption
    CALLS.clear()
    rows = run(log, tasks)
    assert CALLS == []
    assert by_name(rows) == {"t0": 0, "t1": 1, "t2": 4}


def test_finished_lists_logged_tasks_in_the_order_given(tmp_path: Path) -> None:
    log = tmp_path / "grid.partial.jsonl"
    tasks = grid(4)
    run(log, [tasks[3], tasks[1]], wanted=tasks)
    tl = TaskLog(log, [task_key("sq", t) for t in tasks])
    assert [t for t, _ in tl.finished("sq", tasks)] == [tasks[1], tasks[3]]
    tl.remove()
    assert not log.exists()


@pytest.mark.parametrize("task", [("a", 1, {"k": [1, 2]}), ("a", 1, {"k": (1, 2)})])
def test_task_key_is_canonical_json(task: tuple) -> None:
    assert task_key("sq", task) == '["sq", "a", 1, {"k": [1, 2]}]'
