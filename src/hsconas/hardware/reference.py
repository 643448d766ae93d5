"""Reference-normalised timing: cancel the machine's speed drift with a fixed network timed alongside.

On a shared or virtualised machine the CPU's speed moves by several percent within seconds (other
tenants, frequency changes). On a 2-core VM, medians of 15-run windows of one network varied with
a standard deviation of 2-3%, and held-out networks measured over one minute drifted 5-13% against
a model fitted a minute earlier. Such drift slows every workload by about the same factor, so it
cancels in a ratio: every timed run of the target is paired with a run of a fixed *reference*
network on the same backend, and the run's time is reported as

    target time / reference time * base,

where ``base`` is the reference's own median latency, calibrated once with a long measurement and
stored, so that every measurement against the same reference is in the same milliseconds. In the
same windows the ratio to a network of the same space varied by 0.7-1.4%.

A target much faster than the reference (a single block) runs ``repeats`` times per reference run,
so that both take about the same wall time; the pair's time is then the target's mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hsconas.errors import InvalidArchitectureError
from hsconas.hardware.timing import TimingConfig, TimingResult, time_runs
from hsconas.space import Architecture, SearchSpace, get_space

if TYPE_CHECKING:  # torch is imported where a reference is built, not to time one
    from torch import nn

__all__ = [
    "Reference",
    "balanced_repeats",
    "calibration_timing",
    "middle_architecture",
    "paired_run_once",
    "paired_time_runs",
    "space_reference",
]


@dataclass
class Reference:
    """A fixed reference network that timing runs are normalised by.

    Attributes:
        key: identifies the reference; part of the settings every normalised measurement is
            stored under, so results against different references never mix.
        module: the network (evaluation mode).
        input_shape: shape of one input without the batch dimension (C, H, W).
        base_ms: the reference's calibrated median latency on the backend, milliseconds
            (``None`` until calibrated; :func:`hsconas.hardware.measure.measure_module` calibrates
            it, or reads it from the results store).
    """

    key: str
    module: nn.Module = field(repr=False)
    input_shape: tuple[int, ...]
    base_ms: float | None = None


def calibration_timing() -> TimingConfig:
    """Timing protocol of a reference's calibration: 0.25% precision target, up to 5 s."""
    return TimingConfig(warmup_time_s=0.5, max_runs=5000, max_time_s=5.0, target_rel_ci=0.0025)


def middle_architecture(space: str | SearchSpace, resolution: int | None = None) -> Architecture:
    """The architecture with every gene at its middle choice (a typical member of ``space``).

    ``space`` may be restricted (e.g. to one resolution): the middle is taken among its choices.
    Falls back to a seeded sample where the middle choices do not form a valid architecture.
    """
    sp = (get_space(space) if isinstance(space, str) else space).at_resolution(resolution)
    values = [g.choices[len(g.choices) // 2] for g in sp.genes]
    try:
        return sp.make(values)
    except InvalidArchitectureError:
        return sp.sample(0)


def space_reference(space: str | SearchSpace, resolution: int | None = None) -> Reference:
    """The reference of ``space``: its middle architecture (see :func:`middle_architecture`)."""
    from hsconas.nn.registry import build_model
    from hsconas.spaces.resolve import arch_input_shape

    arch = middle_architecture(space, resolution)
    shape = arch_input_shape(arch, resolution)
    key = f"{arch.space}:{get_space(arch.space).to_string(arch)}@{'x'.join(map(str, shape))}"
    return Reference(key, build_model(arch).eval(), shape)


def paired_run_once(
    target: Callable[[], float],
    reference: Callable[[], float],
    base_ms: float,
    repeats: int = 1,
) -> Callable[[], float]:
    """A ``run_once`` that times ``target`` against ``reference`` (see the module docstring).

    Args:
        target: runs the target once, returns milliseconds.
        reference: runs the reference once, returns milliseconds.
        base_ms: the reference's calibrated latency, milliseconds.
        repeats: target runs per reference run (their mean is the target's time).

    Returns:
        A function returning ``mean(target times) / reference time * base_ms``, milliseconds.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if base_ms <= 0:
        raise ValueError(f"base_ms must be positive, got {base_ms}")

    def run_once() -> float:
        total = 0.0
        for _ in range(repeats):
            total += target()
        ref = reference()
        return (total / repeats) / max(ref, 1e-9) * base_ms

    return run_once


def balanced_repeats(
    target: Callable[[], float], reference: Callable[[], float], *, probes: int = 3
) -> int:
    """Target runs per reference run so that both take about the same time (1 to 1000)."""
    t = sorted(target() for _ in range(probes))[probes // 2]
    r = sorted(reference() for _ in range(probes))[probes // 2]
    return int(min(1000, max(1, round(r / max(t, 1e-9)))))


def paired_time_runs(
    run_once: Callable[[], float],
    ref_once: Callable[[], float],
    base_ms: float,
    timing: TimingConfig | None = None,
) -> TimingResult:
    """Time ``run_once`` against ``ref_once`` with the protocol of :func:`time_runs`.

    Both are warmed twice, the target's repeats per reference run are balanced
    (:func:`balanced_repeats`), and every timed run is a :func:`paired_run_once` pair.

    Args:
        run_once: runs the target once, returns milliseconds.
        ref_once: runs the reference once, returns milliseconds.
        base_ms: the reference's calibrated latency, milliseconds.
        timing: protocol parameters (defaults if ``None``).
    """
    for _ in range(2):  # warm both before balancing them
        run_once()
        ref_once()
    repeats = balanced_repeats(run_once, ref_once)
    return time_runs(paired_run_once(run_once, ref_once, base_ms, repeats), timing)
