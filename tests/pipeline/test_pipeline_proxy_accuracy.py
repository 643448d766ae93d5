"""``search.accuracy: proxy:METHOD``: a pipeline whose search is steered by a zero-cost estimate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hsconas.accuracy.zero_cost import METHODS
from hsconas.pipeline.config import ConfigError, config_from_dict

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_search_accuracy_takes_supernet_or_a_proxy() -> None:
    assert config_from_dict({}).search.accuracy == "supernet"
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
