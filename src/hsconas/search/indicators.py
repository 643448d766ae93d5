"""Pareto tools: non-dominated sorting, crowding distance, the exact front of a table, and the
quality indicators used to score searches (hypervolume ratio, front share, IGD, regret).

Conventions: every objective array ``F`` has shape (n, m) and is *minimised*. For the accuracy-
latency problem we use ``F = [-accuracy, latency_ms]`` (:func:`objectives`).

Normalisation (hypervolume, IGD): objectives are scaled by the TRUE front's ideal point ``z*`` and
nadir point ``z_nad`` to ``(F - z*) / (z_nad - z*)``; the hypervolume reference point is the nadir
plus 1% of the range, i.e. ``1.01`` in every normalised coordinate. Points beyond the reference
point add nothing. The HV ratio of a found set is ``HV(found) / HV(true front)`` (1.0 = perfect).

Front share: the true front is the set of distinct non-dominated objective *vectors*
``(accuracy, latency_ms)`` of the table. A true-front vector counts as found when some evaluated
architecture has exactly that vector (NAS-Bench-201 has isomorphic cells with equal accuracy; any
of them counts for the point). The share is the fraction of true-front vectors found. Because an
evaluated architecture with a true-front vector is never dominated by another evaluated one, this
equals the share found in the search's own non-dominated set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


def objectives(accuracy: npt.ArrayLike, latency_ms: npt.ArrayLike) -> np.ndarray:
    """Minimisation matrix ``[-accuracy, latency_ms]``, shape (n, 2)."""
    acc = np.asarray(accuracy, dtype=np.float64).reshape(-1)
    lat = np.asarray(latency_ms, dtype=np.float64).reshape(-1)
    return np.column_stack([-acc, lat])


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` Pareto-dominates ``b`` (minimisation): no worse anywhere, better somewhere."""
    return bool(np.all(a <= b) and np.any(a < b))


def non_dominated_sort(F: np.ndarray) -> list[np.ndarray]:
    """Fronts of ``F`` (fast non-dominated sort, Deb et al. 2002).

    Returns:
        Index arrays, front 0 first; every index appears in exactly one front. Points in front k
        are dominated only by points of fronts < k, and every point of front k > 0 is dominated by
        some point of front k - 1. Equal points share a front.
    """
    F = np.asarray(F, dtype=np.float64)
    n = len(F)
    if n == 0:
        return []
    if F.shape[1] == 2:
        return _nds_2d(F)
    le = np.all(F[:, None, :] <= F[None, :, :], axis=2)
    lt = np.any(F[:, None, :] < F[None, :, :], axis=2)
    dom = le & lt  # dom[i, j]: i dominates j
    count = dom.sum(axis=0)
    fronts: list[np.ndarray] = []
    current = np.flatnonzero(count == 0)
    while len(current):
        fronts.append(current)
        count = count - dom[current].sum(axis=0)
        count[np.concatenate(fronts)] = -1
        current = np.flatnonzero(count == 0)
    return fronts


def _nds_2d(F: np.ndarray) -> list[np.ndarray]:
    """Non-dominated sorting for two objectives in O(n log n) per front."""
    order = np.lexsort((F[:, 1], F[:, 0]))  # by f0 then f1
    rank = np.full(len(F), -1)
    # each front's "best f1 so far" staircase; assign each point to the first front it is not
    # dominated in (points sorted by f0, ties by f1)
    tails_f1: list[float] = []
    tails_f0: list[float] = []
    for i in order:
        f0, f1 = F[i]
        # binary search: first front whose last f1 > f1, or equal point (same f0 & f1 -> same front)
        lo, hi = 0, len(tails_f1)
        while lo < hi:
            mid = (lo + hi) // 2
            t0, t1 = tails_f0[mid], tails_f1[mid]
            dominated = (t1 < f1) or (t1 == f1 and t0 < f0)
            if dominated:
                lo = mid + 1
            else:
                hi = mid
        if lo == len(tails_f1):
            tails_f1.append(f1)
            tails_f0.append(f0)
        else:
            tails_f1[lo] = f1
            tails_f0[lo] = f0
        rank[i] = lo
    return [np.flatnonzero(rank == k) for k in range(int(rank.max()) + 1)]


