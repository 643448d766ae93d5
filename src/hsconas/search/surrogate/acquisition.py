"""Acquisition quantities of the surrogate-assisted selection (two objectives: accuracy up,
latency down): the probability of not being dominated, the hypervolume improvement, the epsilon
gap to a front, greedy batches by non-domination probability, the probability of meeting a
latency budget and greedy batches by probability of a feasible improvement, and the step in which
a device reports latency. Pure numpy; no fitting.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from hsconas.search.indicators import non_dominated_sort
from hsconas.search.surrogate.models import ErrorLogScale, robust_sd


def hv_improvement(C: np.ndarray, front: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Two-objective hypervolume each row of ``C`` would add to ``front`` (minimisation)."""
    P = front[np.all(front < ref, axis=1)]
    P = P[np.lexsort((P[:, 1], P[:, 0]))]
    if len(P):  # keep the staircase only (non-dominated, f1 decreasing)
        keep = np.r_[True, P[1:, 1] < np.minimum.accumulate(P[:, 1])[:-1]]
        P = P[keep]
    edges = np.r_[-np.inf, P[:, 0], ref[0]]
    heights = np.r_[ref[1], P[:, 1]]
    left = np.maximum(edges[None, :-1], C[:, :1])
    width = np.clip(edges[None, 1:] - left, 0.0, None)
    height = np.clip(heights[None, :] - C[:, 1:2], 0.0, None)
    return (width * height).sum(axis=1)


def epsilon_gap(C: np.ndarray, front: np.ndarray) -> np.ndarray:
    """Smallest shift ``t`` so that ``C - t`` is not dominated by ``front`` (0 if not dominated)."""
    diff = C[:, None, :] - front[None, :, :]
    return np.clip(diff.min(axis=2).max(axis=1), 0.0, None)


def prob_non_dominated(
    mu: np.ndarray,
    sd: np.ndarray,
    lat_mu: np.ndarray,
    lat_sd: float,
    acc: np.ndarray,
    lat: np.ndarray,
    lat_quantum: float = 0.0,
) -> np.ndarray:
    """Probability that a candidate with accuracy ~ N(mu, sd) and latency ~ N(lat_mu, lat_sd)
    is not dominated by the points (acc, lat) (accuracy maximised, latency minimised).

    The known points' staircase splits the latency axis into intervals ``[l_j, l_{j+1})`` on
    which the accuracy to beat is the best accuracy at latency <= l_j; the probability sums, over
    the intervals, P(latency in the interval) x P(accuracy above that level).

    ``lat_quantum`` > 0: latencies are reported in steps of that size (ms), so a candidate ties
    a known point's latency whenever its latent latency rounds to it, and then has to beat that
    point's accuracy; the intervals start half a step early.
    """
    order = np.argsort(lat, kind="stable")
    la, best = lat[order], np.maximum.accumulate(acc[order])
    keep = np.r_[True, best[1:] > best[:-1]]  # the staircase's steps only
    la, best = la[keep] - lat_quantum / 2, best[keep]
    edges = np.r_[la, np.inf]
    cdf = special.ndtr((edges[None, :] - lat_mu[:, None]) / lat_sd)  # P(L < edge)
    p = cdf[:, 0].copy()  # faster than every known point: never dominated
    in_bin = np.diff(cdf, axis=1)
    above = special.ndtr((mu[:, None] - best[None, :]) / sd[:, None])
    p += (in_bin * above).sum(axis=1)
    return p


def non_dominated_batch(
    mu: np.ndarray,
    sd: np.ndarray,
    lat_mu: np.ndarray,
    lat_sd: float,
    acc: np.ndarray,
    lat: np.ndarray,
    k: int,
    lat_quantum: float = 0.0,
) -> list[int]:
    """Indices of ``k`` candidates picked greedily by :func:`prob_non_dominated` against the
    known points (acc, lat). Each pick joins the known points with its predicted values (a
    fantasy) before the next pick, which spreads the batch along the front. ``lat_quantum`` is
    the reporting step of the known latencies (detect it before any fantasy joins them).
    """
    acc_known, lat_known = list(acc), list(lat)
    chosen: list[int] = []
    avail = np.ones(len(mu), dtype=bool)
    sd = np.maximum(sd, 1e-9)
    lat_sd = max(lat_sd, 1e-9)
    for _ in range(min(k, len(mu))):
        p = prob_non_dominated(
            mu,
            sd,
            lat_mu,
            lat_sd,
            np.asarray(acc_known),
            np.asarray(lat_known),
            lat_quantum=lat_quantum,
        )
        p[~avail] = -np.inf
        i = int(np.argmax(p))
        chosen.append(i)
        avail[i] = False
        acc_known.append(float(mu[i]))
        lat_known.append(float(lat_mu[i]))
    return chosen


