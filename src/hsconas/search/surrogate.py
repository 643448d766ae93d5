"""Cheap predictors fitted on the architectures a search has queried (no torch).

Architectures are encoded as integer choice codes per gene (:class:`GeneCodec`); features are the
one-hot encoding of every gene plus, optionally, the one-hot encoding of every *pair* of genes (the
interaction of two layers' choices). :class:`RidgeEnsemble` fits closed-form ridge regressions on
bootstrap resamples: the mean is the prediction and the spread across members an uncertainty.

On NAS-Bench-201 the latency of a cell is nearly additive in per-edge op costs, so a ridge model on
one-hot features is close to exact after a few dozen queries; accuracy needs the pairwise terms.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hsconas.space import Architecture, SearchSpace
from hsconas.space.core import _same_value


class GeneCodec:
    """Maps architectures to integer codes (index of each gene's value in the *full* choices).

    Args:
        space: the space (restricted or not; codes always refer to the unrestricted choices).
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.genes = space.full_genes
        self.n_choices = np.array([len(g.choices) for g in self.genes], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.n_choices)[:-1]])
        self._lookup = [{c: k for k, c in enumerate(g.choices)} for g in self.genes]
        self.simple = (
            type(space).active_mask is SearchSpace.active_mask
            and type(space)._check is SearchSpace._check
        )

    def _code(self, gene: int, value: object) -> int:
        table = self._lookup[gene]
        if value in table:
            return table[value]
        for c, k in table.items():
            if _same_value(c, value):
                return k
        raise KeyError(value)

    def encode(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Codes of ``archs``, shape (n, n_genes), int64."""
        out = np.empty((len(archs), len(self.genes)), dtype=np.int64)
        for i, a in enumerate(archs):
            for g, v in enumerate(a.values):
                out[i, g] = self._code(g, v)
        return out

    def decode(self, codes: np.ndarray) -> list[Architecture]:
        """Architectures of codes (canonicalised; no validity check)."""
        name = self.space.name
        choices = [g.choices for g in self.genes]
        out = []
        for row in np.asarray(codes):
            values = tuple(choices[g][int(k)] for g, k in enumerate(row))
            if not self.simple:
                values = self.space._canonical(values)
            out.append(Architecture(name, values))
        return out

    def allowed_mask(self, space: SearchSpace) -> list[np.ndarray]:
        """Per gene, a boolean mask over the full choices of those allowed in ``space``."""
        masks = []
        for g_full, g in zip(self.genes, space.genes, strict=True):
            masks.append(
                np.array([any(_same_value(c, v) for v in g.choices) for c in g_full.choices])
            )
        return masks

    def valid(self, codes: np.ndarray, space: SearchSpace) -> np.ndarray:
        """Which rows of ``codes`` are members of ``space`` (fast for spaces without constraints)."""
        masks = self.allowed_mask(space)
        ok = np.ones(len(codes), dtype=bool)
        for g, m in enumerate(masks):
            ok &= m[codes[:, g]]
        if not self.simple:
            archs = self.decode(codes)
            ok &= np.array([space.contains(a) for a in archs], dtype=bool)
        return ok

    def keys(self, codes: np.ndarray) -> np.ndarray:
        """One integer per row identifying the code vector (mixed-radix), for fast dedupe."""
        radix = np.concatenate([[1], np.cumprod(self.n_choices[::-1])[:-1]])[::-1]
        return np.asarray(codes, dtype=np.int64) @ radix


class FeatureMap:
    """One-hot (and optionally pairwise one-hot) features of gene codes.

    Args:
        codec: the gene codec.
        pairwise: add one column per (gene_i=a, gene_j=b) pair, i < j.
    """

    def __init__(self, codec: GeneCodec, *, pairwise: bool = True) -> None:
        self.codec = codec
        self.pairwise = pairwise
        n = codec.n_choices
        self.pairs = list(itertools.combinations(range(len(n)), 2)) if pairwise else []
        offs, start = [], int(n.sum())
        for i, j in self.pairs:
            offs.append(start)
            start += int(n[i] * n[j])
        self.pair_offsets = np.array(offs, dtype=np.int64)
        self.n_features = start

    def transform(self, codes: np.ndarray) -> np.ndarray:
        """Dense 0/1 feature matrix, shape (n, n_features), float64."""
        codes = np.asarray(codes, dtype=np.int64)
        X = np.zeros((len(codes), self.n_features))
        rows = np.arange(len(codes))
        for g in range(codes.shape[1]):
            X[rows, self.codec.offsets[g] + codes[:, g]] = 1.0
        nch = self.codec.n_choices
        for p, (i, j) in enumerate(self.pairs):
            X[rows, self.pair_offsets[p] + codes[:, i] * nch[j] + codes[:, j]] = 1.0
        return X


@dataclass(frozen=True)
class Prediction:
    """Mean and standard deviation of an ensemble prediction (units of the target)."""

    mean: np.ndarray
    std: np.ndarray


class RidgeEnsemble:
    """Bootstrap ensemble of closed-form ridge regressions.

    Args:
        alpha: L2 penalty (features are 0/1 columns; the target is centred).
        n_members: ensemble size; 1 fits the full data once (std is then zero).
        seed: seed of the bootstrap resampling.
    """

    def __init__(self, *, alpha: float = 1.0, n_members: int = 5, seed: int = 0) -> None:
        if alpha <= 0 or n_members < 1:
            raise ValueError("alpha must be > 0 and n_members >= 1")
        self.alpha = alpha
        self.n_members = n_members
        self.seed = seed
        self._coefs: list[tuple[np.ndarray, float]] = []

    @staticmethod
    def _solve(X: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
        mu_x = X.mean(axis=0)
        mu_y = float(y.mean())
        Xc = X - mu_x
        n, d = Xc.shape
        if n < d:  # dual form: (Xc Xc^T + aI) c = y
            K = Xc @ Xc.T
            c = np.linalg.solve(K + alpha * np.eye(n), y - mu_y)
            w = Xc.T @ c
        else:
            w = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(d), Xc.T @ (y - mu_y))
        return w, mu_y - float(mu_x @ w)

    def fit(self, X: np.ndarray, y: np.ndarray) -> RidgeEnsemble:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        rng = np.random.default_rng(self.seed)
        self._coefs = [self._solve(X, y, self.alpha)]
        for _ in range(self.n_members - 1):
            idx = rng.integers(0, len(y), len(y))
            self._coefs.append(self._solve(X[idx], y[idx], self.alpha))
        return self

    def predict(self, X: np.ndarray) -> Prediction:
        if not self._coefs:
            raise RuntimeError("fit the ensemble first")
        preds = np.stack([X @ w + b for w, b in self._coefs])
        mean = preds[0] if len(preds) == 1 else preds.mean(axis=0)
        std = preds.std(axis=0) if len(preds) > 1 else np.zeros(len(X))
        return Prediction(mean, std)


def inflated_residuals(model: RidgeEnsemble, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Measured minus predicted values of the rows ``X`` the model was fitted on (units of ``y``),
    inflated for its degrees of freedom: in-sample residuals understate the error on new rows."""
    inflate = np.sqrt(len(y) / max(len(y) - X.shape[1], 1))
    return np.asarray((y - model.predict(X).mean) * inflate)


def loo_residuals(model: RidgeEnsemble, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Leave-one-out residuals (units of ``y``) of a single ridge fitted on the rows ``X``
    (``n_members=1``, centred, penalty ``model.alpha``): the error each row would have if the
    model had been fitted on the others, ``e_i / (1 - h_ii)`` with ``h_ii`` the leverage of row
    ``i`` (exact, no refitting).

    The honest estimate of the error on new rows. Inflating every in-sample residual by the
    column count's degrees of freedom instead (:func:`inflated_residuals`) treats a penalised
    column as a free one: with 95 columns mostly held down by the penalty and 100 rows it
    overstates the error several times over.

    Raises:
        ValueError: a bootstrap ensemble (its mean is not the fit on all rows).
    """
    if model.n_members != 1:
        raise ValueError("loo_residuals needs a single ridge fitted on all rows (n_members=1)")
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    Xc = X - X.mean(axis=0)
    if n <= d:  # hat matrix of the dual form: K (K + aI)^-1
        K = Xc @ Xc.T
        lev = np.diag(K @ np.linalg.inv(K + model.alpha * np.eye(n)))
    else:
        inv = np.linalg.inv(Xc.T @ Xc + model.alpha * np.eye(d))
        lev = np.einsum("ij,jk,ik->i", Xc, inv, Xc)
    lev = lev + 1.0 / n  # the intercept
    resid = np.asarray(y, dtype=np.float64) - model.predict(X).mean
    return np.asarray(resid / np.maximum(1.0 - lev, 1e-6))


def robust_sd(residuals: np.ndarray) -> float:
    """Standard deviation from the median absolute residual (Gaussian scale; 0 with none), so
    that a few outlying measurements do not blur every prediction."""
    if len(residuals) == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(residuals)))


def gp_posterior(gp: Any, Xp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and standard deviation of a fitted scikit-learn
    ``GaussianProcessRegressor`` with kernel ``Constant * RBF + White`` and ``normalize_y=False``,
    as ``gp.predict(Xp, return_std=True)`` computes them (observation noise included), but with
    the squared distances taken by one matrix product instead of ``cdist`` (several times faster
    for a whole-space pool of wide feature vectors). Only public fitted attributes are read.

    Raises:
        ValueError: a GP fitted with ``normalize_y=True``.
    """
    from scipy.linalg import solve_triangular

    if gp.normalize_y:
        raise ValueError("gp_posterior needs normalize_y=False (normalise the targets yourself)")
    (const, rbf), white = (gp.kernel_.k1.k1, gp.kernel_.k1.k2), gp.kernel_.k2
    scale = np.asarray(rbf.length_scale, dtype=np.float64)
    A, B = Xp / scale, gp.X_train_ / scale
    d2 = (A * A).sum(axis=1)[:, None] + (B * B).sum(axis=1)[None, :] - 2.0 * (A @ B.T)
    K = const.constant_value * np.exp(-0.5 * np.maximum(d2, 0.0))
    mean = np.asarray(K @ gp.alpha_).reshape(-1)
    V = solve_triangular(gp.L_, K.T, lower=True, check_finite=False)
    var = const.constant_value + white.noise_level - np.einsum("ij,ij->j", V, V)
    return mean, np.sqrt(np.maximum(var, 0.0))


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two equal-length arrays."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


# ---------------------------------------------------------------------- NB201 cell features
#: op indices of the NB201 genes (the order of ``hsconas.spaces.nb201.NB201_OPS``).
_NONE, _SKIP = 0, 1
_NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
_NB201_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
#: input->output paths of the 4-node cell as gene indices (edge order of the string form).
_NB201_PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))


