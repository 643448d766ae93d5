"""Accuracy predictors with extra inputs: zero-cost proxy values (computed on the bundled digits
images) and a supernet's accuracy, their model file, and the refusal of a missing input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import kendalltau

from hsconas.accuracy.predictor import (
    SUPERNET_INPUT,
    AccuracyPredictor,
    IncompatibleAccuracyModelError,
    MissingInputError,
    fit_accuracy_model,
    load_accuracy_model,
)
from hsconas.accuracy.predictor_inputs import PredictorInputs, proxy_settings
from hsconas.accuracy.zero_cost import ProxyConfig, ZeroCostScorer
from hsconas.evaluation.predictor import PredictorAccuracy
from hsconas.space import get_space
from hsconas.store import ResultStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = ProxyConfig(data="digits", seed=0, batch_size=32, pool=300)


@pytest.fixture(scope="module")
def digits_cells(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """60 hsconas-digits networks, their real jacov values on digits images (cached in a store),
    and a synthetic accuracy that jacov explains: a network's jacov depends on its random
    initialisation and the images, which its genes alone cannot tell."""
    space = get_space("hsconas-digits")
    archs = space.sample_many(64, 0, unique=True)
    db = tmp_path_factory.mktemp("inputs") / "proxies.db"
    jacov = ZeroCostScorer(space, CONFIG, store=ResultStore(db)).values(archs, "jacov")
    z = (jacov - jacov.mean()) / jacov.std()
    noise = np.random.default_rng(0).normal(0.0, 0.2, len(archs))
    acc = 90.0 + 2.0 * z + noise
    return {"space": space, "archs": archs, "jacov": jacov, "acc": acc, "db": db}


def _fit(
    cells: dict[str, Any], rows: slice, *, with_proxy: bool, kinds: tuple[str, ...] = ("ridge",)
) -> AccuracyPredictor:
    archs, acc, jacov = cells["archs"][rows], cells["acc"][rows], cells["jacov"][rows]
    model, _ = fit_accuracy_model(
        cells["space"],
        archs,
        acc,
        kinds=kinds,
        folds=3,
        inputs={"jacov": jacov} if with_proxy else None,
        proxy_settings=proxy_settings(CONFIG) if with_proxy else None,
    )
    return model


def test_an_informative_proxy_beats_the_features_alone(digits_cells: dict[str, Any]) -> None:
    """Both fitted as ``accuracy fit`` does by default (ridge, trees and their mean compared by
    cross-validation); 129 one-hot features and 40 rows: the ridge alone shrinks the one
    informative column too hard, the trees find it."""
    train, test = slice(0, 40), slice(40, None)
    kinds = ("ridge", "gbdt", "ridge+gbdt")
    plain = _fit(digits_cells, train, with_proxy=False, kinds=kinds)
    proxied = _fit(digits_cells, train, with_proxy=True, kinds=kinds)
    held = digits_cells["archs"][test]
    truth = digits_cells["acc"][test]
    tau_plain = kendalltau(plain.accuracy(held), truth).statistic
    pred, sd = proxied.predict(held, {"jacov": digits_cells["jacov"][test]})
    tau_proxied = kendalltau(pred, truth).statistic
    assert tau_proxied > tau_plain + 0.2 and tau_proxied > 0.6
    assert np.all(sd > 0) and proxied.inputs == ("jacov",)


def test_model_file_round_trip_with_inputs(digits_cells: dict[str, Any], tmp_path: Path) -> None:
    model = _fit(digits_cells, slice(0, 40), with_proxy=True)
    path = model.save(tmp_path / "m.json")
    doc = json.loads(path.read_text())
    assert doc["format_version"] == 2
    spec = doc["features"]["inputs"]
    assert spec["proxies"] == ["jacov"] and spec["proxy_settings"]["dataset"] == "digits"
    assert "data" not in spec["proxy_settings"]  # the path of a user's images is not recorded
    assert len(spec["reference"]["jacov"]) == 40
    again = load_accuracy_model(path)
    held, values = digits_cells["archs"][40:], {"jacov": digits_cells["jacov"][40:]}
    for a, b in zip(model.predict(held, values), again.predict(held, values), strict=True):
        np.testing.assert_allclose(a, b)
    plain = _fit(digits_cells, slice(0, 40), with_proxy=False)
    assert json.loads(plain.save(tmp_path / "p.json").read_text())["format_version"] == 1


def test_a_missing_input_is_refused(digits_cells: dict[str, Any], tmp_path: Path) -> None:
    model = _fit(digits_cells, slice(0, 40), with_proxy=True)
    held = digits_cells["archs"][40:43]
    with pytest.raises(MissingInputError, match=r"jacov .* give --data SPEC"):
        model.predict(held)
    with pytest.raises(MissingInputError, match="--data"):
        PredictorInputs(model, data=None)
    with pytest.raises(MissingInputError):
        PredictorAccuracy(model)
    path = model.save(tmp_path / "m.json")
    with pytest.raises(MissingInputError):
        PredictorAccuracy.from_file(path)
    with pytest.raises(IncompatibleAccuracyModelError, match="computed on digits images"):
        PredictorInputs(model, data="cifar10:elsewhere.tar.gz")


def test_inputs_are_computed_once_and_read_back(digits_cells: dict[str, Any]) -> None:
    model = _fit(digits_cells, slice(0, 40), with_proxy=True)
    fresh = get_space("hsconas-digits").sample_many(70, 0, unique=True)[64:]
    store = ResultStore(digits_cells["db"])
    first = PredictorInputs(model, data="digits", store=store)
    values = first(fresh)
    assert first.n_computed == len(fresh)
    again = PredictorInputs(model, data="digits", store=ResultStore(digits_cells["db"]))
    np.testing.assert_array_equal(again(fresh)["jacov"], values["jacov"])
    assert again.n_computed == 0
    source = PredictorAccuracy(model, inputs=again)
    mean, sd = source.predict(fresh)
    np.testing.assert_allclose(mean, model.predict(fresh, values)[0])
    assert np.all(np.isfinite(mean)) and np.all(sd > 0)


def test_positions_bound_tails_and_fill_missing(digits_cells: dict[str, Any]) -> None:
    model = _fit(digits_cells, slice(0, 40), with_proxy=True)
    ref = model.features.reference["jacov"]
    pos = model.features.position("jacov", np.array([-1e9, min(ref), max(ref), 1e9, np.nan]))
    assert -0.02 < pos[0] < pos[1] < pos[2] < pos[3] < 1.02 and pos[4] == 0.5
    held = digits_cells["archs"][40:42]
    dead, _ = model.predict(held, {"jacov": [-1e9, np.nan]})
    assert np.all(np.isfinite(dead))
    lo, hi = digits_cells["acc"][:40].min(), digits_cells["acc"][:40].max()
    assert np.all((lo - 3 < dead) & (dead < hi + 3))  # a sentinel does not run away


def test_a_supernet_input_needs_a_supernet(digits_cells: dict[str, Any]) -> None:
    archs, acc = digits_cells["archs"][:30], digits_cells["acc"][:30]
    model, _ = fit_accuracy_model(
        digits_cells["space"], archs, acc, kinds=["ridge"], folds=3,
        inputs={SUPERNET_INPUT: acc - 5.0},
    )  # fmt: skip
    assert model.inputs == (SUPERNET_INPUT,) and "supernet_acc" in model.features.names
    with pytest.raises(MissingInputError, match="--supernet CKPT"):
        PredictorInputs(model, data="digits")

    class Column:  # the supernet's accuracy of each network, as a source gives it
        def evaluate(self, archs: list) -> np.ndarray:
            return np.array([acc[i] - 5.0 for i in range(len(archs))])

    values = PredictorInputs(model, supernet=Column())(archs[:4])
    np.testing.assert_allclose(values[SUPERNET_INPUT], acc[:4] - 5.0)
    assert np.all(np.isfinite(model.accuracy(archs[:4], values)))
