"""CLI round trip of ``hsconas profile`` on the real NB201 tables (small N)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hsconas.cli.main import main
from hsconas.data.tables import data_dir

try:
    NB201_DIR = data_dir() / "nb201"
except Exception:
    NB201_DIR = Path("/nonexistent")
pytestmark = pytest.mark.skipif(
    not (NB201_DIR / "latency_help.csv.gz").is_file(), reason="NB201 tables not available"
)


def _subset(tmp_path: Path, n: int = 2500) -> tuple[Path, Path]:
    """The first ``n`` cells of the real NB201 latency and accuracy tables (parsing all 15625
    cells twice would dominate the test's time)."""
    import pandas as pd

    lat = pd.read_csv(NB201_DIR / "latency_help.csv.gz").head(n)
    acc = pd.read_csv(NB201_DIR / "accuracy.csv")
    acc = acc[acc["arch_str"].isin(set(lat["arch_str"]))]
    lat_p, acc_p = tmp_path / "lat.csv", tmp_path / "acc.csv"
    lat.to_csv(lat_p, index=False)
    acc.to_csv(acc_p, index=False)
    return lat_p, acc_p


def test_profile_blocks_reduce_report_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p3"
    lat_p, acc_p = _subset(tmp_path)
    base = [
        "profile", "blocks", "nb201",
        "--source", f"table:{lat_p}", "--device", "pixel3",
        "--accuracy-table", str(acc_p), "--accuracy-column", "cifar100",
        "--samples", "4", "--seed", "0", "--out", str(out), "--store", str(tmp_path / "r.db"),
    ]  # fmt: skip
    assert main([*base, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_specs"] == 30 and doc["device"] == "pixel3"
    assert 4 <= doc["n_distinct"] < 30 * 4 and doc["n_new"] == doc["n_distinct"]
    for name in ("profile.json", "stats.csv", "stats.parquet", "effects.csv", "draws.parquet",
                 "regression_latency_ms.csv", "regression_accuracy.parquet", "insights.txt",
                 "heatmap_lat_effect_pct.png", "heatmap_score.png"):  # fmt: skip
        assert (out / name).is_file(), name
    insights = (out / "insights.txt").read_text()
    assert "pixel3" in insights and "%" in insights

    red, ctrl = tmp_path / "space.json", tmp_path / "random.json"
    rc = main(["profile", "reduce", str(out / "profile.json"), "--out", str(red), "--keep-min", "3",
               "--random-control", str(ctrl), "--seed", "1", "--json"])  # fmt: skip
    assert rc == 0
    rdoc = json.loads(capsys.readouterr().out)
    r, c = json.loads(red.read_text()), json.loads(ctrl.read_text())
    assert r["space"] == "nb201" and r["device"] == "pixel3"
    assert all(len(v) >= 3 for v in r["restrict"].values())
    assert c["size"] == r["size"] == rdoc["reduction"]["size"]
    assert r["rule"].startswith("front-rate(")
    dom = tmp_path / "dominated.json"
    assert main(["profile", "reduce", str(out / "profile.json"), "--out", str(dom),
                 "--rule", "dominated"]) == 0  # fmt: skip
    assert json.loads(dom.read_text())["rule"].startswith("dominated(")
    strict = tmp_path / "strict.json"
    assert main(["profile", "reduce", str(out / "profile.json"), "--out", str(strict),
                 "--min-rate-ratio", "0.9", "--keep-min", "1"]) == 0  # fmt: skip
    s = json.loads(strict.read_text())
    assert "min_rate_ratio=0.9" in s["rule"] and s["size"] <= r["size"]
    capsys.readouterr()
    assert main(["profile", "reduce", str(out / "profile.json"), "--out", str(strict),
                 "--min-rate-ratio", "2"]) == 2  # fmt: skip
    assert "min-rate-ratio must be between 0 and 1" in capsys.readouterr().err

    html = tmp_path / "report.html"
    assert main(["profile", "report", str(out / "profile.json"), "--html", str(html)]) == 0
    text = html.read_text()
    assert "data:image/png;base64," in text and "pixel3" in text

    # the search's loader accepts the reduced space file
    from hsconas.cli.search_sources import load_restrict
    from hsconas.space import get_space

    assert get_space("nb201").restrict(load_restrict(red, "nb201")).size() == r["size"]

    # bad input: one-line error, exit 2
    assert main([*base, "--blocks", "conv5x5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hsconas: error:") and "conv5x5" in err and "\n" not in err
    assert main([*base, "--positions", "6"]) == 2
    assert "out of range" in capsys.readouterr().err
    bad = tmp_path / "fb.csv"
    bad.write_text("op_idx_list,dev\n" + "0 " * 22 + ",1.0\n")
    assert main(["profile", "blocks", "nb201", "--source", f"table:{bad}", "--device", "dev",
                 "--samples", "3", "--out", str(tmp_path / "x")]) == 2  # fmt: skip
    assert "not a nb201 table" in capsys.readouterr().err