def _nb201_live_out(ops: Sequence[int]) -> set[int]:
    """Nodes from which signal can reach the output node (3) through non-``none`` edges."""
    live_out = {3}
    for (to, frm), op in reversed(list(zip(_NB201_EDGES, ops, strict=True))):
        if op != _NONE and to in live_out:
            live_out.add(frm)
    return live_out


def _nb201_effective(ops: Sequence[int]) -> list[int]:
    """Ops of the effective cell: an edge whose source receives no signal from the input, or whose
    target cannot pass signal to the output, is replaced by ``none``."""
    live_in = {0}
    for (to, frm), op in zip(_NB201_EDGES, ops, strict=True):
        if op != _NONE and frm in live_in:
            live_in.add(to)
    live_out = _nb201_live_out(ops)
    return [
        op if op != _NONE and frm in live_in and to in live_out else _NONE
        for (to, frm), op in zip(_NB201_EDGES, ops, strict=True)
    ]


def nb201_canonical(ops: Sequence[int]) -> str:
    """Canonical string of the cell's computation (equal for cells computing the same function
    up to the order of summed terms), like NB201's ``unique_str``: skip connections are identity,
    dead edges vanish, the summed terms of a node are sorted."""
    eff = _nb201_effective(ops)
    terms: dict[int, list[str]] = {0: ["0"]}
    for node in (1, 2, 3):
        out: list[str] = []
        for k, (to, frm) in enumerate(_NB201_EDGES):
            if to != node or eff[k] == _NONE or not terms[frm]:
                continue
            if eff[k] == _SKIP:
                out.extend(terms[frm])
            else:
                out.append("(" + "+".join(terms[frm]) + ")@" + _NB201_OPS[eff[k]])
        terms[node] = sorted(out)
    return "+".join(terms[3]) or "#"


