"""``hsconas search`` with a supernet and/or a latency model instead of tables.

A tiny ``hsconas-digits`` supernet is trained for one epoch on a digits subset, a linear latency
predictor is fitted on a handful of real end-to-end measurements, and the CLI runs in-process. Mixed
sources run on nb201: table accuracy with a predictor fitted on the recorded HELP latencies, and a
tiny nb201 supernet (CIFAR-10 subset) with a user's own latency file whose device column is renamed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hsconas.cli.main import main
from hsconas.space import get_space
from hsconas.store import ResultStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DIGITS = ["--data", "digits", "--calib-images", "64"]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    rc = main(argv)
    out = capsys.readouterr().out
    assert rc == 0, out
    doc = json.loads(out)
    assert isinstance(doc, dict)
    return doc


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("hsconas: error: ") and "\n" not in err, err
    return err


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 1-epoch hsconas-digits supernet and a linear predictor of 8 real measurements."""
    import torch

    import hsconas.spaces  # noqa: F401
    from hsconas.hardware.measure import measure_network
    from hsconas.hardware.timing import TimingConfig
    from hsconas.latency.model_io import save_model
    from hsconas.latency.predictors import make_predictor

    d = tmp_path_factory.mktemp("digits")
    threads = torch.get_num_threads()
    rc = main(
        ["supernet", "train", "hsconas-digits", "--data", "digits", "--subset", "300",
         "--val-fraction", "0.3", "--epochs", "1", "--batch-size", "64", "--out", str(d / "sn"),
         "--store", str(d / "train.db"), "--no-progress", "--json", "--threads", "1"]
    )  # fmt: skip
    torch.set_num_threads(threads)
    assert rc == 0
    space = get_space("hsconas-digits")
    archs = [space.sample(np.random.default_rng(i)) for i in range(8)]
    fast = TimingConfig(max_time_s=0.01, warmup_runs=1, warmup_time_s=0.0, min_runs=5)
    lat = [measure_network(a, "torch", timing=fast).median_ms for a in archs]
    model = make_predictor("linear")
    model.fit(archs, np.asarray(lat))
    save_model(model, d / "cpu.json", space="hsconas-digits", device="cpu-test")
    return {"dir": d, "supernet": d / "sn", "latency_model": d / "cpu.json"}


def _digits_args(run: dict[str, Path], *extra: str) -> list[str]:
    return [
        "search", "--space", "hsconas-digits", "--supernet", str(run["supernet"]), *DIGITS,
        "--latency-model", str(run["latency_model"]), "--seed", "0", "--json", *extra,
    ]  # fmt: skip


def _assert_front(front: list[dict[str, Any]], evaluated: list[dict[str, float]]) -> None:
    """Every front point is evaluated and no evaluated point dominates it; the front is sorted."""
    assert front
    keys = {(e["accuracy"], e["latency_ms"]) for e in evaluated}
    for p in front:
        assert (p["accuracy"], p["latency_ms"]) in keys
        for e in evaluated:
            dominated = (
                e["accuracy"] >= p["accuracy"]
                and e["latency_ms"] <= p["latency_ms"]
                and (e["accuracy"] > p["accuracy"] or e["latency_ms"] < p["latency_ms"])
            )
            assert not dominated, (p, e)
    lats = [p["latency_ms"] for p in front]
    accs = [p["accuracy"] for p in front]
    assert lats == sorted(lats) and accs == sorted(accs)


