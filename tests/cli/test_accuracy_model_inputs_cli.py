"""``hsconas accuracy fit --proxies`` / ``--supernet-column``, ``accuracy predict`` and ``search
--accuracy-model`` with a model that needs extra inputs (proxies on the bundled digits images)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hsconas.cli.main import main
from hsconas.space import get_space

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DIGITS = ["--data", "digits", "--proxy-batch-size", "32"]


def _one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str], match: str) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("hsconas: error:"), err
    assert match in err, err


@pytest.fixture(scope="module")
def digits_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """18 hsconas-digits networks with a made-up accuracy and a made-up supernet column."""
    space = get_space("hsconas-digits")
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("cli_inputs") / "t.csv"
    lines = ["arch,acc,sn"]
    for a in space.sample_many(18, 0, unique=True):
        acc = 90 + rng.normal()
        # the canonical string holds a comma (the unit widths): quoted
        lines.append(f'"{space.to_string(a)}",{acc:.3f},{acc - 4 + rng.normal(0, 0.3):.3f}')
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def proxy_model(digits_table: Path) -> tuple[Path, Path]:
    out, store = digits_table.parent / "m.json", digits_table.parent / "p.db"
    argv = ["accuracy", "fit", "--space", "hsconas-digits", "--table", str(digits_table)]
    argv += ["--column", "acc", "--models", "ridge", "--folds", "3", "--proxies", "params,jacov"]
    assert main([*argv, *DIGITS, "--store", str(store), "--out", str(out)]) == 0
    return out, store


def test_fit_records_and_predict_computes_the_proxies(
    proxy_model: tuple[Path, Path], digits_table: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, store = proxy_model
    doc = json.loads(model.read_text())
    assert doc["features"]["inputs"]["proxies"] == ["params", "jacov"]
    assert doc["features"]["inputs"]["proxy_settings"]["batch_size"] == 32
    arch = str(get_space("hsconas-digits").sample(99))
    capsys.readouterr()
    argv = ["accuracy", "predict", str(model), arch, "--data", "digits", "--store", str(store)]
    assert main([*argv, "--json"]) == 0
    (line,) = [json.loads(s) for s in capsys.readouterr().out.splitlines()]
    assert set(line) == {"arch", "accuracy", "sd"} and line["sd"] > 0
    assert 80 < line["accuracy"] < 100


def test_missing_or_wrong_inputs_one_line(
    proxy_model: tuple[Path, Path], digits_table: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, _ = proxy_model
    arch = str(get_space("hsconas-digits").sample(5))
    predict = ["accuracy", "predict", str(model), arch]
    _one_line_exit_2(predict, capsys, "needs zero-cost proxies params, jacov")
    _one_line_exit_2([*predict, "--data", "cifar10:x.tar.gz"], capsys, "computed on digits")
    fit = ["accuracy", "fit", "--space", "hsconas-digits", "--table", str(digits_table)]
    fit += ["--column", "acc", "--folds", "3"]
    _one_line_exit_2([*fit, "--proxies", "zen", *DIGITS], capsys, "'zen' is not a zero-cost")
    _one_line_exit_2([*fit, "--proxies", "jacov"], capsys, "--proxies needs --data")
    _one_line_exit_2([*fit, "--data", "digits"], capsys, "--data is only used with")
    _one_line_exit_2(
        [*fit, "--supernet-column", "sn", "--supernet", "x.pt", "--data", "digits"],
        capsys,
        "not both",
    )


def test_supernet_column_model_needs_a_supernet_in_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = get_space("nb201")
    table = tmp_path / "nb.csv"
    rows = [f"{space.to_string(a)},{90 + i % 5},{85 + i % 5}" for i, a in enumerate(
        space.sample_many(12, 0, unique=True))]  # fmt: skip
    table.write_text("arch,acc,sn\n" + "\n".join(rows) + "\n")
    fit = ["accuracy", "fit", "--space", "nb201", "--table", str(table), "--column", "acc"]
    fit += ["--models", "ridge", "--folds", "3"]
    with_sn, plain = tmp_path / "sn.json", tmp_path / "plain.json"
    assert main([*fit, "--supernet-column", "sn", "--out", str(with_sn)]) == 0
    assert main([*fit, "--out", str(plain)]) == 0
    assert json.loads(with_sn.read_text())["features"]["inputs"]["supernet"] is True
    search = ["search", "--space", "nb201", "--device", "pixel3", "--queries", "4"]
    _one_line_exit_2(
        [*search, "--accuracy-model", str(with_sn)], capsys, "needs a supernet's accuracy"
    )
    _one_line_exit_2(
        [*search, "--accuracy-model", str(plain), "--data", "digits"],
        capsys,
        "has no proxy or supernet inputs",
    )
    arch = str(space.sample(3))
    _one_line_exit_2(["accuracy", "predict", str(with_sn), arch], capsys, "--supernet CKPT")


def test_supernet_input_through_fit_predict_and_search(
    digits_table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 1-epoch hsconas-digits supernet evaluated as an input: at fitting time on the table's
    networks, then for new ones by ``accuracy predict`` and inside ``search``."""
    import torch

    from hsconas.hardware.measure import measure_network
    from hsconas.hardware.timing import TimingConfig
    from hsconas.latency.model_io import save_model
    from hsconas.latency.predictors import make_predictor

    threads = torch.get_num_threads()
    rc = main(
        ["supernet", "train", "hsconas-digits", "--data", "digits", "--subset", "300",
         "--val-fraction", "0.3", "--epochs", "1", "--batch-size", "64", "--out",
         str(tmp_path / "sn"), "--store", str(tmp_path / "train.db"), "--no-progress", "--json",
         "--threads", "1"]
    )  # fmt: skip
    torch.set_num_threads(threads)
    assert rc == 0
    sn = ["--supernet", str(tmp_path / "sn"), "--data", "digits", "--calib-images", "64"]
    model = tmp_path / "m.json"
    fit = ["accuracy", "fit", "--space", "hsconas-digits", "--table", str(digits_table)]
    fit += ["--column", "acc", "--models", "ridge", "--folds", "3", *sn, "--out", str(model)]
    assert main(fit) == 0
    assert json.loads(model.read_text())["features"]["inputs"]["supernet"] is True
    space = get_space("hsconas-digits")
    arch = space.to_string(space.sample(77))
    capsys.readouterr()
    assert main(["accuracy", "predict", str(model), arch, *sn, "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)["accuracy"]
    # search: the model's accuracy of each network, its supernet input evaluated on the way
    archs = [space.sample(np.random.default_rng(i)) for i in range(6)]
    fast = TimingConfig(max_time_s=0.01, warmup_runs=1, warmup_time_s=0.0, min_runs=5)
    lat = make_predictor("linear")
    lat.fit(archs, np.asarray([measure_network(a, "torch", timing=fast).median_ms for a in archs]))
    save_model(lat, tmp_path / "cpu.json", space="hsconas-digits", device="cpu-test")
    search = ["search", "--space", "hsconas-digits", "--accuracy-model", str(model), *sn]
    search += ["--latency-model", str(tmp_path / "cpu.json"), "--algorithm", "random"]
    assert main([*search, "--queries", "3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["evaluator"]["accuracy"]["inputs"]["inputs"] == ["supernet"]
    assert all(np.isfinite(r["accuracy"]) for r in doc["front"])
    assert 80 < predicted < 100
