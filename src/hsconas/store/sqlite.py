"""The results store: one SQLite database for measurements, evaluations, runs and metrics.

Contract (the Optuna habit of a storage docstring that says what callers may rely on):

* Every ``put_*``/``add_*`` call commits before it returns, so an interrupted process loses at
  most the record it was writing, and a re-run finds everything earlier calls stored.
* Several processes may write to the same file at once: the database runs in WAL mode with a busy
  timeout, and each thread of a process gets its own connection.
* Records handed out are frozen dataclasses; callers never see rows or cursors.
* The schema carries a version number; opening a database of a newer version raises
  :class:`StoreError` instead of misreading it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hsconas.errors import HsconasError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fingerprints (
    id TEXT PRIMARY KEY,               -- sha1 of the canonical JSON
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    space TEXT NOT NULL,               -- search space name, or '' for free-standing modules
    kind TEXT NOT NULL,                -- 'network' (end to end), 'block' (LUT entry), 'reference'
    key TEXT NOT NULL,                 -- canonical architecture string or block key
    device TEXT NOT NULL,              -- device name the user gave (e.g. 'this-cpu')
    backend TEXT NOT NULL,             -- 'torch', 'onnxruntime', 'cuda', 'table', ...
    settings TEXT NOT NULL,            -- canonical JSON of settings (threads, batch, ...)
    median_ms REAL NOT NULL,
    spread_ms REAL NOT NULL,           -- robust spread of repeated runs (IQR/2), ms
    n_runs INTEGER NOT NULL,
    stable INTEGER NOT NULL,           -- 1 if the timing protocol met its precision target
    fingerprint TEXT,                  -- fingerprints.id
    created REAL NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS measurements_lookup
    ON measurements (space, kind, key, device, backend, settings);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,                -- 'search', 'profile', 'train', 'pipeline', ...
    config TEXT NOT NULL,              -- canonical JSON of the run's configuration
    status TEXT NOT NULL,              -- 'running', 'finished', 'failed'
    created REAL NOT NULL,
    updated REAL NOT NULL,
    result TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS evaluations (
    run_id TEXT NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,              -- order in which the run produced it, from 0
    arch TEXT NOT NULL,                -- canonical architecture string
    values_json TEXT NOT NULL,         -- objectives and other measured quantities
    created REAL NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX IF NOT EXISTS evaluations_arch ON evaluations (run_id, arch);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(id),
    step INTEGER NOT NULL,             -- epoch, stage or iteration number
    name TEXT NOT NULL,
    value REAL NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (run_id, step, name)
);
"""


class StoreError(HsconasError):
    """The results database cannot be opened or has an unexpected schema."""


