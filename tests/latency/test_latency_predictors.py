"""Latency metrics, predictors and model files, on real recorded NB201 latencies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hsconas.spaces  # noqa: F401
from hsconas.cli.main import main
from hsconas.data.tables import load_latency_table
from hsconas.errors import HsconasError
from hsconas.latency import (
    GBDTPredictor,
    LinearPredictor,
    ModelFileError,
    evaluate,
    load_model,
    make_predictor,
    predictor_from_dict,
    save_model,
)
from hsconas.latency.predictors import as_features
from hsconas.space import get_space

DEVICE = "1080ti_32"


# ------------------------------------------------------------------ metrics
def test_metrics_match_scipy_and_hand_values() -> None:
    true = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 5.0])
    pred = np.array([1.04, 2.3, 2.9, 4.1, 4.0, 5.6])
    m = evaluate(pred, true)
    rel = np.abs(pred - true) / true  # .04 .15 .033 .025 .2 .12
    assert m.rmse_ms == pytest.approx(np.sqrt(np.mean((pred - true) ** 2)))
    assert m.mape_pct == pytest.approx(100 * rel.mean())
    assert m.within_5pct == pytest.approx(3 / 6)
    assert m.within_10pct == pytest.approx(3 / 6)
    assert m.spearman == pytest.approx(stats.spearmanr(pred, true).statistic)
    assert m.kendall == pytest.approx(stats.kendalltau(pred, true).statistic)
    assert m.n == 6
    assert set(m.as_dict()) == {
        "rmse_ms",
        "mape_pct",
        "within_5pct",
        "within_10pct",
        "kendall",
        "spearman",
        "n",
    }
    perfect = evaluate(true, true)
    assert perfect.spearman == pytest.approx(1.0) and perfect.rmse_ms == 0.0
    with pytest.raises(ValueError):
        evaluate([1.0, 2.0], [1.0, 0.0])


# ------------------------------------------------------------------ data
@pytest.fixture(scope="module")
def nb201(data_dir: Path) -> dict[str, np.ndarray]:
    """Features and one device's latency, split by isomorphism class (unique_str)."""
    table = load_latency_table(data_dir / "nb201" / "latency_help.csv.gz", devices=[DEVICE])
    acc = pd.read_csv(data_dir / "nb201" / "accuracy.csv", usecols=["arch_str", "unique_str"])
    group = dict(zip(acc["arch_str"], acc["unique_str"], strict=True))
    X = as_features(list(table.archs))
    y = table.column(DEVICE)
    rng = np.random.default_rng(0)
    order = rng.permutation(np.flatnonzero(y > 0.05))
    seen: set[str] = set()
    train: list[int] = []
    for r in order:
        g = group[table.arch_strings[r]]
        if g not in seen:
            seen.add(g)
            train.append(int(r))
        if len(train) == 200:
            break
    test = [int(r) for r in order if group[table.arch_strings[r]] not in seen][:1500]
    return {"X": X, "y": y, "train": np.array(train), "test": np.array(test), "table": table}  # type: ignore[dict-item]


@pytest.fixture(scope="module")
def fitted(nb201: dict[str, np.ndarray]) -> dict[str, object]:
    X, y, tr = nb201["X"], nb201["y"], nb201["train"]
    opts: dict[str, dict[str, int]] = {"linear": {}, "gbdt": {}, "gp": {"max_opt_rows": 100}}
    return {k: make_predictor(k, **o).fit(X[tr], y[tr]) for k, o in opts.items()}


# Measured on this split: linear 0.97, gbdt 0.94, gp 0.97 (bench/latency_recorded.py, n=100..1000).
@pytest.mark.parametrize(("kind", "min_rho"), [("linear", 0.93), ("gbdt", 0.9), ("gp", 0.93)])
def test_predictor_ranks_held_out_nb201_latency(
    nb201: dict[str, np.ndarray], fitted: dict[str, object], kind: str, min_rho: float
) -> None:
    X, y, te = nb201["X"], nb201["y"], nb201["test"]
    model = fitted[kind]
    pred = model.predict(X[te])  # type: ignore[attr-defined]
    m = evaluate(pred, y[te])
    assert m.spearman > min_rho, m
    assert m.mape_pct < 15, m


@pytest.mark.parametrize("kind", ["linear", "gbdt", "gp"])
def test_uncertainty_positive(
    nb201: dict[str, np.ndarray], fitted: dict[str, object], kind: str
) -> None:
    X, te = nb201["X"], nb201["test"]
    mean, std = fitted[kind].predict_with_uncertainty(X[te])  # type: ignore[attr-defined]
    assert np.all(std > 0) and np.all(np.isfinite(std))
    assert np.all(mean > 0)


@pytest.mark.parametrize("kind", ["linear", "gp"])
def test_uncertainty_larger_off_distribution(nb201: dict[str, np.ndarray], kind: str) -> None:
    """Train without any nor_conv_3x3 on edge 1; cells using it get a larger relative std."""
    X, y = nb201["X"], nb201["y"]
    col = get_space("nb201").feature_names.index("edge1<-0=nor_conv_3x3")
    rows = np.flatnonzero(y > 0.05)
    inside = rows[X[rows, col] == 0]
    outside = rows[X[rows, col] == 1]
    tr = inside[:200]
    model = make_predictor(kind).fit(X[tr], y[tr])
    m_in, s_in = model.predict_with_uncertainty(X[inside[200:1200]])
    m_out, s_out = model.predict_with_uncertainty(X[outside[:1000]])
    assert np.median(s_out / m_out) > 1.3 * np.median(s_in / m_in)


