"""The README's Python search example runs as written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _python_block_with(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.S)
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"expected one README python block with {marker!r}"
    return found[0]


def test_readme_search_example_runs(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = _python_block_with("run_search(")
    monkeypatch.chdir(tmp_path)  # it writes results.db and front.png to the working directory
    monkeypatch.setenv("HSCONAS_DATA_DIR", os.fspath(data_dir))
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    result = namespace["result"]
    assert result.n_queries == 300 and result.best.latency_ms <= 10.0  # type: ignore[attr-defined]
    regret, hv, share = (float(x) for x in capsys.readouterr().out.splitlines()[-1].split())
    assert regret >= 0 and 0.9 < hv <= 1 and 0 <= share <= 1
    assert (tmp_path / "front.png").stat().st_size > 0 and (tmp_path / "results.db").exists()
