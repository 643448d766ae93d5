"""Reference-normalised timing: the pairing arithmetic, calibration through the store, real runs."""

from __future__ import annotations

import pytest
from torch import nn

from hsconas.hardware.backends import get_backend
from hsconas.hardware.measure import calibrate_reference, measure_module
from hsconas.hardware.reference import (
    Reference,
    balanced_repeats,
    middle_architecture,
    paired_run_once,
    space_reference,
)
from hsconas.hardware.timing import TimingConfig, time_runs
from hsconas.space import get_space
from hsconas.store import ResultStore

_FAST = TimingConfig(max_time_s=0.2)


def _ref_module() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1))


def test_pairing_cancels_a_common_slowdown() -> None:
    # a machine whose speed halves half-way through: both workloads slow down together
    speed = {"factor": 1.0}
    calls = {"n": 0}

    def target() -> float:
        calls["n"] += 1
        if calls["n"] > 20:
            speed["factor"] = 2.0
        return 3.0 * speed["factor"]

    def reference() -> float:
        return 6.0 * speed["factor"]

    cfg = TimingConfig(warmup_runs=0, warmup_time_s=0.0, min_runs=40, max_runs=40, max_time_s=10)
    raw = time_runs(target, cfg)
    calls["n"], speed["factor"] = 0, 1.0
    paired = time_runs(paired_run_once(target, reference, base_ms=6.0), cfg)
    assert raw.ci_high_ms >= 6.0  # the raw times mix both speeds
    assert paired.median_ms == pytest.approx(3.0)
    assert paired.ci_low_ms == pytest.approx(paired.ci_high_ms)


def test_repeats_average_the_target_and_balance_the_time() -> None:
    times = iter([1.0, 3.0, 2.0])
    run = paired_run_once(lambda: next(times), lambda: 4.0, base_ms=8.0, repeats=3)
    assert run() == pytest.approx(2.0 / 4.0 * 8.0)
    assert balanced_repeats(lambda: 0.5, lambda: 10.0) == 20
    assert balanced_repeats(lambda: 30.0, lambda: 10.0) == 1
    with pytest.raises(ValueError, match="repeats"):
        paired_run_once(lambda: 1.0, lambda: 1.0, base_ms=1.0, repeats=0)


def test_middle_architecture_is_valid_in_every_measured_space() -> None:
    for name in ("ofa-mbv3", "proxylessnas", "fbnet", "nb201", "ofa-resnet50"):
        arch = middle_architecture(name)
        get_space(name).validate(arch)
    ref = space_reference("ofa-mbv3", 128)
    assert ref.key.startswith("ofa-mbv3:") and ref.key.endswith("@3x128x128")
    assert ref.input_shape == (3, 128, 128)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_measuring_against_a_reference_calibrates_once_and_keys_results_by_it(
    tmp_path, backend: str
) -> None:
    store = ResultStore(tmp_path / "r.db")
    ref = Reference("tiny-ref", _ref_module(), (3, 32, 32))
    be = get_backend(backend, threads=1, reference=ref)
    assert be.settings()["reference"] == "tiny-ref"
    block = nn.Conv2d(3, 8, 1)
    m = measure_module(block, (3, 32, 32), be, key="b", kind="block", store=store, timing=_FAST)
    assert ref.base_ms is not None and ref.base_ms > 0
    assert m.extra["reference_base_ms"] == ref.base_ms
    assert m.settings["reference"] == "tiny-ref"
    cal = store.measurements(kind="reference")
    assert len(cal) == 1 and cal[0].median_ms == ref.base_ms
    # a new process (fresh Reference object) reads the same base instead of re-measuring
    again = Reference("tiny-ref", _ref_module(), (3, 32, 32))
    be2 = get_backend(backend, threads=1, reference=again)
    calibrate_reference(be2, store=store)
    assert again.base_ms == ref.base_ms
    # a plain backend does not see the normalised result: different settings
    plain = get_backend(backend, threads=1)
    fresh = measure_module(
        block, (3, 32, 32), plain, key="b", kind="block", store=store, timing=_FAST
    )
    assert "reference" not in fresh.settings
    assert len(store.measurements(kind="block")) == 2


def test_normalised_latency_orders_networks_like_the_raw_latency() -> None:
    ref = Reference("tiny-ref", _ref_module(), (3, 32, 32))
    be = get_backend("torch", threads=1, reference=ref)
    calibrate_reference(be)
    small = measure_module(nn.Conv2d(16, 16, 1), (16, 32, 32), be, timing=_FAST).median_ms
    big = measure_module(nn.Conv2d(16, 256, 5, padding=2), (16, 32, 32), be, timing=_FAST)
    assert big.median_ms > 3 * small


def test_onnxruntime_exports_the_reference_once() -> None:
    ref = Reference("tiny-ref", _ref_module(), (3, 32, 32))
    be = get_backend("onnxruntime", threads=1, reference=ref)
    calibrate_reference(be)
    sess = be._reference_cache[1]  # type: ignore[attr-defined]
    measure_module(nn.Conv2d(3, 8, 1), (3, 32, 32), be, timing=_FAST)
    assert be._reference_cache[1] is sess  # type: ignore[attr-defined]
