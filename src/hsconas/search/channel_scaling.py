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


CHANNEL_MARKERS: tuple[str, ...] = ("channel", "factor", "width", "expand", ".w")
"""Name parts of channel-like genes: the scaling factors of ``hsconas``, the expand ratios of
``ofa-mbv3``/``proxylessnas``, the widths and expand ratios of ``ofa-resnet50`` (``stem.w0``)."""


def channel_genes(space: SearchSpace, markers: Sequence[str] = CHANNEL_MARKERS) -> list[str]:
    """Genes whose name contains one of ``markers`` (``u1.l1.factor``, ``u2.l3.expand``) and whose
    choices are numbers."""
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


# ---------------------------------------------------------------------- the operator inside the EA
class CodeScaler:
    """Dynamic channel scaling of many gene-code rows at once: the operator the HSCoNAS EA applies
    to its offspring.

    :meth:`fit` fits two additive models on the evaluated architectures (ridge regressions of
    latency in ms and of accuracy on the one-hot encoding of the *active* genes); :meth:`scale`
    then moves, row by row and one step at a time, the channel genes (:func:`channel_genes`) of each
    offspring: while the predicted latency is over the budget, the move that loses the least
    predicted accuracy per ms saved; then, while a raise still fits under the budget, the move with
    the highest predicted accuracy gain per ms. Only active genes move, and only to the adjacent
    choice (by value) that the current (possibly shrunk) space allows. Additive models make every
    candidate move a table look-up, so thousands of offspring are scaled in milliseconds.

    Args:
        space: the unrestricted space of the codes.
        codec: its gene codec.
        genes: channel gene names (default :func:`channel_genes`).
        alpha: ridge penalty of both models.
    """

    def __init__(
        self,
        space: SearchSpace,
        codec: Any,
        *,
        genes: Sequence[str] | None = None,
        alpha: float = 1.0,
    ) -> None:
        self.space = space
        self.codec = codec
        names = list(space.gene_names)
        chosen = list(genes) if genes is not None else channel_genes(space)
        self.positions = [names.index(g) for g in chosen]
        self.alpha = alpha
        self._w_lat: list[np.ndarray] = []
        self._w_acc: list[np.ndarray] = []
        self._b_lat = 0.0
        self._b_acc = 0.0
        self._up: dict[int, np.ndarray] = {}
        self._down: dict[int, np.ndarray] = {}

    @property
    def active(self) -> bool:
        """Whether the space has channel genes (NB201 has none: the operator never runs)."""
        return bool(self.positions)

    def active_mask(self, codes: np.ndarray) -> np.ndarray:
        """Which genes of each row are active (boolean, shape of ``codes``)."""
        if self.codec.simple:
            return np.ones(codes.shape, dtype=bool)
        archs = self.codec.decode(codes)
        return np.array([self.space.active_mask(a.values) for a in archs], dtype=bool)

    def _design(self, codes: np.ndarray, active: np.ndarray) -> np.ndarray:
        X = np.zeros((len(codes), int(self.codec.n_choices.sum())))
        rows = np.arange(len(codes))
        for g in range(codes.shape[1]):
            X[rows, self.codec.offsets[g] + codes[:, g]] = active[:, g]
        return X

    def fit(self, codes: np.ndarray, latency_ms: np.ndarray, accuracy: np.ndarray) -> CodeScaler:
        """Fit the additive latency (ms) and accuracy models on evaluated codes."""
        from sklearn.linear_model import Ridge

        X = self._design(codes, self.active_mask(codes))
        split = np.cumsum(self.codec.n_choices)[:-1]
        for y, which in ((latency_ms, "lat"), (accuracy, "acc")):
            m = Ridge(alpha=self.alpha).fit(X, np.asarray(y, dtype=np.float64))
            w = np.split(np.asarray(m.coef_, dtype=np.float64), split)
            if which == "lat":
                self._w_lat, self._b_lat = w, float(m.intercept_)
            else:
                self._w_acc, self._b_acc = w, float(m.intercept_)
        return self

    def set_allowed(self, allowed: Sequence[np.ndarray]) -> None:
        """The choices each gene may take (the codec's masks of the current space): adjacent
        moves skip choices that are not allowed."""
        self._up, self._down = {}, {}
        for g in self.positions:
            choices = self.codec.genes[g].choices
            ok = [k for k in range(len(choices)) if allowed[g][k]]
            order = sorted(ok, key=lambda k: float(choices[k]))
            up = np.full(len(choices), -1, dtype=np.int64)
            down = np.full(len(choices), -1, dtype=np.int64)
            for i, k in enumerate(order):
                if i + 1 < len(order):
                    up[k] = order[i + 1]
                if i > 0:
                    down[k] = order[i - 1]
            self._up[g], self._down[g] = up, down

    def predict(
        self, codes: np.ndarray, active: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(predicted latency ms, predicted accuracy) of each row by the additive models."""
        act = self.active_mask(codes) if active is None else active
        lat = np.full(len(codes), self._b_lat)
        acc = np.full(len(codes), self._b_acc)
        for g in range(codes.shape[1]):
            lat += self._w_lat[g][codes[:, g]] * act[:, g]
            acc += self._w_acc[g][codes[:, g]] * act[:, g]
        return lat, acc

    def scale(
        self, codes: np.ndarray, budget_ms: float, *, max_steps: int | None = None
    ) -> np.ndarray:
        """Scaled copies of ``codes`` (rows that cannot move come back unchanged).

        Args:
            codes: offspring codes, shape (n, genes).
            budget_ms: the latency budget (ms) the rows approach from below.
            max_steps: moves per row at most (default: twice the number of channel genes).
        """
        if not self.positions or len(codes) == 0 or not self._w_lat:
            return codes.copy()
        out = codes.copy()
        act = self.active_mask(out)
        lat, _ = self.predict(out, act)
        steps = 2 * len(self.positions) if max_steps is None else max_steps
        rows = np.arange(len(out))
        for _ in range(steps):
            over = lat > budget_ms
            best = np.full(len(out), -np.inf)
            best_gene = np.full(len(out), -1, dtype=np.int64)
            best_code = np.zeros(len(out), dtype=np.int64)
            best_dl = np.zeros(len(out))
            for g in self.positions:
                cur = out[:, g]
                for table in (self._down[g], self._up[g]):
                    new = table[cur]
                    ok = act[:, g] & (new >= 0)
                    safe = np.where(ok, new, cur)
                    dl = self._w_lat[g][safe] - self._w_lat[g][cur]
                    da = self._w_acc[g][safe] - self._w_acc[g][cur]
                    with np.errstate(divide="ignore", invalid="ignore"):
                        down_score = np.where(
                            dl < 0, da / -dl, -np.inf
                        )  # accuracy kept per ms saved
                        up_ok = (dl > 0) & (da > 0) & (lat + dl <= budget_ms)
                        up_score = np.where(up_ok, da / dl, -np.inf)  # accuracy gained per ms
                    score = np.where(ok, np.where(over, down_score, up_score), -np.inf)
                    better = score > best
                    best = np.where(better, score, best)
                    best_gene = np.where(better, g, best_gene)
                    best_code = np.where(better, safe, best_code)
                    best_dl = np.where(better, dl, best_dl)
            moving = np.isfinite(best)
            if not moving.any():
                break
            r = rows[moving]
            out[r, best_gene[moving]] = best_code[moving]
            lat = lat + np.where(moving, best_dl, 0.0)
        return out