def latency_quantum(lat_ms: np.ndarray) -> float:
    """The step in which latencies are reported (ms), or 0 if they look continuous.

    Some devices report whole milliseconds (the HELP phone columns): then every value is a
    multiple of the smallest gap between distinct values. At least three distinct values are
    needed to tell.
    """
    values = np.unique(np.asarray(lat_ms, dtype=np.float64))
    if len(values) < 3:
        return 0.0
    step = float(np.diff(values).min())
    ratio = values / step
    on_grid = np.abs(ratio - np.round(ratio)) <= 1e-6 * np.maximum(np.abs(ratio), 1.0)
    return step if bool(np.all(on_grid)) else 0.0


def feasible_probability(
    lat_pred: np.ndarray,
    budget_ms: float,
    residuals: np.ndarray,
    *,
    quantum: float = 0.0,
    empirical: bool = True,
) -> np.ndarray:
    """Probability that each candidate's latency is within ``budget_ms``.

    Args:
        lat_pred: predicted latencies, ms.
        budget_ms: the latency budget, ms.
        residuals: the latency model's errors on known points (measured minus predicted), ms;
            their robust sd is the Gaussian's.
        quantum: step in which latencies are reported (ms; 0: continuous). A candidate is then
            feasible when its latency rounds to at most the budget.
        empirical: use the residuals' own distribution (at most 200 quantiles), smoothed by a
            Gaussian kernel of a fifth of their robust sd, instead of a Gaussian. Their spread
            is not Gaussian on every device: phones that sometimes drop dead code run some
            cells far faster. With fewer than 10 residuals the Gaussian is used.
    """
    if quantum > 0:
        budget_ms = float(np.floor(budget_ms / quantum + 1e-9) * quantum + quantum / 2)
    sl = max(robust_sd(residuals), 1e-9)
    if not empirical or len(residuals) < 10:
        return special.ndtr((budget_ms - lat_pred) / sl)
    r = np.quantile(residuals, (np.arange(200) + 0.5) / 200)
    z = (budget_ms - lat_pred[:, None] - r[None, :]) / (0.2 * sl)
    return special.ndtr(z).mean(axis=1)


def feasible_improvement_batch(
    mu: np.ndarray,
    sd: np.ndarray,
    lat_pred: np.ndarray,
    p_feasible: np.ndarray,
    budget_ms: float,
    best: float,
    k: int,
) -> list[int]:
    """Greedy batch of ``k`` candidates by P(feasible) x P(accuracy > ``best``).

    ``best`` is the best known feasible accuracy (``-inf`` if none: then the most probably
    feasible, ties broken by predicted accuracy). Each pick predicted within the budget joins
    the incumbent as a fantasy at its predicted accuracy before the next pick.
    """
    sd = np.maximum(sd, 1e-9)
    chosen: list[int] = []
    avail = np.ones(len(mu), dtype=bool)
    for _ in range(min(k, len(mu))):
        score = p_feasible * special.ndtr((mu - best) / sd)
        if not np.isfinite(best):
            score = p_feasible * (1.0 + 1e-3 * (mu - mu.min()))
        score[~avail] = -np.inf
        i = int(np.argmax(score))
        chosen.append(i)
        avail[i] = False
        if lat_pred[i] <= budget_ms:
            best = max(best, float(mu[i]))
    return chosen


def hv_improvement_batch(
    acc_pred: np.ndarray, lat_pred: np.ndarray, acc: np.ndarray, lat: np.ndarray, k: int
) -> list[int]:
    """Greedy batch of ``k`` candidates by hypervolume improvement over the evaluated front
    (``acc`` %, ``lat`` ms), each pick joining the front; when no candidate improves it, the one
    closest to it (additive epsilon) is taken. Objectives are normalised to the evaluated range."""
    F = np.column_stack([-acc, lat])
    lo, hi = F.min(axis=0), F.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    ref = np.array([1.01, 1.01])
    front = (F[non_dominated_sort(F)[0]] - lo) / span
    C = (np.column_stack([-acc_pred, lat_pred]) - lo) / span
    chosen: list[int] = []
    avail = np.ones(len(C), dtype=bool)
    for _ in range(min(k, len(C))):
        hvi = hv_improvement(C, front, ref)
        hvi[~avail] = -np.inf
        if np.max(hvi) > 0:
            i = int(np.argmax(hvi))
        else:
            eps = epsilon_gap(C, front)
            eps[~avail] = np.inf
            i = int(np.argmin(eps))
        chosen.append(i)
        avail[i] = False
        front = np.vstack([front, C[i]])
        front = front[non_dominated_sort(front)[0]]
    return chosen


def on_error_log_scale(
    mu: np.ndarray, sd: np.ndarray, known: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidates' accuracy mean and sd and the known accuracies on the log error scale
    (:class:`~hsconas.search.surrogate.models.ErrorLogScale`, where the accuracy surrogate
    fits), on which the acquisition's Gaussian probabilities are taken.

    Only comparisons of accuracies enter those probabilities, so a monotone rescaling of
    every accuracy changes nothing but the shape of each candidate's distribution: the sd is
    divided by the slope at the mean, so a cell far below the front keeps the narrow
    distribution its model gave it, instead of a Gaussian on the accuracy scale whose upper
    tail, linearised at that low mean, reaches the front.
    """
    scale = ErrorLogScale(known)
    z = scale.forward(mu)
    return z, sd / scale.slope(z), scale.forward(known)