def _nb201_out_live(ops: Sequence[int]) -> list[int]:
    """Ops of the edges whose target node can pass signal to the output (the others are
    ``none``): what survives dead-code elimination when a cell is compiled, since an edge fed by
    a ``none`` (zeros) is still computed but one whose result is never used is not."""
    live_out = _nb201_live_out(ops)
    return [
        op if op != _NONE and to in live_out else _NONE
        for (to, _frm), op in zip(_NB201_EDGES, ops, strict=True)
    ]


def _nb201_row(ops: Sequence[int]) -> np.ndarray:
    eff = _nb201_effective(ops)
    n_ops = len(_NB201_OPS)
    raw = np.zeros(6 * n_ops)
    effective = np.zeros(6 * n_ops)
    for k in range(6):
        raw[k * n_ops + ops[k]] = 1.0
        effective[k * n_ops + eff[k]] = 1.0
    # path encoding (BANANAS): counts of each op sequence along input->output paths, with the
    # 4 non-none ops (4 + 16 + 64 columns); and the same with skip removed (1 + 3 + 9 + 27).
    paths = np.zeros(4 + 16 + 64)
    compact = np.zeros(1 + 3 + 9 + 27)
    path_off = {1: 0, 2: 4, 3: 20}
    compact_off = {0: 0, 1: 1, 2: 4, 3: 13}
    for path in _NB201_PATHS:
        seq = [eff[k] for k in path]
        if any(op == _NONE for op in seq):
            continue
        idx = 0
        for op in seq:
            idx = idx * 4 + (op - 1)
        paths[path_off[len(seq)] + idx] += 1.0
        conv = [op - 2 for op in seq if op != _SKIP]
        idx = 0
        for op in conv:
            idx = idx * 3 + op
        compact[compact_off[len(conv)] + idx] += 1.0
    counts = np.bincount(np.asarray(eff), minlength=n_ops).astype(np.float64)
    n_paths = paths.sum()
    extra = np.array([float(n_paths == 0), n_paths, counts[2] + counts[3]])
    out_live = np.zeros(6 * n_ops)
    for k, op in enumerate(_nb201_out_live(ops)):
        out_live[k * n_ops + op] = 1.0
    return np.concatenate([raw, effective, paths, compact, counts, extra, out_live])


