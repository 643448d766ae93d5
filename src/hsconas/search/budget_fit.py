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

Re-scaling is the same operator the HSCoNAS EA applies to its offspring
(:class:`~hsconas.search.channel_scaling.CodeScaler`, wrapped by :class:`BudgetScaler`): additive
latency and accuracy models fitted on the search's evaluations, channel genes moved one step at a
time where the predicted accuracy per ms is best, the result checked against the latency model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from hsconas.search.channel_scaling import CodeScaler
from hsconas.space import Architecture, SearchSpace, get_space
from hsconas.space.codec import GeneCodec

__all__ = [
    "RESCALE_MARGIN",
    "RESELECT_MARGIN",
    "SHRINK_STEPS",
    "Attempt",
    "BudgetFit",
    "BudgetScaler",
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


class BudgetScaler:
    """The EA's channel-scaling operator (:class:`CodeScaler`) applied to one network at a time,
    its result checked against the latency model.

    Args:
        space: the searched space (possibly restricted: moves stay inside it).
        evaluated: the search's evaluations as (arch string, accuracy, predicted ms); the
            additive models are fitted on them.
        latency_fn: the latency model (ms) each result is checked with.
        tries: re-scalings at a budget tightened by the additive model's miss, at most.
    """

    def __init__(
        self,
        space: SearchSpace,
        evaluated: Sequence[tuple[str, float, float]],
        latency_fn: Callable[[Architecture], float],
        *,
        tries: int = 3,
    ) -> None:
        full = get_space(space.name)
        self.space = space
        self.codec = GeneCodec(space)
        self.latency_fn = latency_fn
        self.tries = tries
        self.scaler = CodeScaler(space, self.codec)
        if self.scaler.active and evaluated:
            codes = self.codec.encode([full.from_string(k) for k, _, _ in evaluated])
            acc = np.array([a for _, a, _ in evaluated], dtype=np.float64)
            lat = np.array([ms for _, _, ms in evaluated], dtype=np.float64)
            self.scaler.fit(codes, lat, acc)
            self.scaler.set_allowed(self.codec.allowed_mask(space))
        self._fitted = self.scaler.active and bool(evaluated)

    def scale(self, arch: Architecture, budget_ms: float) -> Architecture | None:
        """``arch`` with its channel genes scaled so that its predicted latency approaches
        ``budget_ms`` from below; ``None`` when no scaling the operator finds meets it (or the
        space has no channel genes)."""
        if not self._fitted:
            return None
        code = self.codec.encode([arch])
        target = budget_ms
        for _ in range(max(1, self.tries)):
            new = self.codec.decode(self.scaler.scale(code, target))[0]
            ms = float(self.latency_fn(new))
            if ms <= budget_ms:
                return new
            target *= budget_ms / ms  # the additive model under-predicted: aim lower
        return None


def fit_to_budget(
    space: SearchSpace,
    candidates: Sequence[Architecture],
    budget_ms: float,
    *,
    measure: Callable[[Architecture], tuple[float, float]],
    predict_ms: Callable[[Architecture], float],
    latency_fn: Callable[[Architecture], float],
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
        latency_fn: the latency model a re-scaled network is checked with, ms.
        evaluated: returns the search's evaluations as (arch string, accuracy, predicted ms);
            channel scaling fits its additive models on them (read on first use).
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

    scalers: list[BudgetScaler] = []

    def rescaled(arch: Architecture, budget: float) -> Architecture | None:
        if not scalers:
            scalers.append(BudgetScaler(space, evaluated(), latency_fn))
        return scalers[0].scale(arch, budget)

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
