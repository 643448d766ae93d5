"""``hsconas accuracy fit | predict`` in-process: the CV table, the model file, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hsconas.cli.main import main
from hsconas.space import get_space

ARCH = "r224|k3e4-k5e6|k3e3-k3e3|k5e4-k3e3|k7e6-k5e3|k3e6-k5e4"


@pytest.fixture(scope="module")
def model_file(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("acc") / "ofa.json"
    table = data_dir / "ofa_mbv3" / "imagenet_accuracy_dynast.csv"
    fit = ["accuracy", "fit", "--space", "ofa-mbv3", "--table", str(table), "--models", "ridge"]
    rc = main([*fit, "--folds", "5", "--out", str(out)])
    assert rc == 0 and out.is_file()
    return out


def test_fit_prints_cv_table(model_file: Path, data_dir: Path, capsys) -> None:
    table = data_dir / "ofa_mbv3" / "imagenet_accuracy_dynast.csv"
    fit = ["accuracy", "fit", "--space", "ofa-mbv3", "--table", str(table), "--models", "ridge"]
    rc = main([*fit, "--folds", "3", "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    kinds = [r["kind"] for r in doc["cv"]]
    assert kinds == ["macs", "ridge"] and doc["selected"] == "ridge"
    assert doc["cv"][1]["kendall"] > doc["cv"][0]["kendall"]
    assert doc["rows"] == 1458 and doc["distinct_archs"] == 1336


def test_predict_lines(model_file: Path, tmp_path: Path, capsys) -> None:
    archs = tmp_path / "archs.txt"
    archs.write_text(f"# two networks\nofa-mbv3:{ARCH}\n\n{get_space('ofa-mbv3').sample(3)}\n")
    capsys.readouterr()
    rc = main(["accuracy", "predict", str(model_file), ARCH, "--archs-file", str(archs), "--json"])
    assert rc == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3 and set(lines[0]) == {"arch", "accuracy", "sd"}
    assert lines[0]["arch"] == ARCH and lines[0]["accuracy"] == lines[1]["accuracy"]
    assert all(60 < x["accuracy"] < 85 and x["sd"] > 0 for x in lines)
    assert main(["accuracy", "predict", str(model_file), ARCH]) == 0
    assert "accuracy %" in capsys.readouterr().out


def _one_line_exit_2(argv: list[str], capsys, match: str) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("hsconas: error:"), err
    assert match in err, err


def test_bad_input_one_line(model_file: Path, tmp_path: Path, capsys) -> None:
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text(model_file.read_text()[:5000])
    _one_line_exit_2(["accuracy", "predict", str(corrupt), ARCH], capsys, "not a JSON")
    nb = "nb201:" + str(get_space("nb201").sample(0))
    _one_line_exit_2(["accuracy", "predict", str(model_file), nb], capsys, "space 'nb201'")
    _one_line_exit_2(["accuracy", "predict", str(model_file), "r224|k9e3"], capsys, "ofa-mbv3")
    table = tmp_path / "t.csv"
    table.write_text(f"arch,acc\n{ARCH},75.0\n")
    _one_line_exit_2(
        ["accuracy", "fit", "--space", "ofa-mbv3", "--table", str(table)],
        capsys,
        "missing column(s) top1",
    )
    _one_line_exit_2(["accuracy", "predict", str(model_file)], capsys, "no architectures")
    _one_line_exit_2(
        ["accuracy", "predict", str(tmp_path / "none.json"), ARCH], capsys, "not found"
    )


def test_search_with_accuracy_model(
    model_file: Path, data_dir: Path, tmp_path: Path, capsys
) -> None:
    """``hsconas search --accuracy-model``: every evaluated accuracy is the model's prediction."""
    import pandas as pd

    lat = tmp_path / "v100.json"
    table = tmp_path / "gpu.csv"  # 500 recorded rows are plenty for a linear latency model
    pd.read_csv(data_dir / "ofa_mbv3" / "latency_help_gpu.csv.gz", nrows=500).to_csv(
        table, index=False
    )
    fit = ["latency", "fit-table", "--table", str(table), "--device", "v100_64"]
    assert main([*fit, "--train", "300", "--max-test", "200", "--out", str(lat)]) == 0
    restrict = tmp_path / "r224.json"
    restrict.write_text(json.dumps({"space": "ofa-mbv3", "restrict": {"resolution": [224]}}))
    capsys.readouterr()
    argv = ["search", "--space", "ofa-mbv3", "--accuracy-model", str(model_file)]
    argv += ["--latency-model", str(lat), "--space-restrict", str(restrict), "--queries", "12"]
    argv += ["--algorithm", "random", "--mode", "constraint", "--budget-ms", "25", "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["evaluator"]["accuracy"]["kind"] == "accuracy-model"
    from hsconas.accuracy.predictor import load_accuracy_model

    model = load_accuracy_model(model_file)
    space = get_space("ofa-mbv3")
    front = doc["front"]
    pred = model.accuracy([space.from_string(r["arch"]) for r in front])
    assert [round(r["accuracy"], 6) for r in front] == [round(float(p), 6) for p in pred]
    _one_line_exit_2(
        [*argv[:-1], "--accuracy-table", str(table)], capsys, "not both --accuracy-table"
    )
    # without --space-restrict the search keeps to the resolution the accuracy table covers
    free = [*argv[:7], *argv[9:]]
    assert "--space-restrict" not in free
    assert main(free) == 0
    out = capsys.readouterr()
    assert "note: searching resolution in [224] only" in out.err
    assert all(r["arch"].startswith("r224|") for r in json.loads(out.out)["front"])
    # the EA's channel scaling: off by default, --channel-scaling switches it on
    hs = [*argv[:9], "--queries", "8", *argv[13:]]
    for flag, on in (([], False), (["--channel-scaling"], True), (["--no-channel-scaling"], False)):
        assert main([*hs, "--algorithm", "hsconas", *flag]) == 0
        assert json.loads(capsys.readouterr().out)["algorithm"]["channel_scaling"] is on
