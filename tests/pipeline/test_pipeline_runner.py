"""The stage runner's resume logic, with cheap stage functions that count their calls."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from hsconas.pipeline.runner import (
    MARKER_NAME,
    RESULT_NAME,
    Stage,
    StageContext,
    atomic_path,
    hash_json,
    read_marker,
    run_stages,
)


class Counter:
    """Stage functions that record calls; ``b`` and ``c`` consume the previous result."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail_in: str | None = None
        self.version = {"a": 1, "b": 1, "c": 1}

    def make(self, name: str) -> Any:
        def fn(ctx: StageContext) -> Mapping[str, Any]:
            self.calls.append(name)
            if self.fail_in == name:
                raise KeyboardInterrupt
            prev = sum(int(r["value"]) for r in ctx.inputs.values())
            (ctx.dir / "out.txt").write_text(name, encoding="utf-8")
            return {"value": prev + self.version[name], "key": ctx.key}

        return fn

    def stages(self, conf: Mapping[str, Any] | None = None) -> list[Stage]:
        conf = dict(conf or {})
        return [Stage(n, self.make(n), conf.get(n, {"x": 0})) for n in ("a", "b", "c")]


def test_first_run_runs_all_and_second_run_skips_all(tmp_path: Path) -> None:
    c = Counter()
    out = run_stages(c.stages(), tmp_path)
    assert c.calls == ["a", "b", "c"] and all(o.ran for o in out)
    assert [o.result["value"] for o in out] == [1, 2, 4]
    for n in "abc":
        marker = read_marker(tmp_path / n)
        assert marker is not None
        assert marker["output_hash"] == hash_json(
            json.loads((tmp_path / n / RESULT_NAME).read_text())
        )
    c.calls.clear()
    again = run_stages(c.stages(), tmp_path)
    assert c.calls == []
    assert [o.ran for o in again] == [False] * 3
    assert [o.result["value"] for o in again] == [1, 2, 4]  # stored results handed on


def test_deleting_a_stage_reruns_it_and_later_ones_not_earlier(tmp_path: Path) -> None:
    c = Counter()
    run_stages(c.stages(), tmp_path)
    c.calls.clear()
    (tmp_path / "b" / MARKER_NAME).unlink()
    out = run_stages(c.stages(), tmp_path)
    assert c.calls == ["b", "c"]
    assert [o.reason for o in out] == ["fresh", "missing", "an earlier stage reran"]


def test_deleting_the_stage_folder_reruns_from_there(tmp_path: Path) -> None:
    import shutil

    c = Counter()
    run_stages(c.stages(), tmp_path)
    c.calls.clear()
    shutil.rmtree(tmp_path / "c")
    run_stages(c.stages(), tmp_path)
    assert c.calls == ["c"]


def test_changed_config_slice_reruns_that_stage_and_later(tmp_path: Path) -> None:
    c = Counter()
    run_stages(c.stages(), tmp_path)
    c.calls.clear()
    out = run_stages(c.stages({"b": {"x": 1}}), tmp_path)
    assert c.calls == ["b", "c"]
    assert out[1].reason == "config changed"
    # the stage key (for partial work) changes with the config
    assert out[1].result["key"] != json.loads((tmp_path / "a" / RESULT_NAME).read_text())["key"]


def test_changed_upstream_output_makes_later_markers_stale(tmp_path: Path) -> None:
    c = Counter()
    run_stages(c.stages(), tmp_path)
    # rerun only 'a' (a pipeline of just 'a') with a different output: the markers of 'b' and
    # 'c' still exist, but their inputs hash no longer matches, so both rerun
    c.version["a"] = 5
    run_stages(c.stages()[:1], tmp_path, force=["a"])
    c.calls.clear()
    out = run_stages(c.stages(), tmp_path)
    assert c.calls == ["b", "c"]
    assert out[1].reason == "inputs changed"
    assert [o.result["value"] for o in out] == [5, 6, 12]
    c.calls.clear()
    run_stages(c.stages(), tmp_path)
    assert c.calls == []


def test_forced_stage_reruns_with_later_ones(tmp_path: Path) -> None:
    c = Counter()
    run_stages(c.stages(), tmp_path)
    c.calls.clear()
    out = run_stages(c.stages(), tmp_path, force=["b"])
    assert c.calls == ["b", "c"]
    assert [o.reason for o in out] == ["fresh", "forced", "an earlier stage reran"]


def test_stale_inputs_detected_from_markers(tmp_path: Path) -> None:
    c = Counter()
    run_stages(c.stages(), tmp_path)
    # tamper with a's result: its hash no longer matches its marker
    res = tmp_path / "a" / RESULT_NAME
    doc = json.loads(res.read_text())
    doc["value"] = 99
    res.write_text(json.dumps(doc))
    c.calls.clear()
    out = run_stages(c.stages(), tmp_path)
    assert out[0].reason == "result modified"
    assert c.calls == ["a", "b", "c"]


def test_interrupted_stage_leaves_no_marker_and_resumes_there(tmp_path: Path) -> None:
    c = Counter()
    c.fail_in = "b"
    with pytest.raises(KeyboardInterrupt):
        run_stages(c.stages(), tmp_path)
    assert read_marker(tmp_path / "a") is not None
    assert read_marker(tmp_path / "b") is None
    c.fail_in = None
    c.calls.clear()
    run_stages(c.stages(), tmp_path)
    assert c.calls == ["b", "c"]


def test_interrupted_rerun_removes_the_old_marker_first(tmp_path: Path) -> None:
    c = Counter()
    run_stages(c.stages(), tmp_path)
    c.fail_in = "b"
    with pytest.raises(KeyboardInterrupt):
        run_stages(c.stages({"b": {"x": 2}}), tmp_path)
    assert read_marker(tmp_path / "b") is None  # the old fresh-looking marker is gone
    c.fail_in = None
    c.calls.clear()
    run_stages(c.stages({"b": {"x": 2}}), tmp_path)
    assert c.calls == ["b", "c"]


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_unknown_forced_stage_and_duplicate_names_are_rejected(tmp_path: Path) -> None:
    c = Counter()
    with pytest.raises(ValueError, match="unknown stage"):
        run_stages(c.stages(), tmp_path, force=["zzz"])
    with pytest.raises(ValueError, match="unique"):
        run_stages([*c.stages(), c.stages()[0]], tmp_path)


def test_a_run_dir_of_the_former_stage_names_asks_for_a_rerun(tmp_path: Path) -> None:
    """A run folder whose first stage was called ``profile`` is refused with a message that says
    what to do, before anything is written."""
    from hsconas.pipeline import ConfigError, config_from_dict, run_pipeline

    run = tmp_path / "old"
    (run / "profile").mkdir(parents=True)
    (run / "profile" / "stage.done.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"now 'hw_model'.*new run_dir"):
        run_pipeline(config_from_dict({"run_dir": str(run)}))
    assert sorted(p.name for p in run.iterdir()) == ["profile"]
