"""The timing protocol: warm-up, repeated runs, median with an order-statistic confidence interval.

A measurement calls ``run_once`` (which executes the workload once and returns its duration in
milliseconds, so that device clocks such as CUDA events fit the same protocol) first for warm-up,
then repeatedly until the 95% confidence interval of the median is narrower than
``target_rel_ci`` of the median (half-width relative to the median) or a cap on the number of runs
or on the wall time is hit. A result that stopped at a cap without meeting the precision target is
flagged ``stable=False``: it is kept, but callers must not treat it as exact.

The confidence interval of the median uses order statistics (distribution-free): for ``n`` sorted
samples, the interval ``[x_(j), x_(k)]`` with ``j, k = n/2 -/+ 1.96 * sqrt(n) / 2`` covers the true
median with probability about 95% (normal approximation of the binomial, fine for ``n >= 10``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = [
    "TimingConfig",
    "TimingResult",
    "median_ci",
    "summarize",
    "thread_cpu_ms",
    "time_runs",
    "wall_clock_ms",
]


@dataclass(frozen=True)
class TimingConfig:
    """Parameters of the timing protocol.

    Attributes:
        warmup_runs: untimed runs before measuring (at least this many).
        warmup_time_s: warm-up continues until this much wall time has passed too (seconds).
        min_runs: timed runs before the stopping rule is checked (at least 5).
        max_runs: cap on timed runs.
        max_time_s: cap on wall time of the timed runs (seconds); the run in progress finishes.
        target_rel_ci: stop when the 95% CI half-width of the median is below this fraction of
            the median (0.01 = 1%).
    """

    warmup_runs: int = 3
    warmup_time_s: float = 0.05
    min_runs: int = 10
    max_runs: int = 500
    max_time_s: float = 1.5
    target_rel_ci: float = 0.01

    def __post_init__(self) -> None:
        if self.warmup_runs < 0:
            raise ValueError(f"warmup_runs must be >= 0, got {self.warmup_runs}")
        if self.min_runs < 5:
            raise ValueError(f"min_runs must be >= 5, got {self.min_runs}")
        if self.max_runs < self.min_runs:
            raise ValueError(f"max_runs ({self.max_runs}) must be >= min_runs ({self.min_runs})")
        if self.max_time_s <= 0 or self.warmup_time_s < 0:
            raise ValueError("max_time_s must be > 0 and warmup_time_s >= 0")
        if not 0 < self.target_rel_ci < 1:
            raise ValueError(f"target_rel_ci must be in (0, 1), got {self.target_rel_ci}")

    def as_dict(self) -> dict[str, float | int]:
        """The parameters as a plain dict (for stored settings)."""
        return {
            "warmup_runs": self.warmup_runs,
            "warmup_time_s": self.warmup_time_s,
            "min_runs": self.min_runs,
            "max_runs": self.max_runs,
            "max_time_s": self.max_time_s,
            "target_rel_ci": self.target_rel_ci,
        }


@dataclass(frozen=True)
class TimingResult:
    """Summary of one measurement.

    Attributes:
        median_ms: median run time, milliseconds.
        spread_ms: robust spread, half the inter-quartile range, milliseconds.
        ci_low_ms: lower end of the 95% CI of the median, milliseconds.
        ci_high_ms: upper end of the 95% CI of the median, milliseconds.
        n_runs: number of timed runs.
        stable: whether the CI half-width met the target before a cap was hit.
        warmup_runs: number of warm-up runs done.
        elapsed_s: wall time of the whole measurement including warm-up, seconds.
        stop_reason: 'precision', 'max_runs' or 'max_time'.
        times_ms: every timed run, in order, milliseconds.
    """

    median_ms: float
    spread_ms: float
    ci_low_ms: float
    ci_high_ms: float
    n_runs: int
    stable: bool
    warmup_runs: int
    elapsed_s: float
    stop_reason: str
    times_ms: tuple[float, ...] = field(repr=False, default=())

    @property
    def rel_ci(self) -> float:
        """CI half-width of the median as a fraction of the median."""
        return ci_half_width(self.ci_low_ms, self.ci_high_ms) / self.median_ms

    @property
    def spread_pct(self) -> float:
        """Spread as a percentage of the median."""
        return 100.0 * self.spread_ms / self.median_ms


def ci_half_width(low: float, high: float) -> float:
    """Half the width of an interval."""
    return (high - low) / 2.0


def median_ci(sorted_times: Sequence[float], z: float = 1.96) -> tuple[float, float]:
    """Order-statistic confidence interval of the median of sorted samples.

    Args:
        sorted_times: samples in ascending order (at least one).
        z: normal quantile of the two-sided level (1.96 for 95%).

    Returns:
        ``(low, high)``, the ``j``-th and ``k``-th order statistics (clipped to the sample range).
    """
    n = len(sorted_times)
    if n == 0:
        raise ValueError("median_ci needs at least one sample")
    half = z * math.sqrt(n) / 2.0
    j = max(0, math.floor(n / 2.0 - half) - 1)  # 0-based index of the lower order statistic
    k = min(n - 1, math.ceil(n / 2.0 + half))
    return float(sorted_times[j]), float(sorted_times[k])


def summarize(
    times_ms: Sequence[float],
    *,
    target_rel_ci: float,
    warmup_runs: int = 0,
    elapsed_s: float = 0.0,
    stop_reason: str = "precision",
) -> TimingResult:
    """The :class:`TimingResult` of a list of run times (milliseconds)."""
    arr = np.asarray(times_ms, dtype=float)
    if arr.size == 0:
        raise ValueError("no timed runs")
    srt = np.sort(arr)
    med = float(np.median(srt))
    q1, q3 = np.percentile(srt, [25.0, 75.0])
    low, high = median_ci(srt.tolist())
    rel = ci_half_width(low, high) / med if med > 0 else math.inf
    return TimingResult(
        median_ms=med,
        spread_ms=float(q3 - q1) / 2.0,
        ci_low_ms=low,
        ci_high_ms=high,
        n_runs=int(arr.size),
        stable=bool(rel <= target_rel_ci),
        warmup_runs=warmup_runs,
        elapsed_s=elapsed_s,
        stop_reason=stop_reason,
        times_ms=tuple(float(t) for t in arr),
    )


def wall_clock_ms(fn: Callable[[], object]) -> Callable[[], float]:
    """Wrap ``fn`` into a ``run_once`` that returns its wall-clock duration in milliseconds."""

    def run_once() -> float:
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3

    return run_once


def thread_cpu_ms(fn: Callable[[], object]) -> Callable[[], float]:
    """Wrap ``fn`` into a ``run_once`` returning the CPU time of the calling thread, milliseconds.

    Only meaningful when ``fn`` computes on the calling thread (one intra-op thread); time spent
    descheduled while other processes run is not counted.
    """

    def run_once() -> float:
        t0 = time.thread_time()
        fn()
        return (time.thread_time() - t0) * 1e3

    return run_once


def time_runs(
    run_once: Callable[[], float],
    config: TimingConfig | None = None,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> TimingResult:
    """Measure ``run_once`` with the protocol of :class:`TimingConfig`.

    Args:
        run_once: runs the workload once and returns its duration, milliseconds.
        config: protocol parameters (defaults if ``None``).
        clock: wall clock in seconds used for the time caps.

    Returns:
        The summary; ``stable`` is True only if the precision target was met.
    """
    cfg = config or TimingConfig()
    start = clock()
    n_warm = 0
    while n_warm < cfg.warmup_runs or (clock() - start) < cfg.warmup_time_s:
        run_once()
        n_warm += 1
        if n_warm >= 10 * max(cfg.warmup_runs, 1) and (clock() - start) >= cfg.warmup_time_s:
            break
    t_timed = clock()
    times: list[float] = []
    reason = "max_runs"
    next_check = cfg.min_runs
    while len(times) < cfg.max_runs:
        times.append(float(run_once()))
        if len(times) >= next_check:
            srt = sorted(times)
            med = (
                srt[len(srt) // 2]
                if len(srt) % 2
                else 0.5 * (srt[len(srt) // 2 - 1] + srt[len(srt) // 2])
            )
            low, high = median_ci(srt)
            if med > 0 and ci_half_width(low, high) / med <= cfg.target_rel_ci:
                reason = "precision"
                break
            next_check = len(times) + max(1, len(times) // 10)
        if clock() - t_timed >= cfg.max_time_s:
            reason = "max_time"
            break
    result = summarize(
        times,
        target_rel_ci=cfg.target_rel_ci,
        warmup_runs=n_warm,
        elapsed_s=clock() - start,
        stop_reason=reason,
    )
    if reason != "precision" and len(times) < cfg.min_runs:
        # a cap stopped us before the rule could be checked: not enough evidence to call it stable
        result = replace(result, stable=False)
    return result
