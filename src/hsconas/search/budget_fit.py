"""Fit a searched network to a latency budget on the real device: measure the best candidates
until one meets the budget, re-scaling channels when a measurement misses it.

The search ranks candidates by *predicted* latency; the device has the last word. For each
candidate, most accurate first: measure it; if it misses the budget, re-scale its channels to a
budget tightened by the measured/predicted ratio (with :data:`RESCALE_MARGIN`) and measure that.
If every candidate misses (the device runs slower than the model says: drift since profiling,
load), re-select the most accurate evaluated networks whose prediction times the median
measured/predicted ratio fits within :data:`RESELECT_MARGIN` of the budget; then step the fastest
attempt's channels down to :data:`SHRINK_STEPS` of the budget. Failing all that, the fastest
measured attempt is chosen and reported over budget. No torch here: measuring is a callable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from hsconas.search.channel_scaling import scale_channels
from hsconas.search.core.problem import BudgetInfeasibleError
from hsconas.space import Architecture, SearchSpace, get_space

__all__ = [
    "RESCALE_MARGIN",
    "RESELECT_MARGIN",
    "SHRINK_STEPS",
    "Attempt",
    "BudgetFit",
    "fit_to_budget",
]

RESCALE_MARGIN = 0.98
"""A re-scaled candidate aims at this share of the ratio-corrected budget."""
RESELECT_MARGIN = 0.97
"""A re-selected network's corrected prediction must be within this share of the budget."""
N_RESELECT = 3
"""Re-selected networks measured at most."""
SHRINK_STEPS: tuple[float, ...] = (0.9, 0.8, 0.7, 0.6, 0.5)
"""Shares of the budget the fastest attempt's channels are stepped down to, in order."""


@dataclass(frozen=True)
class Attempt:
    """One measurement of a candidate on the device.

    Attributes:
        arch: the canonical string of the network.
        why: why it was measured (``search candidate``, ``channels re-scaled to ...``).
        measured_ms: its measured median latency, ms.
        spread_ms: the spread of that measurement, ms.
        predicted_ms: the latency model's prediction, ms.
        within_budget: whether the measurement meets the budget.
    """

    arch: str
    why: str
    measured_ms: float
    spread_ms: float
    predicted_ms: float
    within_budget: bool


@dataclass(frozen=True)
class BudgetFit:
    """The outcome: the chosen network, its measured latency (ms) and every attempt in order."""

    chosen: Architecture
    chosen_ms: float
    attempts: tuple[Attempt, ...]

    @property
    def final(self) -> Attempt:
        """The (first) attempt that measured the chosen network."""
        key = get_space(self.chosen.space).to_string(self.chosen)
        return next(a for a in self.attempts if a.arch == key)


def fit_to_budget(
    space: SearchSpace,
    candidates: Sequence[Architecture],
    budget_ms: float,
    *,
    measure: Callable[[Architecture], tuple[float, float]],
    predict_ms: Callable[[Architecture], float],
    latency_fn: Callable[[Architecture], float],
    accuracy_fn: Callable[[], Callable[[Architecture], float]],
    evaluated: Callable[[], Sequence[tuple[str, float, float]]],
    max_candidates: int,
    on_attempt: Callable[[int], None] | None = None,
) -> BudgetFit:
    """Measure candidates until one meets ``budget_ms`` (see the module docstring).

    Args:
        space: the searched space (architectures' strings are its canonical strings).
        candidates: most accurate first, feasible by prediction.
        budget_ms: the latency budget, ms.
        measure: arch -> (measured median, spread), ms, on the device.
        predict_ms: the latency model's prediction, ms.
        latency_fn: the latency the channel scaling steers by (the model's), ms.
        accuracy_fn: returns the accuracy estimate channel scaling compares neighbours with
            (built on first use).
        evaluated: returns the search's evaluations as (arch string, accuracy, predicted ms).
        max_candidates: search candidates measured at most.
        on_attempt: called with the number of attempts so far.

    Raises:
        ValueError: no candidate to measure.
    """
    full = get_space(space.name)  # evaluated networks are parsed in the unrestricted space
    attempts: list[Attempt] = []
    chosen: list[tuple[Architecture, float]] = []

    def attempt(arch: Architecture, why: str) -> bool:
        median, spread = measure(arch)
        ok = median <= budget_ms
        attempts.append(
            Attempt(space.to_string(arch), why, median, spread, float(predict_ms(arch)), ok)
        )
        if on_attempt is not None:
            on_attempt(len(attempts))
        if ok:
            chosen.append((arch, median))
        return ok

    def rescaled(arch: Architecture, budget: float) -> Architecture | None:
        try:
            new, _ = scale_channels(
                space, arch, budget_ms=budget, latency_fn=latency_fn, accuracy_fn=accuracy_fn()
            )
        except BudgetInfeasibleError:
            return None
        return new

    for i, arch in enumerate(candidates[:max_candidates]):
        if attempt(arch, "search candidate" if i == 0 else "next candidate"):
            break
        last = attempts[-1]
        tighter = budget_ms * last.predicted_ms / max(last.measured_ms, 1e-9) * RESCALE_MARGIN
        new = rescaled(arch, tighter)
        if (
            new is not None
            and new != arch
            and attempt(new, f"channels re-scaled to {tighter:.4f} ms")
        ):
            break
    if not attempts:
        raise ValueError("no candidate to measure")
    if not chosen:
        ratio = float(np.median([a.measured_ms / a.predicted_ms for a in attempts]))
        tried = {a.arch for a in attempts}
        fits = [
            r
            for r in evaluated()
            if r[2] * ratio <= RESELECT_MARGIN * budget_ms and r[0] not in tried
        ]
        fits.sort(key=lambda r: (-r[1], r[2]))
        for key, _, _ in fits[:N_RESELECT]:
            if attempt(full.from_string(key), f"re-selected: measured/predicted {ratio:.2f}"):
                break
    if not chosen:
        base = full.from_string(min(attempts, key=lambda a: a.measured_ms).arch)
        for shrink in SHRINK_STEPS:
            new = rescaled(base, budget_ms * shrink)
            if new is None:
                break
            if attempt(new, f"channels re-scaled to {shrink:.0%} of the budget"):
                break
    if not chosen:  # the fastest measured attempt, reported as over budget
        fastest = min(attempts, key=lambda a: a.measured_ms)
        chosen.append((full.from_string(fastest.arch), fastest.measured_ms))
    arch, ms = chosen[0]
    return BudgetFit(arch, ms, tuple(attempts))
