"""``hsconas latency measure | profile | eval`` in-process: real measurements, user errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hsconas.cli.main import main
from hsconas.hardware.measure import measure_network
from hsconas.hardware.timing import TimingConfig
from hsconas.latency.hsconas.lut import LookupTable, decompose, measure_blocks, meta_build
from hsconas.latency.hsconas.model import HSCoNASModel
from hsconas.latency.hsconas.profile import sample_archs
from hsconas.space import Architecture, get_space

_FAST = TimingConfig(max_time_s=0.01, warmup_runs=1, warmup_time_s=0.0, min_runs=5)


def _arch_source(seed: int = 0) -> str:
    a = sample_archs("ofa-mbv3", 1, resolution=128, seed=seed)[0]
    return f"ofa-mbv3:{get_space('ofa-mbv3').to_string(a)}"


def test_measure_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        ["latency", "measure", _arch_source(), "--backend", "torch", "--max-time", "0.1", "--json"]
    )
    assert rc == 0
    doc = json.loads(capsys.readouterr().out.strip())
    assert doc["median_ms"] > 0 and doc["backend"] == "torch" and doc["threads"] == 1
    assert isinstance(doc["stable"], bool)


@pytest.mark.parametrize("command", ["measure", "profile"])
def test_unknown_backend_exits_2_and_lists_backends(
    command: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = _arch_source() if command == "measure" else "ofa-mbv3"
    extra = ["--out", str(tmp_path / "m.json")] if command == "profile" else []
    rc = main(["latency", command, target, "--backend", "tpu", *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert "unknown backend 'tpu'" in err and "cuda, onnxruntime, openvino, torch" in err
    assert "remote:http(s)://HOST:PORT" in err


def _lut_for_eval(backend: Any) -> tuple[list[Architecture], LookupTable, list[float]]:
    """3 training networks, their latencies, and a LUT that also covers the 2 held-out networks
    of `eval --n 2 --seed 5`, measured on ``backend``."""
    held_out = sample_archs("ofa-mbv3", 2, resolution=128, seed=5)
    train = sample_archs("ofa-mbv3", 3, resolution=128, seed=6)
    blocks = {}
    for a in held_out + train:
        for c in decompose(meta_build(a), (3, 128, 128)):
            blocks.setdefault(c.key, c)
    lut = measure_blocks(blocks, backend, space="ofa-mbv3", resolution=128, timing=_FAST)
    return train, lut, [measure_network(a, backend, timing=_FAST).median_ms for a in train]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model whose LUT covers the 2 held-out networks `eval --n 2 --seed 5` samples."""
    train, lut, lat = _lut_for_eval("torch")
    from hsconas.hardware.fingerprint import fingerprint

    model = HSCoNASModel.fit(lut, train, lat, info={"fingerprint": fingerprint("torch")})
    return model.save(tmp_path_factory.mktemp("m") / "model.json")


def test_eval_reports_metrics_and_plots(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "eval.png"
    rc = main(
        ["latency", "eval", str(model_file), "--n", "2", "--seed", "5", "--max-time", "0.1",
         "--plot", str(plot), "--json"]
    )  # fmt: skip
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n"] == 2 and set(doc["metrics"]) == {"HSCoNAS", "LUT sum"}
    assert doc["metrics"]["LUT sum"]["rmse_ms"] > 0
    assert plot.stat().st_size > 1000


def test_eval_with_another_device_is_a_clear_error(
    model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["latency", "eval", str(model_file), "--device", "pixel1", "--n", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "profiled for device 'local-cpu', not 'pixel1'" in err


def test_measure_against_the_reference_network_stores_its_calibration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hsconas.store import ResultStore

    db = tmp_path / "lat.db"
    rc = main(
        ["latency", "measure", _arch_source(), "--reference", "--max-time", "0.1",
         "--store", str(db), "--json"]
    )  # fmt: skip
    assert rc == 0
    doc = json.loads(capsys.readouterr().out.strip())
    assert doc["reference"] is True and doc["median_ms"] > 0
    store = ResultStore(db)
    (cal,) = store.measurements(kind="reference")
    assert cal.key.startswith("ofa-mbv3:") and cal.key.endswith("@3x128x128")
    (net,) = store.measurements(kind="network")
    assert net.settings["reference"] == cal.key
    assert net.extra["reference_base_ms"] == cal.median_ms


def test_eval_measures_against_the_models_reference_with_its_base(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hsconas.hardware.backends import get_backend
    from hsconas.hardware.fingerprint import fingerprint
    from hsconas.hardware.reference import space_reference
    from hsconas.latency.base import IncompatibleModelError
    from hsconas.latency.hsconas.profile import model_reference
    from hsconas.store import ResultStore

    ref = space_reference("ofa-mbv3", 128)
    train, lut, lat = _lut_for_eval(get_backend("torch", threads=1, reference=ref))
    assert lut.settings["reference"] == ref.key and ref.base_ms is not None  # calibrated on use
    info = {"fingerprint": fingerprint("torch"), "reference": {"key": ref.key, "base_ms": 7.5}}
    model = HSCoNASModel.fit(lut, train, lat, info=info)
    path = model.save(tmp_path / "model.json")
    # the model's base, not a new calibration, defines its milliseconds
    assert model_reference(HSCoNASModel.load(path)).base_ms == 7.5
    db = tmp_path / "eval.db"
    rc = main(
        ["latency", "eval", str(path), "--n", "2", "--seed", "5", "--max-time", "0.1",
         "--store", str(db), "--json"]
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    nets = ResultStore(db).measurements(kind="network")
    assert len(nets) == 2
    for net in nets:
        assert net.settings["reference"] == ref.key and net.extra["reference_base_ms"] == 7.5
    model.lut.settings["reference"] = "ofa-mbv3:some-other-network@3x128x128"
    with pytest.raises(IncompatibleModelError, match="cannot rebuild"):
        model_reference(model)


def test_predict_accepts_a_hardware_model_from_profile(
    model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arch = sample_archs("ofa-mbv3", 1, resolution=128, seed=5)[0]
    src = f"ofa-mbv3:{get_space('ofa-mbv3').to_string(arch)}"
    rc = main(["latency", "predict", str(model_file), src, "--json"])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads(capsys.readouterr().out.strip())
    expected = HSCoNASModel.load(model_file).predict(arch)
    assert doc["latency_ms"] == pytest.approx(expected.latency_ms)
    assert doc["std_ms"] == pytest.approx(expected.std_ms) and doc["device"] == "local-cpu"
    nb201 = "nb201:|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"
    rc = main(["latency", "predict", str(model_file), nb201])
    assert rc == 2 and "space 'ofa-mbv3'" in capsys.readouterr().err
