"""``python -m hsconas.agent``: the agent on a device without torch, pandas, scipy and the like."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from agent_helpers import NOT_ON_DEVICE, live_agent, measure_body, sha, tiny_onnx

from hsconas.agent.__main__ import main


def test_the_agent_serves_without_the_search_side_libraries(tmp_path: Path) -> None:
    with live_agent(tmp_path, minimal=True) as a:
        data = tiny_onnx(16, 32, seed=21)
        r = httpx.put(
            f"{a.url}/v1/models/{sha(data)}", content=data, headers=a.headers(), timeout=120
        )
        assert r.status_code == 201, r.text
        r = httpx.post(
            f"{a.url}/v1/measure", content=measure_body(sha(data)), timeout=120,
            headers={**a.headers(), "Content-Type": "application/json"},
        )  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["result"]["median_ms"] > 0
        assert a.info()["counters"]["measurements_served"] == 1
        assert "is not installed on this device" not in a.log_text()
    # the same interpreter setup really lacks them: the full CLI cannot even start there
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    for module in ("torch", "pandas", "hsconas.cli.main"):
        probe = subprocess.run(
            [sys.executable, "-c", f"import {module}"], env=env, capture_output=True, check=False
        )
        assert probe.returncode != 0 and b"is not installed on this device" in probe.stderr
    assert {"torch", "pandas", "scipy"} <= NOT_ON_DEVICE


def test_module_entry_point_refuses_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--port", "0", "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs --token-file" in err
    assert main(["token", "--out", str(tmp_path / "t")]) == 0
    assert len((tmp_path / "t").read_text().strip()) >= 40
