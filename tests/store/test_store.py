"""The SQLite results store: durability, resume, concurrent writers, schema versioning."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from hsconas.store import Measurement, ResultStore, StoreError


def _m(key: str, ms: float) -> Measurement:
    return Measurement(
        space="nb201", kind="network", key=key, device="cpu", backend="torch",
        settings={"threads": 1, "batch": 1}, median_ms=ms, spread_ms=0.01, n_runs=20,
        stable=True, fingerprint={"cpu": "test", "torch": "2.x"},
    )  # fmt: skip


def test_measurement_survives_reopen_and_latest_wins(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    store = ResultStore(path)
    store.put_measurement(_m("a", 1.0))
    store.put_measurement(_m("a", 2.0))
    store.put_measurement(_m("b", 3.0))
    store.close()
    again = ResultStore(path)
    got = again.get_measurement(
        space="nb201", kind="network", key="a", device="cpu", backend="torch",
        settings={"batch": 1, "threads": 1},  # key order does not matter
    )  # fmt: skip
    assert got is not None and got.median_ms == 2.0
    assert got.fingerprint == {"cpu": "test", "torch": "2.x"}
    assert [m.key for m in again.measurements(device="cpu")] == ["a", "b"]
    assert (
        again.get_measurement(
            space="nb201", kind="network", key="a", device="cpu", backend="torch", settings={}
        )
        is None
    )


def test_runs_evaluations_and_metrics(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r.db")
    store.create_run("s1", "search", {"seed": 0})
    assert store.create_run("s1", "search", {"seed": 0}).status == "running"
    with pytest.raises(StoreError, match="another configuration"):
        store.create_run("s1", "search", {"seed": 1})
    for i, arch in enumerate(["x", "y", "z"]):
        store.add_evaluation("s1", i, arch, {"accuracy": 90.0 + i})
    store.add_evaluation("s1", 1, "other", {"accuracy": 0.0})  # duplicate seq is ignored
    assert [e.arch for e in store.evaluations("s1")] == ["x", "y", "z"]
    store.log_metric("s1", 0, "loss", 2.0)
    store.log_metric("s1", 1, "loss", 1.5)
    assert store.metrics("s1") == {"loss": [(0, 2.0), (1, 1.5)]}
    store.finish_run("s1", {"best": "z"})
    run = store.get_run("s1")
    assert run is not None and run.status == "finished" and run.result == {"best": "z"}
    store.delete_run("s1")
    assert store.get_run("s1") is None and store.evaluations("s1") == []


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    store = ResultStore(path)

    def write(worker: int) -> None:
        own = ResultStore(path)
        for i in range(50):
            own.put_measurement(_m(f"w{worker}-{i}", float(i)))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.measurements()) == 200


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    ResultStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    with pytest.raises(StoreError, match="newer than this"):
        ResultStore(path)


def test_corrupt_file_gives_store_error(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        ResultStore(path)
