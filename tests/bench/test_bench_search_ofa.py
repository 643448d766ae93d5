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
