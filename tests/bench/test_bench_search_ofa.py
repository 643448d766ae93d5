"""The OFA search benchmark pairs HSCoNAS with each method by (budget, seed), not by row order."""

from __future__ import annotations

import pandas as pd
from bench.search_ofa import _paired


def test_pairing_is_by_budget_and_seed() -> None:
    rows = []
    for alg, accs in (("hsconas", [76.0, 76.5, 75.0]), ("random", [75.0, 76.5, 75.5])):
        for seed, acc in enumerate(accs):
            rows.append(
                {"algorithm": alg, "percentile": 50, "budget_ms": 29.3, "seed": seed,
                 "best_accuracy": acc, "time_s": 1.0}
            )  # fmt: skip
    df = pd.DataFrame(rows).iloc[::-1]  # another row order: pairing must not be positional
    table = _paired(df, ["hsconas", "random"]).set_index("algorithm")
    assert table.loc["random", "W/T/L"] == "1/1/1"
    assert abs(table.loc["random", "hsconas - it"] - (1.0 + 0.0 - 0.5) / 3) < 1e-9
    assert table.loc["hsconas", "W/T/L"] == "-"


def test_ablations_run_only_at_their_budgets_and_leave_no_empty_rows() -> None:
    from bench.search_ofa import grid_tasks

    budgets = [(25, 26.7), (50, 29.3)]
    algs = ["hsconas", "hsconas-noscale", "hsconas-noshrink", "random"]
    tasks = grid_tasks(budgets, 2, algs, 300, [50])
    assert len(tasks) == 2 * 2 * 2 + 2 * 2  # two plain methods at both, two ablations at p50
    assert {t[2] for t in tasks if t[0] == "hsconas-noscale"} == {50}
    assert len(grid_tasks(budgets, 2, algs, 300)) == 16
    rows = [
        {"algorithm": t[0], "percentile": t[2], "budget_ms": t[1], "seed": t[3],
         "best_accuracy": 76.0 + 0.1 * t[3], "time_s": 1.0}
        for t in tasks
    ]  # fmt: skip
    table = _paired(pd.DataFrame(rows), algs)
    assert len(table) == len({(t[0], t[2]) for t in tasks}) == 6
    assert not table["best acc mean"].isna().any()
