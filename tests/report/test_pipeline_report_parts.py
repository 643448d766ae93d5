"""Parts of the run report that must tell the truth: model warnings and the fingerprint table."""

from __future__ import annotations

import base64

from hsconas.report.pipeline_plots import plot_stage_fronts
from hsconas.report.pipeline_report import _fingerprint_value, model_warning


def _prof(within: float, kendall: float) -> dict[str, object]:
    return {"validation": {"within_10pct": within, "kendall": kendall, "n": 12, "mape_pct": 14.0}}


def test_model_warning_from_stage_result_or_derived_for_old_runs() -> None:
    assert model_warning(_prof(1.0, 0.95)) is None
    derived = model_warning(_prof(0.25, 0.36))
    assert derived is not None and "25% of 12 held-out networks" in derived
    assert model_warning({**_prof(0.25, 0.36), "quality_warning": None}) is None  # stored wins


def test_fingerprint_values_for_people() -> None:
    assert _fingerprint_value("AMD EPYC") == "AMD EPYC"  # no JSON quotes
    assert _fingerprint_value(None) == "not available on this machine"
    assert _fingerprint_value(4) == "4" and _fingerprint_value([1, 2]) == "[1, 2]"


def test_stage_fronts_plot_marks_the_chosen_network() -> None:
    stages = [{"stage": 0, "points": [[1.0, 50.0], [2.0, 60.0]], "front": [[1.0, 50.0], [2.0, 60.0]],
               "queries": [0, 2], "space_size": 10.0}]  # fmt: skip
    plain = plot_stage_fronts(stages, 1.5)
    marked = plot_stage_fronts(
        stages, 1.5, {"predicted_ms": 1.4, "measured_ms": 1.7, "accuracy": 55.0}
    )
    assert base64.b64decode(marked)[:8] == b"\x89PNG\r\n\x1a\n"
    assert marked != plain
