"""Resumable benchmark grids.

A grid's tasks run in a process pool; each finished task is appended to a JSON-lines log beside the
results (``<stem>.partial.jsonl``, git-ignored) before the next one is reported. Running the same
command again reads the log, skips the tasks already done and runs the rest; tasks logged under the
same name by other arguments are ignored. The caller removes the log once its tables are written.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from multiprocessing.pool import Pool
from pathlib import Path


def task_key(kind: str, task: Sequence) -> str:
    """The log's name of a task (its arguments as canonical JSON)."""
    return json.dumps([kind, *task], sort_keys=True)


def read_log(path: Path) -> dict[str, list[dict]]:
    """Finished tasks in a log, by key (a torn last line is ignored)."""
    done: dict[str, list[dict]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[entry["task"]] = entry["rows"]
    return done


def _with_task(fn: Callable[[tuple], list[dict]], task: tuple) -> tuple[tuple, list[dict]]:
    """``(task, fn(task))``: unordered pool results keep their task."""
    return task, fn(task)


class TaskLog:
    """The log of one grid.

    Args:
        path: the log file.
        wanted: keys (:func:`task_key`) of every task of this grid; other logged tasks are ignored.
    """

    def __init__(self, path: Path, wanted: Iterable[str]) -> None:
        self.path = path
        keys = set(wanted)
        self.done = {k: rows for k, rows in read_log(path).items() if k in keys}
        if self.done:
            print(f"resuming: {len(self.done)} finished tasks read from {path}", file=sys.stderr)

    def run(
        self, pool: Pool, kind: str, fn: Callable[[tuple], list[dict]], tasks: Sequence[tuple]
    ) -> list[dict]:
        """Rows of every task: logged tasks are read back, the others run in ``pool`` (``fn`` must
        be picklable) and are logged as they finish."""
        keys = [task_key(kind, t) for t in tasks]
        rows = [r for k in keys for r in self.done.get(k, [])]
        todo = [t for t, k in zip(tasks, keys, strict=True) if k not in self.done]
        with open(self.path, "a") as fh:
            for i, (task, out) in enumerate(pool.imap_unordered(partial(_with_task, fn), todo)):
                rows.extend(out)
                key = task_key(kind, task)
                self.done[key] = out
                fh.write(json.dumps({"task": key, "rows": out}) + "\n")
                fh.flush()
                print(f"\r{kind} {i + 1}/{len(todo)}", end="", file=sys.stderr, flush=True)
        if todo:
            print(file=sys.stderr)
        return rows

    def finished(self, kind: str, tasks: Sequence[tuple]) -> list[tuple[tuple, list[dict]]]:
        """``(task, rows)`` of the tasks of ``tasks`` already in the log, in the order given."""
        pairs = ((t, self.done.get(task_key(kind, t))) for t in tasks)
        return [(t, rows) for t, rows in pairs if rows is not None]

    def remove(self) -> None:
        """Delete the log (once the grid's tables are written)."""
        self.path.unlink(missing_ok=True)
