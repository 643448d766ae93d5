"""The timing protocol: median, spread, order-statistic CI, stopping rule and caps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from hsconas.hardware.timing import TimingConfig, median_ci, summarize, time_runs, wall_clock_ms


def _small_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3)).eval()


def test_real_module_median_positive_and_consistent() -> None:
    net, x = _small_net(), torch.randn(1, 3, 32, 32)

    def fwd() -> None:
        with torch.inference_mode():
            net(x)

    r = time_runs(wall_clock_ms(fwd), TimingConfig(max_time_s=0.3))
    assert r.median_ms > 0
    assert r.ci_low_ms <= r.median_ms <= r.ci_high_ms
    assert r.n_runs == len(r.times_ms) >= 10
    assert r.spread_ms >= 0
    assert r.median_ms == pytest.approx(float(np.median(r.times_ms)))
    # stable exactly when the precision rule stopped the measurement and met the target
    assert r.stable == (r.rel_ci <= 0.01)


def test_constant_durations_stop_at_min_runs_and_are_stable() -> None:
    r = time_runs(lambda: 2.0, TimingConfig(min_runs=12, warmup_runs=2, warmup_time_s=0))
    assert r.stable and r.stop_reason == "precision"
    assert r.n_runs == 12 and r.warmup_runs == 2
    assert r.median_ms == 2.0 and r.spread_ms == 0.0


def test_noisy_durations_hit_the_run_cap_and_are_flagged_unstable() -> None:
    # durations alternate 1, 2, 3 ms: the CI of the median never gets within 1%
    cycle = itertools.cycle([1.0, 2.0, 3.0])
    cfg = TimingConfig(min_runs=10, max_runs=40, max_time_s=60, warmup_runs=0, warmup_time_s=0)
    r = time_runs(lambda: next(cycle), cfg)
    assert r.n_runs == 40 and r.stop_reason == "max_runs"
    assert not r.stable
    assert r.median_ms == 2.0


def test_time_cap_stops_a_real_module() -> None:
    net, x = _small_net(), torch.randn(1, 3, 64, 64)

    def fwd() -> None:
        with torch.inference_mode():
            net(x)

    cfg = TimingConfig(target_rel_ci=1e-9, max_runs=10**6, max_time_s=0.1, warmup_time_s=0)
    r = time_runs(wall_clock_ms(fwd), cfg)
    assert r.stop_reason == "max_time" and not r.stable
    assert r.elapsed_s < 2.0


def test_median_ci_covers_the_median_and_narrows() -> None:
    rng = np.random.default_rng(0)
    small = np.sort(rng.normal(10, 1, 20))
    large = np.sort(rng.normal(10, 1, 2000))
    lo_s, hi_s = median_ci(small.tolist())
    lo_l, hi_l = median_ci(large.tolist())
    assert lo_s <= np.median(small) <= hi_s
    assert lo_l <= np.median(large) <= hi_l
    assert hi_l - lo_l < hi_s - lo_s
    # about 95% coverage of the true median (10) over repeated samples
    hits = 0
    for _ in range(400):
        s = np.sort(rng.normal(10, 1, 41))
        lo, hi = median_ci(s.tolist())
        hits += lo <= 10 <= hi
    assert 0.9 <= hits / 400 <= 0.995


def test_summarize_and_config_validation() -> None:
    r = summarize([1.0, 2.0, 3.0, 4.0], target_rel_ci=0.01)
    assert r.median_ms == 2.5 and r.spread_ms == pytest.approx(0.75)
    with pytest.raises(ValueError):
        TimingConfig(min_runs=2)
    with pytest.raises(ValueError):
        TimingConfig(target_rel_ci=0)
    with pytest.raises(ValueError):
        summarize([], target_rel_ci=0.01)
