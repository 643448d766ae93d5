"""Dynamic channel scaling: spend a latency budget where predicted accuracy per ms is highest.

Given an operator configuration (the non-channel genes of an architecture), the search moves the
channel-factor genes one step at a time: while the predicted latency is over the budget it lowers the
factor that loses the least predicted accuracy per ms saved; then, while some raise still fits under
the budget, it raises the factor with the highest predicted accuracy gain per ms. The result
approaches the budget from below. Generic: any space whose genes include ordered numeric channel
factors, any latency and accuracy predictors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hsconas.search.core.problem import BudgetInfeasibleError, EvalRecord
from hsconas.space import Architecture, SearchSpace

Predictor = Callable[[Architecture], float]


@dataclass(frozen=True)
class ScalingStep:
    """One move of the greedy scaling: gene, old and new factor, predicted values after it."""

    gene: str
    old: float
    new: float
    latency_ms: float
    accuracy: float


def channel_genes(
    space: SearchSpace, markers: Sequence[str] = ("channel", "factor", "width")
) -> list[str]:
    """Genes whose name contains one of ``markers`` (``u1.l1.factor``) and whose choices are numbers."""
    return [
        g.name
        for g in space.genes
        if any(m in g.name for m in markers)
        and all(isinstance(c, int | float) and not isinstance(c, bool) for c in g.choices)
    ]


def scale_channels(
    space: SearchSpace,
    arch: Architecture,
    *,
    budget_ms: float,
    latency_fn: Predictor,
    accuracy_fn: Predictor,
    factor_genes: Sequence[str] | None = None,
    max_steps: int = 1000,
) -> tuple[Architecture, list[ScalingStep]]:
    """Scale the channel factors of ``arch`` so its predicted latency approaches ``budget_ms`` from below.

    Args:
        space: the space (channel-factor genes have sorted numeric choices).
        arch: starting architecture (its operator genes are kept).
        budget_ms: latency budget, ms.
        latency_fn: predicted latency of an architecture, ms.
        accuracy_fn: predicted accuracy of an architecture (any monotone score works).
        factor_genes: channel-factor gene names (default: :func:`channel_genes`).
        max_steps: safety bound on the number of moves.

    Returns:
        The scaled architecture and the moves made.

    Raises:
        BudgetInfeasibleError: even the smallest factors exceed the budget.
        ValueError: no channel-factor genes.
    """
    genes = list(factor_genes) if factor_genes is not None else channel_genes(space)
    if not genes:
        raise ValueError(f"{space.name} has no channel-factor genes")
    names = space.gene_names
    pos = {g: names.index(g) for g in genes}
    choices = {g: sorted(float(c) for c in space.gene(g).choices) for g in genes}

    def moved(a: Architecture, gene: str, step: int) -> Architecture | None:
        vals = list(a.values)
        cur = float(vals[pos[gene]])
        ch = choices[gene]
        k = min(range(len(ch)), key=lambda i: abs(ch[i] - cur)) + step
        if not 0 <= k < len(ch):
            return None
        match = next(c for c in space.gene(gene).choices if float(c) == ch[k])
        vals[pos[gene]] = match
        try:
            return space.make(vals)
        except ValueError:
            return None

    steps: list[ScalingStep] = []
    cur = arch
    lat, acc = latency_fn(cur), accuracy_fn(cur)
    # lower factors until within budget
    while lat > budget_ms and len(steps) < max_steps:
        best: tuple[float, Architecture, str, float, float] | None = None
        for g in genes:
            cand = moved(cur, g, -1)
            if cand is None:
                continue
            cl, ca = latency_fn(cand), accuracy_fn(cand)
            saved = lat - cl
            if saved <= 0:
                continue
            cost = (acc - ca) / saved  # accuracy lost per ms saved
            if best is None or cost < best[0]:
                best = (cost, cand, g, cl, ca)
        if best is None:
            raise BudgetInfeasibleError(
                f"channel scaling cannot meet {budget_ms} ms: the smallest factors give {lat:.3g} ms"
            )
        _, nxt, g, lat, acc = best
        steps.append(ScalingStep(g, float(cur.values[pos[g]]), float(nxt.values[pos[g]]), lat, acc))
        cur = nxt
    # raise factors while they fit, best accuracy gain per ms first
    while len(steps) < max_steps:
        best = None
        for g in genes:
            cand = moved(cur, g, +1)
            if cand is None:
                continue
            cl, ca = latency_fn(cand), accuracy_fn(cand)
            if cl > budget_ms:
                continue
            gain = (ca - acc) / max(cl - lat, 1e-9)
            if ca > acc and (best is None or gain > best[0]):
                best = (gain, cand, g, cl, ca)
        if best is None:
            break
        _, nxt, g, lat, acc = best
        steps.append(ScalingStep(g, float(cur.values[pos[g]]), float(nxt.values[pos[g]]), lat, acc))
        cur = nxt
    return cur, steps


def accuracy_predictor(
    space: SearchSpace, archs: Sequence[Architecture], accuracy: Sequence[float] | np.ndarray
) -> Callable[[Architecture], float]:
    """A ridge regression of accuracy on the space's feature vectors, fitted on evaluated
    architectures: the cheap accuracy estimate channel scaling compares many neighbours with."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = space.feature_matrix(list(archs))
    reg = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 3, 12)))
    reg.fit(x, np.asarray(accuracy, dtype=float))

    def predict(arch: Architecture) -> float:
        return float(reg.predict(space.features(arch)[None, :])[0])

    return predict


def distinct_operator_configs(
    space: SearchSpace, records: Sequence[EvalRecord], n: int
) -> list[EvalRecord]:
    """The ``n`` most accurate evaluated networks with distinct operator configurations (the
    ``.op`` genes), over budget or not: channel scaling brings each to the budget from below
    (down if over, up while it pays)."""
    op_idx = [i for i, g in enumerate(space.gene_names) if g.endswith(".op")]
    picked: list[EvalRecord] = []
    seen_ops: set[tuple[Any, ...]] = set()
    for r in sorted(records, key=lambda r: (-r.accuracy, r.latency_ms, r.key)):
        ops = tuple(r.arch.values[i] for i in op_idx)
        if ops not in seen_ops:
            seen_ops.add(ops)
            picked.append(r)
        if len(picked) >= n:
            break
    return picked
