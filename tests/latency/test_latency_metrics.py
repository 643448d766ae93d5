"""Latency-model metrics and the warning a weak model gets."""

from __future__ import annotations

import numpy as np

from hsconas.latency.metrics import GOOD_KENDALL, GOOD_WITHIN_10PCT, evaluate, quality_warning


def test_evaluate_by_hand() -> None:
    m = evaluate([1.0, 2.19, 2.9, 4.5], [1.0, 2.0, 3.0, 4.0])
    assert m.n == 4 and m.within_10pct == 0.75 and m.within_5pct == 0.5
    assert m.kendall == 1.0 and np.isclose(m.mape_pct, 100 * (0 + 0.095 + 1 / 30 + 0.125) / 4)


def test_good_model_gets_no_warning() -> None:
    assert quality_warning(GOOD_WITHIN_10PCT, GOOD_KENDALL, 50) is None
    assert quality_warning(1.0, None, 30) is None


def test_weak_model_warning_names_figures_and_remedy() -> None:
    text = quality_warning(0.25, 0.36, 12, spread_pct=18.4)
    assert text is not None
    for needle in ("25% of 12 held-out networks within +/-10%", "Kendall tau 0.36", "18.4%",
                   "quiet the machine", "--samples", "--reference"):  # fmt: skip
        assert needle in text, needle
    assert quality_warning(0.95, 0.5, 20) is not None  # ranks badly though close
    assert quality_warning(0.5, None, 20, held_out="networks (leave-one-out)") is not None
