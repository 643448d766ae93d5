"""The benchmark comparison reads result rows back and pairs runs by (device, dataset, seed,
queries): a run below the best baseline is counted and named, a reference is paired run by run."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
from bench.search_nb201 import baseline_lines, read_rows, reference_lines


def _rows(algorithm: str, hv: list[float], share: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "kind": "pareto",
            "algorithm": algorithm,
            "device": ["pixel3", "pixel3", "gold_6240"],
            "dataset": "cifar100",
            "seed": [0, 1, 0],
            "queries": 300,
            "hv_ratio": hv,
            "front_share": share,
        }
    )


def test_baselines_are_paired_by_run_and_a_run_below_the_best_is_named() -> None:
    cand = _rows("hsconas", [0.99, 0.97, 0.995], [0.5, 0.4, 0.6])
    base = pd.concat(
        [
            _rows("re", [0.98, 0.98, 0.99], [0.1, 0.1, 0.1]),
            _rows("nsga2", [0.96, 0.96, 0.999], [0.2, 0.2, 0.2]),
        ]
    ).iloc[::-1]  # another row order than the candidate's: pairing is by run, not position
    text = "\n".join(baseline_lines(cand, base))
    assert "| 3 / 1 of 3 |" in text  # front share always ahead; HV behind in two runs
    assert "pixel3 cifar100 1: 40.0% / 0.9700 against 20.0% / 0.9800" in text
    assert "gold_6240 cifar100 0: 60.0% / 0.9950 against 20.0% / 0.9990" in text
    assert "pixel3 cifar100 0" not in text


def test_reference_counts_better_and_worse_runs() -> None:
    cand = _rows("hsconas", [0.99, 0.97, 0.995], [0.5, 0.4, 0.6])
    ref = _rows("hsconas", [0.98, 0.98, 0.995], [0.5, 0.5, 0.5]).iloc[::-1]
    cols = ["device", "dataset", "seed", "queries", "front_share", "hv_ratio"]
    text = "\n".join(reference_lines(cand, ref[cols], "earlier"))
    assert "| 300 | 3 | 50.0% / 0.9850 | 50.0% / 0.9850 | 1 / 1 |" in text


def test_result_rows_read_back_with_their_types(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    rows = [
        {"kind": "constraint", "algorithm": "hsconas", "device": "pixel3", "dataset": "cifar10",
         "seed": 2, "queries": 300, "percentile": 25, "budget_ms": 7.5, "regret": 0.0,
         "found_best": 1.0, "options": '{"batch_size": 4}', "front_share": ""},
    ]  # fmt: skip
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (back,) = read_rows(path)
    assert back["seed"] == 2 and back["percentile"] == 25 and back["budget_ms"] == 7.5
    assert back["options"] == '{"batch_size": 4}'
    assert "front_share" not in back  # empty cells are dropped, not read as 0
