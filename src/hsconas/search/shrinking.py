"""Progressive space shrinking: estimate each (gene, choice)'s marginal effect on accuracy and
latency from evaluated architectures, and drop choices dominated on the target device.

The estimator is an additive ridge regression on one-hot features (the same kind of estimator as
block profiling): the effect of a choice is its coefficient relative to the mean coefficient of its
gene, with a standard error ``residual_std / sqrt(n_choice)``. Choice ``c`` of a gene is dominated
when another choice ``d`` of the same gene is better on both objectives by more than ``z`` standard
errors of the difference (higher accuracy and lower latency). Each gene keeps at least
``min_choices`` choices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hsconas.search.surrogate.models import RidgeEnsemble
from hsconas.space import SearchSpace, Value
from hsconas.space.codec import GeneCodec, OneHotFeatures


@dataclass(frozen=True)
class ChoiceEffect:
    """Estimated marginal effect of one (gene, choice) relative to its gene's average.

    Attributes:
        gene: gene name.
        choice: the choice.
        accuracy: accuracy effect, percent points.
        latency_ms: latency effect, ms.
        accuracy_se: standard error of ``accuracy``, percent points.
        latency_se: standard error of ``latency_ms``, ms.
        n: number of evaluated architectures holding this choice.
    """

    gene: str
    choice: Value
    accuracy: float
    latency_ms: float
    accuracy_se: float
    latency_se: float
    n: int


def estimate_effects(
    space: SearchSpace,
    codes: np.ndarray,
    accuracy: np.ndarray,
    latency_ms: np.ndarray,
    *,
    alpha: float = 1.0,
) -> list[ChoiceEffect]:
    """Effects of every (gene, choice) of ``space.full_genes`` from evaluated architectures.

    Args:
        space: the space (its codec defines the columns).
        codes: gene codes of the evaluated architectures (:class:`GeneCodec`), shape (n, genes).
        accuracy: their accuracy, percent.
        latency_ms: their latency, ms.
        alpha: ridge penalty.
    """
    codec = GeneCodec(space)
    fmap = OneHotFeatures(codec, pairwise=False)
    X = fmap.transform(codes)
    out: list[ChoiceEffect] = []
    fits = []
    for y in (np.asarray(accuracy, float), np.asarray(latency_ms, float)):
        model = RidgeEnsemble(alpha=alpha, n_members=1).fit(X, y)
        resid = y - model.predict(X).mean
        dof = max(len(y) - int(codec.n_choices.sum()) + len(codec.n_choices) - 1, 1)
        sigma = float(np.sqrt((resid**2).sum() / dof))
        w, _ = model._coefs[0]
        fits.append((w, sigma))
    counts = X.sum(axis=0)
    for g, gene in enumerate(codec.genes):
        sl = slice(int(codec.offsets[g]), int(codec.offsets[g] + codec.n_choices[g]))
        wa, wl = fits[0][0][sl], fits[1][0][sl]
        for k, choice in enumerate(gene.choices):
            n = int(counts[sl][k])
            scale = 1.0 / np.sqrt(max(n, 1))
            out.append(
                ChoiceEffect(
                    gene.name, choice,
                    float(wa[k] - wa.mean()), float(wl[k] - wl.mean()),
                    fits[0][1] * scale, fits[1][1] * scale, n,
                )
            )  # fmt: skip
    return out


def dominated_choices(
    space: SearchSpace, effects: Sequence[ChoiceEffect], *, z: float = 2.0, min_choices: int = 2
) -> dict[str, list[Value]]:
    """Per gene, the choices of ``space`` to drop (clearly dominated), never below ``min_choices``.

    Choices dominated by several others are dropped first by the size of their worst margin.
    """
    by_gene: dict[str, list[ChoiceEffect]] = {}
    for e in effects:
        by_gene.setdefault(e.gene, []).append(e)
    drop: dict[str, list[Value]] = {}
    for gene in space.genes:
        live = [e for e in by_gene.get(gene.name, []) if e.choice in gene.choices]
        scored = []
        for c in live:
            margin = 0.0
            for d in live:
                if d is c or d.n == 0 or c.n == 0:
                    continue
                se_a = float(np.hypot(c.accuracy_se, d.accuracy_se))
                se_l = float(np.hypot(c.latency_se, d.latency_se))
                da = d.accuracy - c.accuracy
                dl = c.latency_ms - d.latency_ms
                if da > z * se_a and dl > z * se_l:
                    margin = max(margin, min(da / max(se_a, 1e-12), dl / max(se_l, 1e-12)))
            if margin > 0:
                scored.append((margin, c.choice))
        room = len(gene.choices) - min_choices
        if room <= 0 or not scored:
            continue
        scored.sort(key=lambda t: -t[0])
        drop[gene.name] = [c for _, c in scored[:room]]
    return drop


def shrink_space(space: SearchSpace, drop: dict[str, list[Value]]) -> SearchSpace:
    """``space`` restricted to the choices not in ``drop`` (unchanged genes keep theirs)."""
    allowed = {
        g.name: [c for c in g.choices if c not in drop.get(g.name, [])]
        for g in space.genes
        if drop.get(g.name)
    }
    if not allowed:
        return space
    keep = {**space.restriction(), **allowed}
    return space.restrict(keep)


def front_dominated_choices(
    space: SearchSpace,
    codes: np.ndarray,
    active: np.ndarray,
    accuracy: np.ndarray,
    latency_ms: np.ndarray,
    *,
    min_count: int = 8,
    margin: float = 0.1,
    min_choices: int = 2,
) -> dict[str, list[Value]]:
    """Per gene, the choices of ``space`` whose every evaluated network is clearly dominated.

    The evidence rule of progressive shrinking (the additive rule of :func:`dominated_choices`
    rarely fires on spaces where each larger choice buys accuracy with latency, such as
    OFA-MobileNetV3's kernels and expand ratios). For each evaluated network its *gap* is how far
    its accuracy falls below the best accuracy any evaluated network reaches at no higher latency
    (0 on the front). A (gene, choice) is dropped when at least ``min_count`` evaluated networks
    hold it in an active layer and every one of them has a gap above ``margin``; choices are
    dropped largest smallest-gap first, every gene keeps ``min_choices`` choices, and the first
    choice of a gene that was ever inactive (the value inactive layers hold) is never dropped.

    Args:
        space: the current (possibly already shrunk) space.
        codes: gene codes (:class:`GeneCodec` of ``space``), shape (n, genes).
        active: which genes were active in each network, bool, shape (n, genes).
        accuracy: accuracies, percent.
        latency_ms: latencies, ms.
        min_count: evaluated networks a choice needs before it can be judged.
        margin: confidence margin, accuracy points: every holder must trail the front by more.
        min_choices: choices every gene keeps.
    """
    acc = np.asarray(accuracy, float)
    lat = np.asarray(latency_ms, float)
    if len(acc) == 0:
        return {}
    order = np.argsort(lat, kind="stable")
    best_so_far = np.maximum.accumulate(acc[order])
    # ties in latency: the best accuracy among networks at exactly that latency counts too
    last = np.searchsorted(lat[order], lat, side="right") - 1
    gap = best_so_far[last] - acc
    codec = GeneCodec(space)
    drop: dict[str, list[Value]] = {}
    for g, gene in enumerate(space.genes):
        full = codec.genes[g].choices
        protect = full[0] if not bool(np.all(active[:, g])) else None
        scored = []
        for k, choice in enumerate(full):
            if choice not in gene.choices or choice == protect:
                continue
            held = (codes[:, g] == k) & active[:, g]
            if int(held.sum()) < min_count:
                continue
            smallest = float(gap[held].min())
            if smallest > margin:
                scored.append((smallest, choice))
        room = len(gene.choices) - min_choices
        if room <= 0 or not scored:
            continue
        scored.sort(key=lambda t: -t[0])
        drop[gene.name] = [c for _, c in scored[:room]]
    return drop


def merge_drops(
    space: SearchSpace,
    first: dict[str, list[Value]],
    second: dict[str, list[Value]],
    min_choices: int,
) -> dict[str, list[Value]]:
    """Union of two drop lists per gene (``first``'s choices first), every gene keeping
    ``min_choices`` choices of ``space``."""
    out: dict[str, list[Value]] = {}
    for gene in space.genes:
        merged: list[Value] = []
        for c in [*first.get(gene.name, []), *second.get(gene.name, [])]:
            if c not in merged:
                merged.append(c)
        room = len(gene.choices) - min_choices
        if merged and room > 0:
            out[gene.name] = merged[:room]
    return out
