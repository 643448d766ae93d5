"""What the benchmark scripts share: the machine tag, where results go and how they are written, and
the resumable task log of the search grids.

Results of ``python -m bench.X`` land in ``bench/results/<machine>/X.csv`` and ``X.md`` (the latest
run only: a rerun overwrites them; ``X_<tag>`` when the user passes ``--tag``). The machine tag is
the CPU's short name and core count, e.g. ``intel-xeon-2c``; ``HSCONAS_BENCH_MACHINE`` overrides it
and ``HSCONAS_BENCH_RESULTS`` the results folder (e.g. a scratch folder for a trial run).

A grid's tasks run in a process pool; each finished task is appended to a JSON-lines log beside the
results (``<stem>.partial.jsonl``, git-ignored) before the next one is reported. Running the same
command again reads the log, skips the tasks already done and runs the rest; tasks logged under the
same name by other arguments are ignored. The caller removes the log once its tables are written.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import platform
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent


def machine_tag() -> str:
    """``<cpu short name>-<cores>c`` (e.g. ``intel-xeon-2c``), or ``$HSCONAS_BENCH_MACHINE``."""
    if tag := os.environ.get("HSCONAS_BENCH_MACHINE"):
        return tag
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1]
                break
    except OSError:
        pass
    cpu = re.sub(r"\(R\)|\(TM\)|CPU|Processor|@.*", "", cpu)
    short = "-".join(cpu.lower().split()[:3]) or "cpu"
    return f"{short}-{os.cpu_count()}c"


def software(*packages: str) -> str:
    """``Python 3.11.7, numpy 2.4.6, ...`` for the packages given (those installed)."""
    parts = [f"Python {platform.python_version()}"]
    for name in packages:
        with contextlib.suppress(PackageNotFoundError):
            parts.append(f"{name} {version(name)}")
    return ", ".join(parts)


def results_dir() -> Path:
    """``bench/results/<machine>`` (created), or ``$HSCONAS_BENCH_RESULTS/<machine>``."""
    root = Path(os.environ.get("HSCONAS_BENCH_RESULTS", BENCH / "results"))
    out = root / machine_tag()
    out.mkdir(parents=True, exist_ok=True)
    return out


def results_stem(script: str, tag: str | None = None) -> Path:
    """Where a script's results go, without extension: ``results/<machine>/<script>[_<tag>]``."""
    return results_dir() / (f"{script}_{tag}" if tag else script)


def add_tag_argument(ap: argparse.ArgumentParser) -> None:
    """``--tag NAME``: write ``<script>_<NAME>.{csv,md}`` instead of the script's default files."""
    ap.add_argument(
        "--tag",
        help="write results/<machine>/<script>_<TAG>.{csv,md} (a variant) instead of the "
        "default files, which hold the headline run",
    )


def write_csv(path: Path, rows: Sequence[dict[str, Any]], fields: Sequence[str] = ()) -> None:
    """Rows as CSV; columns ``fields``, else every key in the order first seen."""
    keys = list(fields) or list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def write_results(
    stem: Path, rows: Sequence[dict[str, Any]], text: str, fields: Sequence[str] = ()
) -> None:
    """``<stem>.csv`` (the rows) and ``<stem>.md`` (the tables); prints the tables."""
    write_csv(stem.with_suffix(".csv"), rows, fields)
    stem.with_suffix(".md").write_text(text, encoding="utf-8")
    print(text)
    print(f"written {stem}.md and .csv", file=sys.stderr)


def markdown_table(df: Any) -> str:
    """A pipe table of a pandas DataFrame (floats to 4 significant digits)."""
    cols = [str(c) for c in df.columns]
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for rec in df.itertuples(index=False):
        out.append(
            "| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in rec) + " |"
        )
    return "\n".join(out)


# --- the resumable task log of a grid ---------------------------------------------------------


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


def nb201_proxy_cells(archs: int, rng: Any = None) -> Any:
    """The NB201 cells of the proxy benchmarks: the first ``archs`` of a permutation of the
    table's distinct cells (one row per ``unique_str``) drawn by ``rng`` (default
    ``numpy.random.default_rng(0)``), as a DataFrame of ``nb201/accuracy.csv``'s rows.
    ``accuracy_nb201`` computes their proxies, the others read them from its store."""
    import numpy as np
    import pandas as pd

    from hsconas.data import data_dir

    table = pd.read_csv(data_dir() / "nb201" / "accuracy.csv")
    firsts = table.drop_duplicates("unique_str")
    rng = np.random.default_rng(0) if rng is None else rng
    return firsts.iloc[rng.permutation(len(firsts))[:archs]].reset_index(drop=True)


def nb201_proxy_store(path: Path | None = None) -> tuple[str, Path]:
    """The dataset spec (the shared CIFAR-10 JPEG archive) and the results store of the NB201
    proxy values shared by the proxy benchmarks (default ``~/.cache/hsconas/accuracy_nb201.db``)."""
    from hsconas.data import data_dir
    from hsconas.data.datasets import default_cache_dir

    spec = f"cifar10:{data_dir() / 'images' / 'cifar10_jpg.tar.gz'}"
    return spec, path or default_cache_dir() / "accuracy_nb201.db"