def pareto_mask(F: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``F``."""
    mask = np.zeros(len(F), dtype=bool)
    if len(F):
        mask[non_dominated_sort(F)[0]] = True
    return mask


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of the points of one front (boundary points get ``inf``)."""
    F = np.asarray(F, dtype=np.float64)
    n, m = F.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(F[:, j], kind="stable")
        span = F[order[-1], j] - F[order[0], j]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span <= 0:
            continue
        dist[order[1:-1]] += (F[order[2:], j] - F[order[:-2], j]) / span
    return dist


@dataclass(frozen=True)
class TrueFront:
    """The exact accuracy-latency front of a table, with its normalisation.

    Attributes:
        accuracy: accuracy of every table row, percent.
        latency_ms: latency of every table row, ms.
        front_idx: rows on the true front (every row whose vector is non-dominated).
        points: distinct non-dominated ``(accuracy, latency_ms)`` vectors, by latency.
        ideal: ideal point of the minimisation objectives ``[-acc, lat]``.
        nadir: nadir point of the front.
    """

    accuracy: np.ndarray
    latency_ms: np.ndarray
    front_idx: np.ndarray
    points: np.ndarray
    ideal: np.ndarray
    nadir: np.ndarray

    @classmethod
    def from_table(cls, accuracy: np.ndarray, latency_ms: np.ndarray) -> TrueFront:
        acc = np.asarray(accuracy, dtype=np.float64)
        lat = np.asarray(latency_ms, dtype=np.float64)
        F = objectives(acc, lat)
        idx = np.flatnonzero(pareto_mask(F))
        pts = np.unique(np.column_stack([acc[idx], lat[idx]]), axis=0)
        pts = pts[np.argsort(pts[:, 1], kind="stable")]
        Ff = objectives(pts[:, 0], pts[:, 1])
        return cls(acc, lat, idx, pts, Ff.min(axis=0), Ff.max(axis=0))

    @property
    def n_points(self) -> int:
        return len(self.points)

    def normalise(self, F: np.ndarray) -> np.ndarray:
        span = np.where(self.nadir > self.ideal, self.nadir - self.ideal, 1.0)
        return (np.asarray(F, dtype=np.float64) - self.ideal) / span

    def hypervolume(self, accuracy: npt.ArrayLike, latency_ms: npt.ArrayLike) -> float:
        """Normalised hypervolume of a set of points (reference point 1.01 per axis)."""
        F = objectives(np.asarray(accuracy, float), np.asarray(latency_ms, float))
        return hypervolume(self.normalise(F), np.array([1.01, 1.01]))

    @property
    def true_hypervolume(self) -> float:
        return self.hypervolume(self.points[:, 0], self.points[:, 1])

    def hv_ratio(self, accuracy: npt.ArrayLike, latency_ms: npt.ArrayLike) -> float:
        """Hypervolume of the found points over that of the true front, in [0, 1]."""
        return self.hypervolume(accuracy, latency_ms) / self.true_hypervolume

    def found(self, accuracy: npt.ArrayLike, latency_ms: npt.ArrayLike) -> np.ndarray:
        """Whether each true-front vector (``points``, by latency) is among the given points."""
        seen = set(
            zip(
                np.asarray(accuracy, float).ravel().tolist(),
                np.asarray(latency_ms, float).ravel().tolist(),
                strict=True,
            )
        )
        return np.array([(a, la) in seen for a, la in self.points.tolist()], dtype=bool)

    def front_share(self, accuracy: npt.ArrayLike, latency_ms: npt.ArrayLike) -> float:
        """Share of true-front vectors present among the given points (see the module doc)."""
        if np.asarray(accuracy).size == 0:
            return 0.0
        return int(self.found(accuracy, latency_ms).sum()) / self.n_points

    def igd(self, accuracy: npt.ArrayLike, latency_ms: npt.ArrayLike) -> float:
        """Inverted generational distance (normalised objectives) of the found points' front."""
        return igd(
            self.normalise(objectives(accuracy, latency_ms)),
            self.normalise(objectives(self.points[:, 0], self.points[:, 1])),
        )

    def best_under(self, budget_ms: float) -> float | None:
        """The best accuracy of any row with latency <= budget, or ``None``."""
        ok = self.latency_ms <= budget_ms
        return float(self.accuracy[ok].max()) if ok.any() else None

    def regret(self, accuracy: npt.ArrayLike, latency_ms: npt.ArrayLike, budget_ms: float) -> float:
        """True best accuracy under the budget minus the best found under it (percent points).

        ``nan`` if nothing in the table meets the budget; the whole true best if the found set has
        nothing under the budget.
        """
        best = self.best_under(budget_ms)
        if best is None:
            return float("nan")
        acc = np.asarray(accuracy, float)
        ok = np.asarray(latency_ms, float) <= budget_ms
        found = float(acc[ok].max()) if ok.any() else 0.0
        return best - found


def hypervolume(F: np.ndarray, ref_point: np.ndarray) -> float:
    """Hypervolume dominated by ``F`` (minimisation) up to ``ref_point`` (pymoo's HV indicator)."""
    from pymoo.indicators.hv import HV

    F = np.asarray(F, dtype=np.float64)
    F = F[np.all(ref_point > F, axis=1)]
    if len(F) == 0:
        return 0.0
    return float(HV(ref_point=np.asarray(ref_point, dtype=np.float64))(F))


def hypervolume_2d(F: np.ndarray, ref_point: np.ndarray) -> float:
    """Exact two-objective hypervolume (fast path used inside searches; equals :func:`hypervolume`)."""
    F = np.asarray(F, dtype=np.float64)
    F = F[np.all(ref_point > F, axis=1)]
    if len(F) == 0:
        return 0.0
    F = F[np.lexsort((F[:, 1], F[:, 0]))]
    hv, best1 = 0.0, float(ref_point[1])
    for i in range(len(F)):
        f0, f1 = F[i]
        if f1 < best1:  # a horizontal slab between this f1 and the previous best f1
            hv += (float(ref_point[0]) - f0) * (best1 - f1)
            best1 = f1
    return hv


def igd(F: np.ndarray, reference: np.ndarray) -> float:
    """Mean distance from each reference point to its nearest point of the non-dominated part of F."""
    F = np.asarray(F, dtype=np.float64)
    if len(F) == 0:
        return float("inf")
    F = F[pareto_mask(F)]
    d = np.sqrt(((reference[:, None, :] - F[None, :, :]) ** 2).sum(axis=2))
    return float(d.min(axis=1).mean())


def normalised_hypervolume(
    acc: np.ndarray, lat: np.ndarray, bounds: tuple[float, float, float, float]
) -> float:
    """Hypervolume of (accuracy, latency) points normalised to the unit box (ref 1.01, 1.01)."""
    a_lo, a_hi, l_lo, l_hi = bounds
    if acc.size == 0:
        return 0.0
    F = objectives(acc, lat)  # (-accuracy, latency), minimised
    lo = np.array([-a_hi, l_lo])
    hi = np.array([-a_lo, l_hi])
    Fn = (F - lo) / np.maximum(hi - lo, 1e-12)
    return float(hypervolume_2d(Fn, np.array([1.01, 1.01])))
