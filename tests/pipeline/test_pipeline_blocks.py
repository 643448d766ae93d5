"""The pipeline's ``blocks`` stage: end-to-end measurement on a local device, and its reduced
space feeding the search (``blocks.reduce_search``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hsconas.spaces  # noqa: F401
from hsconas.pipeline.config import config_from_dict, config_to_dict, default_config
from hsconas.pipeline.stages import build_stages
from hsconas.pipeline.stages.blocks import _placement_insights, blocks_source_kind
from hsconas.space import get_space


def _cfg(**blocks: object) -> object:
    doc = config_to_dict(default_config())
    doc["blocks"] = {**doc["blocks"], **blocks}
    return config_from_dict(doc)


def test_auto_measures_on_a_local_device_and_uses_the_model_on_a_remote_one() -> None:
    assert blocks_source_kind(_cfg(source="auto")) == "measure"  # onnxruntime, this CPU
    doc = config_to_dict(_cfg(source="auto"))  # type: ignore[arg-type]
    doc["device"]["backend"] = "remote:http://127.0.0.1:9"
    assert blocks_source_kind(config_from_dict(doc)) == "model"
    assert blocks_source_kind(_cfg(source="model")) == "model"
    assert blocks_source_kind(_cfg(source="measure")) == "measure"
    # the dataclass default is auto
    from hsconas.pipeline.config_sections import BlocksConfig

    assert BlocksConfig().source == "auto" and BlocksConfig().reduce_search is False


def test_the_search_depends_on_the_blocks_config_only_when_it_uses_the_reduction() -> None:
    def search_slice(cfg: object) -> dict:
        stage = next(s for s in build_stages(cfg) if s.name == "search")  # type: ignore[arg-type]
        return dict(stage.config)

    assert "blocks" not in search_slice(_cfg(reduce_search=False))
    assert search_slice(_cfg(reduce_search=True))["blocks"]["reduce_search"] is True


def test_bad_blocks_values_are_refused() -> None:
    from hsconas.pipeline.config import ConfigError

    with pytest.raises(ConfigError, match=r"blocks\.source"):
        _cfg(source="guess")
    with pytest.raises(ConfigError, match=r"blocks\.keep_min"):
        _cfg(keep_min=0)


TINY = """
run_dir: {run}
seed: 1
device: {{name: test-cpu, backend: onnxruntime, threads: 1}}
space: {{name: hsconas-digits}}
dataset: {{name: digits, subset: 600, val_fraction: 0.3}}
profile:
  lut_patience: 5
  n_e2e: 8
  n_validate: 4
  block_timing: {{warmup_runs: 1, warmup_time_s: 0.0, min_runs: 5, max_runs: 10, max_time_s: 0.02, target_rel_ci: 0.2}}
  e2e_timing: {{warmup_runs: 1, warmup_time_s: 0.0, min_runs: 5, max_runs: 30, max_time_s: 0.05, target_rel_ci: 0.1}}
blocks: {{samples_per_block: 2, baseline_samples: 6, reduce_search: true}}
supernet: {{epochs: 1, batch_size: 64, calib_images: 128}}
search: {{n_queries: 20, initial_queries: 10, population_size: 6, batch_size: 5, shrink_at: [14], n_scaled: 1}}
final: {{max_candidates: 2, train_from_scratch: false}}
"""


@pytest.mark.slow
def test_tiny_run_measures_blocks_end_to_end_and_searches_the_reduced_space(
    tmp_path: Path,
) -> None:
    from hsconas.cli.main import main

    run = tmp_path / "run"
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY.format(run=run), encoding="utf-8")
    assert main(["run", "--config", str(cfg), "--no-progress"]) == 0
    blocks = json.loads((run / "blocks" / "result.json").read_text())
    assert blocks["source"] == "measure"
    search = json.loads((run / "search" / "result.json").read_text())
    red = search["blocks_reduction"]
    assert red is not None and red["size"] < red["full_size"] and red["dropped"]
    space = get_space("hsconas-digits")
    records = json.loads((run / "search" / "records.json").read_text())
    for r in records:  # every searched network lies in the reduced space
        arch = space.from_string(r["arch"])
        values = space.as_dict(arch)
        active = dict(zip(space.gene_names, space.active_mask(arch.values), strict=True))
        for gene, dropped in red["dropped"].items():  # inactive layers hold their default
            assert not active[gene] or str(values[gene]) not in dropped


def test_placement_sentences_are_left_out_for_spaces_without_op_genes() -> None:
    import pandas as pd

    ofa = pd.DataFrame(
        {"gene": ["u2.l1.kernel", "u2.l1.kernel"], "choice": [3, 7], "lat_effect_pct": [-4.0, 6.0]}
    )
    assert _placement_insights(ofa) == []  # not "moves latency most at  and least at ."
    ops = pd.DataFrame(
        {
            "gene": ["u1.l1.op", "u1.l1.op", "u2.l1.op", "u2.l1.op"],
            "choice": ["mb_k3_e3", "mb_k5_e6", "mb_k3_e3", "mb_k5_e6"],
            "lat_effect_pct": [-2.0, 3.0, -1.0, 1.0],
        }
    )
    first = _placement_insights(ops)[0]
    assert first.startswith("The op choice moves latency most at u1.l1 (5.0 points")