_NB201_TABLE: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def nb201_tables() -> tuple[np.ndarray, np.ndarray]:
    """Features (15625 x d) and canonical-class ids (15625,) of every NB201 cell, by code key
    (mixed radix, first gene most significant, op indices in ``NB201_OPS`` order)."""
    if "t" not in _NB201_TABLE:
        rows: list[np.ndarray] = []
        classes: list[int] = []
        ids: dict[str, int] = {}
        for key in range(5**6):
            ops = [(key // 5 ** (5 - g)) % 5 for g in range(6)]
            rows.append(_nb201_row(ops))
            classes.append(ids.setdefault(nb201_canonical(ops), len(ids)))
        _NB201_TABLE["t"] = (np.stack(rows), np.asarray(classes, dtype=np.int64))
    return _NB201_TABLE["t"]


def is_nb201(codec: GeneCodec) -> bool:
    """Whether ``codec`` encodes the NB201 cell (6 genes of the 5 NB201 ops)."""
    return len(codec.genes) == 6 and all(
        tuple(str(c) for c in g.choices) == _NB201_OPS for g in codec.genes
    )


class CellFeatureMap:
    """Accuracy features of NB201 cells (raw and effective one-hot, path encodings, op counts on
    live paths); computed from the architecture alone, tabulated once for the 15625 cells.

    Args:
        codec: a codec of the NB201 space (:func:`is_nb201`).
        one_hot_only: keep only one-hot columns, raw, effective and surviving dead-code
            elimination (latency features: an op costs time wherever it sits, but compiled
            cells drop the ops whose result never reaches the output).
        effective_only: drop the raw one-hot columns, so that cells computing the same function
            get the same features (accuracy features: a dead edge changes nothing that is
            trained; the spread of accuracies within such a class is training noise).
        derived_weight: with ``one_hot_only``, the scale of the effective and surviving
            columns. A ridge penalises their coefficients ``1 / derived_weight**2`` times more
            than the raw ops': latency stays additive in the ops actually placed unless the
            data show dead code being dropped. On the few hundred cells a search has queried,
            mostly alike, equal weights let the collinear columns trade coefficients freely
            and the model extrapolates badly to cells with dead edges.
        edge_weight: with ``one_hot_only``, put 5 op-count columns (how many edges carry each op)
            in front and scale every per-edge column by ``edge_weight``. A ridge then learns one
            cost per op, shared by the 6 edges, and per-edge deviations from it only as far as
            the data demand (a hierarchical prior: an op costs about the same on every edge).
            After a few dozen queries that is what the data can support; per-edge columns alone
            need every (edge, op) pair queried often. ``None``: no count columns.
    """

    def __init__(
        self,
        codec: GeneCodec,
        *,
        one_hot_only: bool = False,
        effective_only: bool = False,
        derived_weight: float = 1.0,
        edge_weight: float | None = None,
    ) -> None:
        if not is_nb201(codec):
            raise ValueError("CellFeatureMap needs the NB201 cell space")
        if one_hot_only and effective_only:
            raise ValueError("one_hot_only and effective_only exclude each other")
        if edge_weight is not None and not one_hot_only:
            raise ValueError("edge_weight applies to the one_hot_only (latency) features")
        self.codec = codec
        table, classes = nb201_tables()
        # columns: raw one-hot (30), effective one-hot (30), path encodings, op counts, and
        # the one-hot of the edges that survive dead-code elimination (last 30)
        if one_hot_only:
            derived = derived_weight * np.hstack([table[:, 30:60], table[:, -30:]])
            table = np.hstack([table[:, :30], derived])
            if edge_weight is not None:
                counts = table[:, :30].reshape(-1, 6, len(_NB201_OPS)).sum(axis=1)
                table = np.hstack([counts, edge_weight * table])
        elif effective_only:
            table = table[:, 30:-30]
        self._table = table
        self._classes = classes
        self._row_ids: np.ndarray | None = None
        self.n_features = self._table.shape[1]

    def transform(self, codes: np.ndarray) -> np.ndarray:
        """Feature matrix, shape (n, n_features), float64."""
        return self._table[self.codec.keys(codes)]

    def row_ids(self, codes: np.ndarray) -> np.ndarray:
        """Id of each row's feature vector (equal ids: equal features, hence equal predictions)."""
        if self._row_ids is None:
            self._row_ids = np.unique(self._table, axis=0, return_inverse=True)[1].reshape(-1)
        return self._row_ids[self.codec.keys(codes)]

    def classes(self, codes: np.ndarray) -> np.ndarray:
        """Canonical-class id of each row (equal ids: the same effective computation)."""
        return self._classes[self.codec.keys(codes)]


def within_class_noise(
    classes: np.ndarray, y: np.ndarray, *, prior_sd: float, prior_n: int = 4
) -> float:
    """Pooled within-class standard deviation of ``y`` (units of ``y``), shrunk towards
    ``prior_sd`` as if ``prior_n`` degrees of freedom had shown it.

    Members of one class compute the same function, so their spread is measurement or training
    noise that no feature can predict: it is the floor of any surrogate's error, and the chance
    that an unqueried member beats its class mean.
    """
    y = np.asarray(y, dtype=np.float64)
    _, member_of, size = np.unique(np.asarray(classes), return_inverse=True, return_counts=True)
    member_of = member_of.reshape(-1)
    class_mean = np.bincount(member_of, weights=y) / size
    ss = float(((y - class_mean[member_of]) ** 2).sum())  # singletons add nothing
    dof = len(y) - len(size)
    return float(np.sqrt((ss + prior_n * prior_sd**2) / (dof + prior_n)))


class ErrorLogScale:
    """Accuracy on the scale ``-log(ceiling - accuracy)`` (log error rate).

    Near the top of a space accuracies differ by tenths of a point while the worst members sit tens
    of points lower; on the log error scale the top is spread out and the tail compressed, so a
    regression spends its capacity where the search needs it. Accuracies are percentages, or
    fractions when none exceeds 1; the ceiling sits 0.5% of the scale above a perfect score.

    Args:
        accuracy: the accuracies seen so far (only their scale is used).
    """

    def __init__(self, accuracy: np.ndarray) -> None:
        self.ceiling = 1.005 if float(np.max(accuracy)) <= 1.0 else 100.5

    def forward(self, accuracy: np.ndarray) -> np.ndarray:
        """Log error of ``accuracy``."""
        return np.asarray(-np.log(np.maximum(self.ceiling - np.asarray(accuracy), 1e-9)))

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Accuracy of log error ``z``."""
        return np.asarray(self.ceiling - np.exp(-np.asarray(z)))

    def slope(self, z: np.ndarray) -> np.ndarray:
        """d accuracy / d z at ``z`` (turns a standard deviation in z into accuracy units)."""
        return np.asarray(np.exp(-np.asarray(z)))