def canonical_json(doc: Any) -> str:
    """Deterministic compact JSON (sorted keys): the form settings and configs are keyed by."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)


def default_store_path() -> Path:
    """``$HSCONAS_STORE`` if set, else ``$XDG_DATA_HOME/hsconas/results.db`` (~/.local/share)."""
    env = os.environ.get("HSCONAS_STORE")
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "hsconas" / "results.db"


@dataclass(frozen=True)
class Measurement:
    """One stored latency measurement.

    Attributes:
        space: search space name ('' when not an architecture of a space).
        kind: 'network' for end-to-end, 'block' for a lookup-table entry, 'reference' for the
            calibration of a reference network (see :mod:`hsconas.hardware.reference`).
        key: canonical architecture string or block key.
        device: user-given device name.
        backend: measurement backend name.
        settings: backend settings (threads, batch size, ...).
        median_ms: median latency, milliseconds.
        spread_ms: half the inter-quartile range of the repeated runs, milliseconds.
        n_runs: number of timed runs.
        stable: whether the timing protocol met its precision target.
        fingerprint: device and software fingerprint, if any.
        extra: anything else (all run times, warm-up count, ...).
    """

    space: str
    kind: str
    key: str
    device: str
    backend: str
    settings: Mapping[str, Any]
    median_ms: float
    spread_ms: float
    n_runs: int
    stable: bool
    fingerprint: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    created: float = 0.0


@dataclass(frozen=True)
class Evaluation:
    """One architecture evaluated by a run, in the order the run produced it."""

    run_id: str
    seq: int
    arch: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Run:
    """A search, profiling, training or pipeline run and its status."""

    id: str
    kind: str
    config: Mapping[str, Any]
    status: str
    created: float
    updated: float
    result: Mapping[str, Any]


class ResultStore:
    """SQLite-backed results store (see the module docstring for the contract).

    Args:
        path: database file; created with its parent directory if missing. ``":memory:"`` gives a
            private in-memory store (single thread only).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = str(default_store_path() if path is None else path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._memory_conn: sqlite3.Connection | None = None
        self._init_schema()

    # ------------------------------------------------------------------ connection handling
    def _conn(self) -> sqlite3.Connection:
        if self.path == ":memory:":
            if self._memory_conn is None:
                self._memory_conn = sqlite3.connect(":memory:")
            return self._memory_conn
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=60.0)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"cannot open results store {self.path}: {exc}") from None
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        try:
            with conn:
                yield conn
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"results store {self.path}: {exc}") from exc

    def _init_schema(self) -> None:
        with self._tx() as conn:
            conn.executescript(_SCHEMA)
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
            elif int(row[0]) > SCHEMA_VERSION:
                raise StoreError(
                    f"results store {self.path} has schema version {row[0]}, newer than this "
                    f"hsconas ({SCHEMA_VERSION}); upgrade hsconas or use another --store"
                )

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = self._memory_conn if self.path == ":memory:" else getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._memory_conn = None
        self._local = threading.local()

    # ------------------------------------------------------------------ measurements
    def _put_fingerprint(
        self, conn: sqlite3.Connection, doc: Mapping[str, Any] | None
    ) -> str | None:
        if doc is None:
            return None
        text = canonical_json(doc)
        fid = hashlib.sha1(text.encode()).hexdigest()
        conn.execute("INSERT OR IGNORE INTO fingerprints VALUES (?, ?)", (fid, text))
        return fid

    def put_measurement(self, m: Measurement) -> None:
        """Store a measurement (several of the same key may coexist; the latest wins on read)."""
        with self._tx() as conn:
            fid = self._put_fingerprint(conn, m.fingerprint)
            conn.execute(
                "INSERT INTO measurements (space, kind, key, device, backend, settings, median_ms,"
                " spread_ms, n_runs, stable, fingerprint, created, extra)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    m.space, m.kind, m.key, m.device, m.backend, canonical_json(m.settings),
                    float(m.median_ms), float(m.spread_ms), int(m.n_runs), int(m.stable), fid,
                    m.created or time.time(), canonical_json(m.extra),
                ),
            )  # fmt: skip

    def get_measurement(
        self,
        *,
        space: str,
        kind: str,
        key: str,
        device: str,
        backend: str,
        settings: Mapping[str, Any],
    ) -> Measurement | None:
        """The latest stored measurement matching exactly, or ``None``."""
        rows = self._select_measurements(
            "space=? AND kind=? AND key=? AND device=? AND backend=? AND settings=?",
            (space, kind, key, device, backend, canonical_json(settings)),
            latest_only=True,
        )
        return rows[0] if rows else None

    def measurements(
        self,
        *,
        space: str | None = None,
        kind: str | None = None,
        device: str | None = None,
        backend: str | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> list[Measurement]:
        """All measurements matching the given fields (latest per key), in insertion order."""
        clauses, params = [], []
        for col, val in (
            ("space", space),
            ("kind", kind),
            ("device", device),
            ("backend", backend),
        ):
            if val is not None:
                clauses.append(f"{col}=?")
                params.append(val)
        if settings is not None:
            clauses.append("settings=?")
            params.append(canonical_json(settings))
        where = " AND ".join(clauses) or "1=1"
        return self._select_measurements(where, tuple(params), latest_only=False)

    def _select_measurements(
        self, where: str, params: tuple[Any, ...], *, latest_only: bool
    ) -> list[Measurement]:
        sql = (
            "SELECT m.space, m.kind, m.key, m.device, m.backend, m.settings, m.median_ms,"
            " m.spread_ms, m.n_runs, m.stable, f.doc, m.extra, m.created FROM measurements m"
            " LEFT JOIN fingerprints f ON f.id = m.fingerprint"
            f" WHERE m.id IN (SELECT MAX(id) FROM measurements WHERE {where}"
            " GROUP BY space, kind, key, device, backend, settings) ORDER BY m.id"
        )
        with self._tx() as conn:
            rows = conn.execute(sql, params).fetchall()
        out = [
            Measurement(
                space=r[0], kind=r[1], key=r[2], device=r[3], backend=r[4],
                settings=json.loads(r[5]), median_ms=r[6], spread_ms=r[7], n_runs=r[8],
                stable=bool(r[9]), fingerprint=json.loads(r[10]) if r[10] else None,
                extra=json.loads(r[11]), created=r[12],
            )
            for r in rows
        ]  # fmt: skip
        return out[-1:] if latest_only else out

    # ------------------------------------------------------------------ runs and evaluations
    def create_run(self, run_id: str, kind: str, config: Mapping[str, Any]) -> Run:
        """Create a run, or return the existing one if its config is identical.

        Raises:
            StoreError: if a run with this id exists with a different configuration.
        """
        now = time.time()
        text = canonical_json(config)
        with self._tx() as conn:
            row = conn.execute("SELECT config FROM runs WHERE id=?", (run_id,)).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO runs VALUES (?,?,?,?,?,?,?)",
                    (run_id, kind, text, "running", now, now, "{}"),
                )
            elif row[0] != text:
                raise StoreError(
                    f"run {run_id!r} already exists with another configuration; "
                    "choose a new run id or delete the old run"
                )
        run = self.get_run(run_id)
        assert run is not None
        return run

    def get_run(self, run_id: str) -> Run | None:
        """The run called ``run_id``, or ``None``."""
        with self._tx() as conn:
            r = conn.execute(
                "SELECT id, kind, config, status, created, updated, result FROM runs WHERE id=?",
                (run_id,),
            ).fetchone()
        if r is None:
            return None
        return Run(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5], json.loads(r[6]))

    def runs(self, kind: str | None = None) -> list[Run]:
        """Every run (of ``kind`` if given), oldest first."""
        with self._tx() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM runs WHERE (? IS NULL OR kind=?) ORDER BY created",
                    (kind, kind),
                )
            ]
        return [run for i in ids if (run := self.get_run(i)) is not None]

    def finish_run(
        self, run_id: str, result: Mapping[str, Any] | None = None, *, status: str = "finished"
    ) -> None:
        """Mark a run finished (or failed) and store its result summary."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE runs SET status=?, updated=?, result=? WHERE id=?",
                (status, time.time(), canonical_json(result or {}), run_id),
            )

    def delete_run(self, run_id: str) -> None:
        """Remove a run with its evaluations and metrics."""
        with self._tx() as conn:
            conn.execute("DELETE FROM evaluations WHERE run_id=?", (run_id,))
            conn.execute("DELETE FROM metrics WHERE run_id=?", (run_id,))
            conn.execute("DELETE FROM runs WHERE id=?", (run_id,))

    def add_evaluation(self, run_id: str, seq: int, arch: str, values: Mapping[str, Any]) -> None:
        """Append one evaluation of a run; re-adding the same ``seq`` is a no-op."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO evaluations VALUES (?,?,?,?,?)",
                (run_id, int(seq), arch, canonical_json(values), time.time()),
            )

    def evaluations(self, run_id: str) -> list[Evaluation]:
        """A run's evaluations in the order they were produced."""
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT seq, arch, values_json FROM evaluations WHERE run_id=? ORDER BY seq",
                (run_id,),
            ).fetchall()
        return [Evaluation(run_id, r[0], r[1], json.loads(r[2])) for r in rows]

    # ------------------------------------------------------------------ metrics
    def log_metric(self, run_id: str, step: int, name: str, value: float) -> None:
        """Record (or overwrite) a scalar metric of a run at a step (epoch, stage, ...)."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO metrics VALUES (?,?,?,?,?)",
                (run_id, int(step), name, float(value), time.time()),
            )

    def metrics(self, run_id: str) -> dict[str, list[tuple[int, float]]]:
        """Metric name -> [(step, value), ...] sorted by step."""
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT name, step, value FROM metrics WHERE run_id=? ORDER BY name, step",
                (run_id,),
            ).fetchall()
        out: dict[str, list[tuple[int, float]]] = {}
        for name, step, value in rows:
            out.setdefault(name, []).append((step, value))
        return out
