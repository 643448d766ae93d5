"""The table accuracy predictor: beats MACs alone on real OFA-MBv3 ImageNet data, and its JSON file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hsconas.accuracy.accuracy_table import read_accuracy_table
from hsconas.accuracy.predictor import (
    AccuracyModelError,
    IncompatibleAccuracyModelError,
    cross_validate,
    fit_accuracy_model,
    load_accuracy_model,
)
from hsconas.errors import DataFormatError, InvalidArchitectureError
from hsconas.space import get_space


@pytest.fixture(scope="module")
def ofa_table(data_dir: Path) -> tuple[list, np.ndarray]:
    space = get_space("ofa-mbv3")
    return read_accuracy_table(data_dir / "ofa_mbv3" / "imagenet_accuracy_dynast.csv", space)


@pytest.fixture(scope="module")
def ridge_model(ofa_table, tmp_path_factory):
    archs, acc = ofa_table
    model, rows = fit_accuracy_model(get_space("ofa-mbv3"), archs, acc, kinds=["ridge"], folds=5)
    path = model.save(tmp_path_factory.mktemp("acc") / "ofa.json")
    return model, rows, path


def test_table_rows(ofa_table) -> None:
    archs, acc = ofa_table
    assert len(archs) == 1458 and len({str(a) for a in archs}) == 1336
    assert 71.0 < acc.min() < acc.max() < 77.5


def test_ridge_beats_macs_in_grouped_cv(ridge_model) -> None:
    model, rows, _ = ridge_model
    by = {r.kind: r for r in rows}
    assert model.kind == "ridge"
    assert by["ridge"].kendall > by["macs"].kendall + 0.05
    assert by["ridge"].rmse < 0.5 * by["macs"].rmse
    assert by["ridge"].folds_beating_macs == 5


def test_grouped_folds_keep_duplicates_together(ofa_table) -> None:
    """A network measured twice (about 0.02 points apart) on both sides would flatter the model:
    the folds put every copy in the same fold, so its out-of-fold prediction never saw it."""
    archs, acc = ofa_table
    space = get_space("ofa-mbv3")
    groups = [space.to_string(a) for a in archs]
    from hsconas.accuracy.predictor import AccuracyFeatures, _group_folds

    fold = _group_folds(groups, 10, 0)
    seen: dict[str, int] = {}
    for g, f in zip(groups, fold, strict=True):
        assert seen.setdefault(g, int(f)) == int(f)
    X = AccuracyFeatures(space).transform(archs[:300])
    rows, oof = cross_validate(X, acc[:300], groups[:300], kinds=["ridge"], folds=3)
    assert [r.kind for r in rows] == ["macs", "ridge"] and oof["ridge"].shape == (300,)


def test_round_trip_and_sd(ridge_model, ofa_table) -> None:
    model, _, path = ridge_model
    archs, acc = ofa_table
    loaded = load_accuracy_model(path, space="ofa-mbv3")
    m1, s1 = model.predict(archs[:20])
    m2, s2 = loaded.predict(archs[:20])
    np.testing.assert_allclose(m1, m2)
    np.testing.assert_allclose(s1, s2)
    assert np.all(s1 >= model.cv_rmse) and np.all(np.abs(m1 - acc[:20]) < 1.0)
    doc = json.loads(path.read_text())
    assert doc["format"] == "hsconas-accuracy-model" and doc["format_version"] == 1
    assert doc["features"]["names"][-2:] == ["log_macs_m", "log_params_m"]
    assert {r["kind"] for r in doc["cv"]} == {"macs", "ridge"}
    assert loaded.covered == {"resolution": [224]}  # the table was measured at 224 px only


def test_gbdt_round_trip(ofa_table, tmp_path: Path) -> None:
    archs, acc = ofa_table
    model, _ = fit_accuracy_model(
        get_space("ofa-mbv3"), archs[:200], acc[:200], kinds=["gbdt"], folds=2
    )
    loaded = load_accuracy_model(model.save(tmp_path / "g.json"))
    np.testing.assert_allclose(model.predict(archs[:5])[0], loaded.predict(archs[:5])[0])


def test_bad_files(ridge_model, tmp_path: Path) -> None:
    _, _, path = ridge_model
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(AccuracyModelError, match="not a JSON"):
        load_accuracy_model(bad)
    doc = json.loads(path.read_text())
    doc["components"]["ridge"]["coefs"] = [[1.0, 2.0]]
    bad.write_text(json.dumps(doc))
    with pytest.raises(AccuracyModelError, match="malformed"):
        load_accuracy_model(bad)
    doc = json.loads(path.read_text())
    doc["format"] = "hsconas-latency-model"
    bad.write_text(json.dumps(doc))
    with pytest.raises(AccuracyModelError, match="not an hsconas accuracy model"):
        load_accuracy_model(bad)
    with pytest.raises(IncompatibleAccuracyModelError, match="not 'proxylessnas'"):
        load_accuracy_model(path, space="proxylessnas")
    doc = json.loads(path.read_text())
    doc["space"] = "ofa-mbv3-w1.2"
    bad.write_text(json.dumps(doc))
    with pytest.raises(IncompatibleAccuracyModelError, match="features"):
        load_accuracy_model(bad)


def test_other_space_arch_refused(ridge_model) -> None:
    model, _, _ = ridge_model
    with pytest.raises(IncompatibleAccuracyModelError, match="space 'ofa-mbv3'"):
        model.predict([get_space("proxylessnas").sample(0)])


def test_bad_tables(tmp_path: Path) -> None:
    space = get_space("ofa-mbv3")
    p = tmp_path / "t.csv"
    p.write_text("arch,acc\nr224|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3,75\n")
    with pytest.raises(DataFormatError, match="missing column"):
        read_accuracy_table(p, space)
    p.write_text("arch,top1\nr224|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3,high\n")
    with pytest.raises(DataFormatError, match="row 2"):
        read_accuracy_table(p, space)
    p.write_text("arch,top1\nr224|k9e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3,75\n")
    with pytest.raises(InvalidArchitectureError, match="row 2"):
        read_accuracy_table(p, space)
    archs, acc = read_accuracy_table(_ok_table(tmp_path), space)
    with pytest.raises(AccuracyModelError, match="folds"):
        fit_accuracy_model(space, archs, acc, kinds=["ridge"], folds=10)
    with pytest.raises(AccuracyModelError, match="unknown accuracy model"):
        fit_accuracy_model(space, archs, acc, kinds=["svm"])


def _ok_table(tmp_path: Path) -> Path:
    space = get_space("ofa-mbv3")
    p = tmp_path / "ok.csv"
    rows = [f"{space.to_string(space.sample(i))},{70 + i}" for i in range(4)]
    p.write_text("arch,top1\n" + "\n".join(rows) + "\n")
    return p
