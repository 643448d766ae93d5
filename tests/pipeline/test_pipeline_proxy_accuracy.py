"""``search.accuracy: proxy:METHOD``: a pipeline whose search is steered by a zero-cost estimate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hsconas.accuracy.zero_cost import METHODS
from hsconas.pipeline.config import ConfigError, config_from_dict

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_search_accuracy_takes_the_ensemble_the_supernet_or_a_proxy() -> None:
    # the label-free ensemble (proxies + supernet) is the default: no accuracy table is needed
    assert config_from_dict({}).search.accuracy == "ensemble"
    assert config_from_dict({"search": {"accuracy": "ensemble"}}).search.accuracy == "ensemble"
    assert config_from_dict({"search": {"accuracy": "supernet"}}).search.accuracy == "supernet"
    for method in METHODS:
        if method == "supernet":
            continue
        doc = {"search": {"accuracy": f"proxy:{method}"}}
        assert config_from_dict(doc).search.accuracy == f"proxy:{method}"
    for bad in ("proxy:zen", "naswot", "table"):
        with pytest.raises(ConfigError) as info:
            config_from_dict({"search": {"accuracy": bad}})
        assert info.value.field == "search.accuracy"
        assert "proxy:METHOD" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.slow
def test_tiny_pipeline_searches_with_proxy_accuracy(tmp_path: Path) -> None:
    from test_pipeline_run import TINY

    from hsconas.cli.main import main
    from hsconas.evaluation.proxy import ProxyAccuracy
    from hsconas.space import get_space

    run = tmp_path / "run"
    text = TINY.format(run=run).replace("search: {", "search: {accuracy: 'proxy:params', ")
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(text, encoding="utf-8")
    assert main(["run", "--config", str(cfg), "--no-progress"]) == 0
    records = json.loads((run / "search" / "records.json").read_text())
    space = get_space("hsconas-digits")
    source = ProxyAccuracy(space, "params", "digits", seed=1)
    # the search's accuracies are the proxy source's scores, not supernet accuracies
    for r in records[:5]:
        assert r["accuracy"] == pytest.approx(source.accuracy(space.from_string(r["arch"])))
    final = json.loads((run / "final" / "result.json").read_text())
    assert 0.0 <= final["accuracy_test_inherited"] <= 100.0


@pytest.mark.slow
def test_tiny_pipeline_searches_with_the_ensemble_and_resumes_from_the_store(
    tmp_path: Path,
) -> None:
    from test_pipeline_run import TINY

    from hsconas.cli.main import main
    from hsconas.evaluation.proxy import _STORED_BACKEND, _STORED_KIND, positions_against
    from hsconas.space import get_space
    from hsconas.store import ResultStore

    run = tmp_path / "run"
    text = TINY.format(run=run)  # no search.accuracy: the default, the ensemble
    assert "accuracy" not in text.split("search:", 1)[1].split("\n", 1)[0]
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(text, encoding="utf-8")
    assert main(["run", "--config", str(cfg), "--no-progress"]) == 0
    result = json.loads((run / "search" / "result.json").read_text())
    est = result["estimator"]
    assert est["accuracy"] == "ensemble" and est["scale"] == "score"
    assert est["signals"] == ["jacov", "params", "supernet"] and est["reference"] == 64
    assert result["n_accuracy_evals"] > 0
    # the supernet's accuracy of every queried network, and of the 64 reference networks, is
    # in the run's store: the supernet signal entered each score
    space = get_space("hsconas-digits")
    store = ResultStore(run / "results.db")
    sup = {m.key: m.extra["value"] for m in store.measurements(kind=_STORED_KIND)}
    assert all(m.backend == _STORED_BACKEND for m in store.measurements(kind=_STORED_KIND))
    records = json.loads((run / "search" / "records.json").read_text())
    assert {r["arch"] for r in records} <= set(sup)
    ref = np.array(
        [sup[space.to_string(a)] for a in space.sample_many(64, 1, unique=True)], dtype=float
    )
    for r in records[:3]:
        assert 0.0 <= r["accuracy"] <= 100.0
        pos = positions_against(np.array([sup[r["arch"]]]), ref)[0]
        assert 0.0 <= pos <= 1.0
    report = (run / "report" / "report.html").read_text(encoding="utf-8")
    assert "the label-free ensemble of jacov, params, supernet" in report
    final = json.loads((run / "final" / "result.json").read_text())
    assert 0.0 <= final["accuracy_val_inherited"] <= 100.0  # still the supernet's, percent

    # a rerun of the search reads the proxies and the supernet's values back from the store
    shutil.rmtree(run / "search")
    assert main(["run", "--config", str(cfg), "--no-progress"]) == 0
    again = json.loads((run / "search" / "result.json").read_text())
    assert again["n_accuracy_evals"] == 0
    assert json.loads((run / "search" / "records.json").read_text()) == records