def test_linear_and_gbdt_match_sklearn(nb201: dict[str, np.ndarray]) -> None:
    """The numpy prediction over dumped parameters reproduces scikit-learn's own prediction."""
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import BayesianRidge

    X, y, tr, te = nb201["X"], nb201["y"], nb201["train"], nb201["test"]
    ly = np.log(y[tr])
    lin = LinearPredictor().fit(X[tr], y[tr])
    ref = BayesianRidge().fit(X[tr], ly).predict(X[te])
    np.testing.assert_allclose(np.log(lin.predict(X[te])), ref, rtol=0, atol=1e-9)
    g = GBDTPredictor(n_members=1, n_estimators=50, seed=3).fit(X[tr], y[tr])
    sk = GradientBoostingRegressor(
        n_estimators=50,
        learning_rate=0.08,
        max_depth=4,
        subsample=0.7,
        min_samples_leaf=3,
        random_state=3,
    ).fit(X[tr], ly)
    np.testing.assert_allclose(np.log(g.predict(X[te])), sk.predict(X[te]), rtol=0, atol=1e-9)


# ------------------------------------------------------------------ model files
@pytest.mark.parametrize("kind", ["linear", "gbdt", "gp"])
def test_save_load_round_trip_identical(
    nb201: dict[str, np.ndarray], fitted: dict[str, object], kind: str, tmp_path: Path
) -> None:
    table = nb201["table"]
    te = nb201["test"][:300]
    archs = [table.archs[i] for i in te]  # type: ignore[attr-defined]
    model = fitted[kind]
    path = save_model(model, tmp_path / "m.json", space="nb201", device=DEVICE, meta={"rows": 200})  # type: ignore[arg-type]
    doc = json.loads(path.read_text())
    assert doc["format_version"] == 1 and doc["space"] == "nb201" and doc["device"] == DEVICE
    loaded = load_model(path)
    assert loaded.meta == {"rows": 200}
    m1, s1 = model.predict_with_uncertainty(archs)  # type: ignore[attr-defined]
    m2, s2 = loaded.predict_with_uncertainty(archs)
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_allclose(s1, s2, rtol=1e-12)
    again = predictor_from_dict(json.loads(json.dumps(model.to_dict())))  # type: ignore[attr-defined]
    np.testing.assert_array_equal(again.predict(archs), m1)


def test_model_space_and_device_mismatch(fitted: dict[str, object], tmp_path: Path) -> None:
    path = save_model(fitted["linear"], tmp_path / "m.json", space="nb201", device=DEVICE)  # type: ignore[arg-type]
    with pytest.raises(ModelFileError, match=r"'nb201'.*'fbnet'"):
        load_model(path, space="fbnet")
    with pytest.raises(ModelFileError, match=r"'1080ti_32'.*'pixel3'"):
        load_model(path, device="pixel3")
    fb = get_space("fbnet").sample(np.random.default_rng(0))
    with pytest.raises(ModelFileError, match="fbnet"):
        load_model(path).predict([fb])
    with pytest.raises(ModelFileError, match="space 'fbnet' has"):
        save_model(fitted["linear"], tmp_path / "x.json", space="fbnet", device=DEVICE)  # type: ignore[arg-type]
    doc = json.loads(path.read_text())
    doc["format_version"] = 99
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match="version 99"):
        load_model(path)
    doc["format_version"] = 1
    doc["feature_names"] = doc["feature_names"][:-1]
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match="do not match"):
        load_model(path)
    assert issubclass(ModelFileError, HsconasError)


def test_cli_fit_table_then_predict(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = str(tmp_path / "nb201_part.csv")  # a recorded subset keeps the CLI test fast
    pd.read_csv(data_dir / "nb201" / "latency_help.csv.gz", nrows=3000).to_csv(table, index=False)
    out = tmp_path / "m.json"
    argv = ["latency", "fit-table", "--table", table, "--device", DEVICE, "--model", "linear"]
    assert main([*argv, "--train", "300", "--seed", "1", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["spearman"] > 0.9 and summary["train"] == 300 and out.is_file()
    recorded = load_latency_table(table, devices=[DEVICE])
    arch = recorded.arch_strings[1]
    assert main(["latency", "predict", str(out), f"nb201:{arch}", "--json"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    true = recorded.lookup(get_space("nb201").from_string(arch), DEVICE)
    assert row["device"] == DEVICE and abs(row["latency_ms"] / true - 1) < 0.2
    assert main(["latency", "predict", str(out), "fbnet:" + " ".join(["skip"] * 22)]) == 2
    assert "space 'nb201'" in capsys.readouterr().err
    assert main([*argv[:-2], "--device", "nope", "--out", str(out)]) == 2
    assert "columns are:" in capsys.readouterr().err
