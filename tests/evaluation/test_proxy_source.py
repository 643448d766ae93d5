"""Zero-cost estimates as a search's accuracy source, and ``search --accuracy proxy:METHOD``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hsconas.cli.main import main
from hsconas.errors import HsconasError
from hsconas.evaluation.proxy import ProxyAccuracy, positions_against, proxy_accuracy_source
from hsconas.space import get_space

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_positions_interpolate_inside_and_extend_past_the_reference() -> None:
    ref = np.array([1.0, 2.0, 3.0, 4.0])
    got = positions_against(np.array([1.0, 2.5, 4.0, 5.0, 0.0, np.nan, -np.inf]), ref)
    assert got[:3] == pytest.approx([0.125, 0.5, 0.875])
    assert got[3] > got[2] and got[4] < got[0]  # past the ends: still ranked
    assert np.isnan(got[5])
    assert got[6] < got[4]  # -inf (a zero on a log scale) is below everything
    # an outlier (a dead network's sentinel) stays within half a reference step of the ends
    far = positions_against(np.array([-1e9, 1e9]), ref)
    assert far == pytest.approx([0.0, 1.0], abs=1e-9)
    assert 0.0 <= got[4] < got[0] and got[2] < got[3] <= 1.0
    # ties in the reference take their mid-rank position
    assert positions_against(np.array([2.0]), np.array([1.0, 2.0, 2.0, 3.0])) == pytest.approx(
        [0.5]
    )


def test_positions_are_monotone() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=30)
    xs = np.sort(rng.normal(scale=2.0, size=200))
    assert np.all(np.diff(positions_against(xs, ref)) >= 0)


def test_source_scores_do_not_depend_on_what_was_asked_before(tmp_path: Path) -> None:
    space = get_space("hsconas-digits")
    archs = space.sample_many(4, 5, unique=True)
    kw = {"reference": 6}
    a = ProxyAccuracy(space, "params", "digits", **kw)
    b = ProxyAccuracy(space, "params", "digits", **kw)
    one_by_one = [a.accuracy(x) for x in archs]
    together = b.evaluate(archs[::-1])[::-1]
    assert one_by_one == pytest.approx(list(together))
    # a bigger network scores higher on params
    params = b.scorer.values(archs, "params")
    assert np.argsort(params).tolist() == np.argsort(one_by_one).tolist()
    assert a.name == "proxy:params" and a.settings["reference"] == 6


def test_proxy_source_spec_errors() -> None:
    space = get_space("hsconas-digits")
    with pytest.raises(HsconasError, match="proxy:METHOD"):
        proxy_accuracy_source("naswot", space=space, data="digits")
    with pytest.raises(HsconasError, match="--data"):
        proxy_accuracy_source("proxy:naswot", space=space, data=None)
    with pytest.raises(HsconasError, match="choose one of"):
        proxy_accuracy_source("proxy:zen", space=space, data="digits")
    with pytest.raises(HsconasError, match="supernet"):
        proxy_accuracy_source("proxy:supernet", space=space, data="digits")


@pytest.fixture(scope="module")
def digits_latency_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A linear latency predictor of 8 hsconas-digits networks timed on this CPU."""
    from hsconas.hardware.measure import measure_network
    from hsconas.hardware.timing import TimingConfig
    from hsconas.latency.model_io import save_model
    from hsconas.latency.predictors import make_predictor

    space = get_space("hsconas-digits")
    archs = [space.sample(np.random.default_rng(i)) for i in range(8)]
    fast = TimingConfig(max_time_s=0.01, warmup_runs=1, warmup_time_s=0.0, min_runs=5)
    lat = [measure_network(a, "torch", timing=fast).median_ms for a in archs]
    model = make_predictor("linear")
    model.fit(archs, np.asarray(lat))
    path = tmp_path_factory.mktemp("lat") / "cpu.json"
    save_model(model, path, space="hsconas-digits", device="cpu-test")
    return path


def test_search_with_a_proxy_accuracy(
    digits_latency_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["search", "--space", "hsconas-digits", "--accuracy", "proxy:params", "--data",
            "digits", "--latency-model", str(digits_latency_model), "--queries", "12",
            "--seed", "0", "--store", str(tmp_path / "s.db"), "--json"]  # fmt: skip
    capsys.readouterr()
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    text = json.dumps(doc)
    assert "proxy:params" in text
    # the front's accuracies are the proxy source's scores of those architectures
    space = get_space("hsconas-digits")
    source = ProxyAccuracy(space, "params", "digits")
    front = doc["front"]
    assert front
    for point in front:
        arch = space.from_string(point["arch"])
        assert point["accuracy"] == pytest.approx(source.accuracy(arch))


def test_search_proxy_needs_data(
    digits_latency_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    argv = ["search", "--space", "hsconas-digits", "--accuracy", "proxy:naswot",
            "--latency-model", str(digits_latency_model), "--queries", "5"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hsconas: error: ") and "--data" in err and "\n" not in err
