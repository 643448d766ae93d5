"""A resumable stage runner: each finished stage leaves a marker; stale or missing markers rerun.

A stage is a function of a :class:`StageContext` returning a JSON-ready result. After it returns,
the runner writes ``<run_dir>/<stage>/result.json`` and then the marker
``<run_dir>/<stage>/stage.done.json``, both atomically (temp file + rename), holding:

- ``config_hash``: hash of the stage's config slice;
- ``inputs_hash``: hash of the output hashes of every earlier stage;
- ``output_hash``: hash of the stage's result document.

On the next run a stage is *fresh* when its marker and result exist, the result still hashes to
``output_hash``, and both ``config_hash`` and ``inputs_hash`` equal the current ones; a fresh stage
is skipped and its stored result is handed to later stages. Otherwise it reruns, and so does
every stage after it. Interrupting a stage leaves no marker, so the next run reruns it; stage
functions keep their partial work resumable under :attr:`StageContext.key` (checkpoints, stored
evaluations).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "MARKER_NAME",
    "RESULT_NAME",
    "Reporter",
    "Stage",
    "StageContext",
    "StageOutcome",
    "atomic_path",
    "hash_json",
    "read_marker",
    "run_stages",
    "stage_status",
    "write_json_atomic",
]

log = logging.getLogger(__name__)

MARKER_NAME = "stage.done.json"
RESULT_NAME = "result.json"


def hash_json(doc: Any) -> str:
    """SHA-256 of the canonical JSON form of ``doc`` (sorted keys, compact)."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name keeps the suffix (``x.tmp123.png``) so writers that look at it still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json_atomic(path: str | Path, doc: Any) -> Path:
    """Write ``doc`` as indented JSON through a temp file and a rename; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")
    return path


class Reporter(Protocol):
    """Receives progress events (the CLI draws them; library code only logs)."""

    def stage_start(self, index: int, total: int, name: str, title: str) -> None:
        """Stage ``index`` (1-based) of ``total`` starts running."""

    def stage_progress(self, done: float, total: float, what: str) -> None:
        """Progress inside the running stage."""

    def stage_end(self, name: str, *, skipped: bool, elapsed_s: float) -> None:
        """The stage finished (``skipped``: it was fresh and did not run)."""


class _LogReporter:
    def stage_start(self, index: int, total: int, name: str, title: str) -> None:
        log.info("stage %d/%d %s: %s", index, total, name, title)

    def stage_progress(self, done: float, total: float, what: str) -> None:
        pass

    def stage_end(self, name: str, *, skipped: bool, elapsed_s: float) -> None:
        log.info("stage %s %s (%.1f s)", name, "up to date" if skipped else "done", elapsed_s)


@dataclass(frozen=True)
class StageContext:
    """What a stage function receives.

    Attributes:
        name: the stage name.
        dir: the stage's folder (created), for its outputs.
        run_dir: the run folder.
        key: hash of the stage's config slice and inputs: name partial work with it (a training
            folder, a search run id) so that a changed config never resumes stale work.
        inputs: results of the earlier stages, by name.
        shared: objects shared by all stages (the config, the store, ...).
        progress: ``progress(done, total, what)`` reports progress inside the stage.
    """

    name: str
    dir: Path
    run_dir: Path
    key: str
    inputs: Mapping[str, Mapping[str, Any]]
    shared: Mapping[str, Any]
    progress: Callable[[float, float, str], None]


StageFn = Callable[[StageContext], Mapping[str, Any]]


@dataclass(frozen=True)
class Stage:
    """One step of a pipeline.

    Attributes:
        name: folder-safe name (``profile``).
        func: the work; returns a JSON-ready result stored as ``result.json``.
        config: the JSON-ready slice of the configuration this stage depends on.
        title: a short description for the progress display.
    """

    name: str
    func: StageFn
    config: Any
    title: str = ""


@dataclass(frozen=True)
class StageOutcome:
    """What happened to a stage in one run.

    Attributes:
        name: the stage.
        ran: it ran (``False``: it was fresh and skipped).
        reason: why it ran (``missing``, ``config changed``, ``inputs changed``, ...) or ``fresh``.
        elapsed_s: seconds spent (0 when skipped).
        result: its result document.
    """

    name: str
    ran: bool
    reason: str
    elapsed_s: float
    result: Mapping[str, Any] = field(default_factory=dict)


def read_marker(stage_dir: Path) -> dict[str, Any] | None:
    """The marker of a finished stage, or ``None`` (missing or unreadable)."""
    try:
        doc = json.loads((stage_dir / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def _read_result(stage_dir: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((stage_dir / RESULT_NAME).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def stage_status(
    stage_dir: Path, config_hash: str, inputs_hash: str
) -> tuple[str, dict[str, Any] | None]:
    """(``fresh`` or why it must run, the stored result if fresh)."""
    marker = read_marker(stage_dir)
    if marker is None:
        return "missing", None
    result = _read_result(stage_dir)
    if result is None:
        return "result missing", None
    if hash_json(result) != marker.get("output_hash"):
        return "result modified", None
    if marker.get("config_hash") != config_hash:
        return "config changed", None
    if marker.get("inputs_hash") != inputs_hash:
        return "inputs changed", None
    return "fresh", result


def run_stages(
    stages: Sequence[Stage],
    run_dir: str | Path,
    *,
    shared: Mapping[str, Any] | None = None,
    reporter: Reporter | None = None,
    force: Sequence[str] = (),
    lock: bool = True,
) -> list[StageOutcome]:
    """Run ``stages`` in order, skipping fresh ones (see the module docstring).

    The run folder is locked for the duration (:class:`hsconas.pipeline.lock.RunDirLock`): a
    second run on a busy folder fails at once, a lock left by a killed run is taken over.

    Args:
        stages: the pipeline.
        run_dir: the run folder (created).
        shared: objects passed to every stage as :attr:`StageContext.shared`.
        reporter: progress receiver (default: log lines).
        force: stage names to rerun even if fresh (later stages rerun too).
        lock: hold the run-folder lock while the stages run.

    Returns:
        One outcome per stage, in order.

    Raises:
        RunLockedError: another live run holds the run folder.
    """
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise ValueError(f"stage names must be unique, got {names}")
    unknown = set(force) - set(names)
    if unknown:
        raise ValueError(f"unknown stage(s) to force: {', '.join(sorted(unknown))}")
    root = Path(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    if lock:
        from hsconas.pipeline.lock import RunDirLock

        with RunDirLock(root):
            return _run_stages(stages, root, shared, reporter, force)
    return _run_stages(stages, root, shared, reporter, force)


def _run_stages(
    stages: Sequence[Stage],
    root: Path,
    shared: Mapping[str, Any] | None,
    reporter: Reporter | None,
    force: Sequence[str],
) -> list[StageOutcome]:
    rep: Reporter = reporter or _LogReporter()
    outputs: dict[str, str] = {}
    results: dict[str, Mapping[str, Any]] = {}
    outcomes: list[StageOutcome] = []
    rerun_rest = False
    for i, stage in enumerate(stages, 1):
        sdir = root / stage.name
        config_hash = hash_json(stage.config)
        inputs_hash = hash_json(outputs)
        status, stored = stage_status(sdir, config_hash, inputs_hash)
        if status == "fresh" and stage.name in force:
            status, stored = "forced", None
        if status == "fresh" and rerun_rest:
            status, stored = "an earlier stage reran", None
        rep.stage_start(i, len(stages), stage.name, stage.title)
        if status == "fresh" and stored is not None:
            marker = read_marker(sdir) or {}
            outputs[stage.name] = str(marker["output_hash"])
            results[stage.name] = stored
            rep.stage_end(stage.name, skipped=True, elapsed_s=0.0)
            outcomes.append(StageOutcome(stage.name, False, "fresh", 0.0, stored))
            continue
        rerun_rest = True
        log.info("stage %s runs: %s", stage.name, status)
        marker_path = sdir / MARKER_NAME
        if marker_path.exists():
            marker_path.unlink()  # a crash from here on must not leave a fresh-looking stage
        sdir.mkdir(parents=True, exist_ok=True)
        ctx = StageContext(
            name=stage.name,
            dir=sdir,
            run_dir=root,
            key=hash_json([config_hash, inputs_hash])[:12],
            inputs=dict(results),
            shared=dict(shared or {}),
            progress=rep.stage_progress,
        )
        t0 = time.perf_counter()
        result = json.loads(json.dumps(dict(stage.func(ctx)), default=str))
        elapsed = time.perf_counter() - t0
        write_json_atomic(sdir / RESULT_NAME, result)
        output_hash = hash_json(result)
        write_json_atomic(
            marker_path,
            {
                "stage": stage.name,
                "config_hash": config_hash,
                "inputs_hash": inputs_hash,
                "output_hash": output_hash,
                "finished": time.time(),
                "elapsed_s": round(elapsed, 3),
            },
        )
        outputs[stage.name] = output_hash
        results[stage.name] = result
        rep.stage_end(stage.name, skipped=False, elapsed_s=elapsed)
        outcomes.append(StageOutcome(stage.name, True, status, elapsed, result))
    return outcomes


def clear_stage(run_dir: str | Path, name: str) -> None:
    """Delete a stage's folder (its results and marker): the next run reruns it and later ones."""
    shutil.rmtree(Path(run_dir) / name, ignore_errors=True)