def test_supernet_and_latency_model_search_matches_direct_evaluation_and_resumes(
    digits_run: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from hsconas.accuracy import load_trained
    from hsconas.accuracy.evaluate import EvalBatches
    from hsconas.data import load_dataset
    from hsconas.evaluation import CombinedEvaluator, ModelLatency, SupernetAccuracy

    db = digits_run["dir"] / "search.db"
    full = _run(
        _digits_args(
            digits_run,
            "--queries",
            "14",
            "--store",
            str(db),
            "--run-id",
            "a",
            "--out",
            str(digits_run["dir"] / "out"),
        ),
        capsys,
    )
    assert full["n_queries"] == 14 and full["n_accuracy_evals"] == 14
    assert full["quality"] is None  # no known true front with a supernet
    assert full["device"] == "cpu-test" and full["evaluator"]["accuracy"]["kind"] == "supernet"
    out = digits_run["dir"] / "out"
    with open(out / "front.csv") as fh:
        assert len(fh.readlines()) == len(full["front"]) + 1
    assert (out / "front.png").is_file() and not (out / "hv.png").exists()  # no true front

    # every evaluation went to the store, all distinct architectures
    store = ResultStore(db)
    stored = store.evaluations("a")
    assert [e.seq for e in stored] == list(range(14))
    assert len({e.arch for e in stored}) == 14
    _assert_front(full["front"], [dict(e.values) for e in stored])

    # the numbers are those of the evaluator called directly (same split, same calibration)
    supernet, _ = load_trained(digits_run["supernet"])
    data = load_dataset("digits", subset=300, val_fraction=0.3, seed=0, progress=False)
    direct = CombinedEvaluator(
        SupernetAccuracy(supernet, EvalBatches.from_dataset(data, split="val", calib_images=64)),
        ModelLatency.from_file(digits_run["latency_model"]),
    )
    space = get_space("hsconas-digits")
    for e in stored[:6]:
        values = direct.evaluate(space.from_string(e.arch))
        assert values["accuracy"] == pytest.approx(e.values["accuracy"], abs=1e-9)
        assert values["latency_ms"] == pytest.approx(e.values["latency_ms"], rel=1e-12)

    # interrupted after 8 queries then resumed: the same run as the uninterrupted one
    part = _run(
        _digits_args(digits_run, "--queries", "8", "--store", str(db), "--run-id", "b"), capsys
    )
    assert part["n_queries"] == 8
    again = _run(
        _digits_args(
            digits_run, "--queries", "14", "--store", str(db), "--run-id", "b", "--resume"
        ),
        capsys,
    )
    assert again["n_replayed"] == 8 and again["n_accuracy_evals"] == 6
    assert again["front"] == full["front"]
    assert [e.arch for e in store.evaluations("b")] == [e.arch for e in stored]
    store.close()


def test_latency_model_mismatches_are_one_line_errors(
    digits_run: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sn, lm = str(digits_run["supernet"]), str(digits_run["latency_model"])
    base = ["search", "--queries", "3", "--json"]
    # checkpoint of another space than --space
    err = _error(
        [*base, "--space", "nb201", "--supernet", sn, *DIGITS, "--device", "pixel3"], capsys
    )
    assert "supernet of space 'hsconas-digits'" in err and "'nb201'" in err
    # latency model of another space
    err = _error([*base, "--space", "nb201", "--latency-model", lm], capsys)
    assert "space 'hsconas-digits'" in err and "'nb201'" in err
    # latency model of another device
    err = _error(
        [*base, "--space", "hsconas-digits", "--supernet", sn, *DIGITS, "--latency-model", lm,
         "--device", "pixel3"], capsys,
    )  # fmt: skip
    assert "'cpu-test'" in err and "'pixel3'" in err
    # --supernet without --data
    err = _error(
        [*base, "--space", "hsconas-digits", "--supernet", sn, "--latency-model", lm], capsys
    )
    assert "--data" in err
    # neither table nor supernet for accuracy on a space without tables
    err = _error([*base, "--space", "hsconas-digits", "--latency-model", lm], capsys)
    assert "no accuracy source" in err and "--supernet" in err
    # no latency source
    err = _error([*base, "--space", "hsconas-digits", "--supernet", sn, *DIGITS], capsys)
    assert "no latency source" in err
    # two sources for the same objective
    err = _error(
        [*base, "--supernet", sn, *DIGITS, "--accuracy-table", "acc.csv", "--device", "pixel3"],
        capsys,
    )
    assert "not both" in err
    # a missing model file
    err = _error([*base, "--latency-model", str(digits_run["dir"] / "nope.json")], capsys)
    assert "not found" in err
    # a file that is not a latency model
    (digits_run["dir"] / "bad.json").write_text('{"format": "something-else"}')
    err = _error([*base, "--latency-model", str(digits_run["dir"] / "bad.json")], capsys)
    assert "not a latency model file" in err


@pytest.fixture(scope="module")
def nb201_predictor(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A linear predictor of pixel3 latency fitted on 300 recorded HELP rows."""
    from hsconas.data.tables import load_latency_table
    from hsconas.latency.model_io import save_model
    from hsconas.latency.predictors import make_predictor

    table = load_latency_table(data_dir / "nb201" / "latency_help.csv.gz", space="nb201")
    rows = np.random.default_rng(0).choice(len(table.archs), 300, replace=False)
    model = make_predictor("linear")
    model.fit([table.archs[i] for i in rows], table.column("pixel3")[rows])
    path = tmp_path_factory.mktemp("nb201") / "pixel3.json"
    save_model(model, path, space="nb201", device="pixel3")
    return path


def test_table_accuracy_with_latency_model(
    nb201_predictor: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hsconas.data.tables import load_nb201_accuracy
    from hsconas.latency.model_io import load_model

    doc = _run(
        ["search", "--space", "nb201", "--latency-model", str(nb201_predictor), "--queries", "30",
         "--seed", "1", "--json", "--mode", "constraint", "--budget-ms", "40"], capsys,
    )  # fmt: skip
    assert doc["device"] == "pixel3" and doc["evaluator"]["latency"]["kind"] == "model"
    table = load_nb201_accuracy(data_dir / "nb201" / "accuracy.csv")
    model = load_model(nb201_predictor)
    space = get_space("nb201")
    for p in doc["front"]:
        arch = space.from_string(p["arch"])
        assert p["accuracy"] == table.lookup(arch, "cifar10")
        assert p["latency_ms"] == pytest.approx(float(model.predict([arch])[0]), rel=1e-12)
    best = doc["best"]
    assert best is not None and best["latency_ms"] <= 40
    assert best["accuracy"] == max(p["accuracy"] for p in doc["front"] if p["latency_ms"] <= 40)
    # the table output: no true-front quality line without two tables
    rc = main(
        ["search", "--latency-model", str(nb201_predictor), "--queries", "10", "--budget-ms", "40"]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "found front" in out and "best under 40.0 ms" in out
    assert "HV ratio" not in out and "regret" not in out


@pytest.fixture(scope="module")
def nb201_supernet(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A one-epoch nb201 supernet (4 channels, 1 cell per stage) on 160 CIFAR-10 images."""
    from hsconas.accuracy import TrainConfig, train
    from hsconas.accuracy.train import seeded
    from hsconas.data import load_dataset
    from hsconas.nn.supernet import build_supernet

    d = tmp_path_factory.mktemp("nb201sn")
    before = os.environ.get("HSCONAS_CACHE_DIR")
    os.environ["HSCONAS_CACHE_DIR"] = str(d / "cache")
    spec = f"cifar10:{data_dir / 'images' / 'cifar10_jpg.tar.gz'}"
    try:
        ds = load_dataset(spec, subset=160, val_fraction=0.25, seed=0, progress=False)
        with seeded(0):
            model = build_supernet("nb201", num_classes=10, channels=4, cells_per_stage=1)
        cfg = TrainConfig(epochs=1, batch_size=32, lr=0.05, seed=0, calib_images=32)
        extra = {"data": {"spec": spec, "subset": 160, "val_fraction": 0.25, "seed": 0}}
        train(model, ds, cfg, d / "sn", extra=extra, progress=False)
        yield d / "sn"
    finally:
        if before is None:
            os.environ.pop("HSCONAS_CACHE_DIR", None)
        else:
            os.environ["HSCONAS_CACHE_DIR"] = before


def test_supernet_with_a_users_latency_table(
    nb201_supernet: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hsconas.accuracy import load_trained
    from hsconas.accuracy.evaluate import EvalBatches
    from hsconas.data import load_dataset
    from hsconas.evaluation import SupernetAccuracy

    # the user's own recording: other device column names, arch_str rows
    help_df = pd.read_csv(data_dir / "nb201" / "latency_help.csv.gz")
    mine = pd.DataFrame(
        {"arch_str": help_df["arch_str"], "my_phone": 1.5 * help_df["pixel3"],
         "my_laptop": help_df["silver_4114"]}
    )  # fmt: skip
    mine.to_csv(tmp_path / "mine.csv", index=False)
    spec = f"cifar10:{data_dir / 'images' / 'cifar10_jpg.tar.gz'}"
    args = [
        "search", "--space", "nb201", "--supernet", str(nb201_supernet), "--data", spec,
        "--calib-images", "32", "--latency-table", str(tmp_path / "mine.csv"),
        "--device", "my_phone", "--queries", "8", "--seed", "0", "--json",
        "--store", str(tmp_path / "s.db"),
    ]  # fmt: skip
    doc = _run(args, capsys)
    assert doc["device"] == "my_phone" and doc["evaluator"]["latency"]["device"] == "my_phone"
    store = ResultStore(tmp_path / "s.db")
    stored = store.evaluations(str(doc["run_id"]))
    store.close()
    assert len({e.arch for e in stored}) == 8
    _assert_front(doc["front"], [dict(e.values) for e in stored])
    lat_of = dict(zip(mine["arch_str"], mine["my_phone"], strict=True))
    supernet, _ = load_trained(nb201_supernet)
    ds = load_dataset(spec, subset=160, val_fraction=0.25, seed=0, progress=False)
    acc = SupernetAccuracy(supernet, EvalBatches.from_dataset(ds, split="val", calib_images=32))
    space = get_space("nb201")
    for p in doc["front"]:
        assert p["latency_ms"] == pytest.approx(lat_of[p["arch"]], rel=1e-12)
        assert p["accuracy"] == pytest.approx(acc.accuracy(space.from_string(p["arch"])), abs=1e-9)
    # an unknown column names the file's columns
    err = _error([*args[:-2], "--device", "pixel3"], capsys)
    assert "my_phone" in err and "my_laptop" in err


def test_hardware_model_file_is_read_and_checked_against_space_and_device(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An HSCoNAS hardware model (LUT of real block timings + correction) is dispatched on its
    format and refused for another space or device with one line naming both."""
    from hsconas.evaluation import ModelLatency
    from hsconas.hardware.measure import measure_network
    from hsconas.hardware.timing import TimingConfig
    from hsconas.latency.hsconas.lut import decompose, measure_blocks, meta_build
    from hsconas.latency.hsconas.model import HSCoNASModel
    from hsconas.latency.hsconas.profile import sample_archs

    fast = TimingConfig(max_time_s=0.01, warmup_runs=1, warmup_time_s=0.0, min_runs=5)
    space = get_space("hsconas-digits")
    archs = sample_archs("hsconas-digits", 3, resolution=None, seed=0)
    blocks = {c.key: c for a in archs for c in decompose(meta_build(a), space.input_shape(a))}
    lut = measure_blocks(blocks, "torch", space="hsconas-digits", timing=fast)
    lat = [measure_network(a, "torch", timing=fast).median_ms for a in archs]
    path = HSCoNASModel.fit(lut, archs, lat).save(tmp_path / "hw.json")

    source = ModelLatency.from_file(path, space="hsconas-digits")
    model = HSCoNASModel.load(path)
    assert source.settings["format"] == "hsconas-hw-model"
    assert source.latency_ms(archs[0]) == pytest.approx(model.predict(archs[0]).latency_ms)
    err = _error(["search", "--space", "nb201", "--latency-model", str(path)], capsys)
    assert "HSCoNAS latency model of space 'hsconas-digits'" in err and "'nb201'" in err
    err = _error(
        ["search", "--space", "hsconas-digits", "--supernet", "x", "--data", "digits",
         "--latency-model", str(path), "--device", "pixel3"], capsys,
    )  # fmt: skip
    assert f"device {model.device!r}" in err and "'pixel3'" in err
