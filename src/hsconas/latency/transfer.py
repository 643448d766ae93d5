"""Few-shot latency transfer to a new device from devices already measured (in the spirit of HELP).

An architecture is represented by its log-latencies on the *source* devices (the columns of source
tables, never the target column): looked up when a source table holds the architecture, otherwise
predicted by a per-source :class:`~hsconas.latency.predictors.LinearPredictor` fitted on that source
table. Tables of the same space whose rows differ are matched by architecture.

On the ``K`` measured shots of the target device the model fits two predictors of the target's
log-latency and mixes them:

* **twin** (suits a target with a near twin among the sources, e.g. another GPU):

  1. for every source device ``s`` a line ``log t = a_s + b_s log s`` (tiny ridge), scored by its
     closed-form leave-one-out error ``e_s``; the sources are averaged with weights
     ``exp(-(e_s - e_min) / e_min)`` (a soft choice of the best-correlated devices);
  2. a ridge correction of the remaining residual on all standardised source log-latencies, its
     strength chosen by leave-one-out error on the shots (strong by default, so that a few shots
     cannot overfit).

* **embedding** (suits a target unlike any single source, e.g. a noisy phone): a hardware
  embedding as in HELP. The centred source log-latency matrix (rows of the first source table) is
  factorised by SVD; an architecture's coordinates are its projections on the top ``r`` right
  singular vectors, and every source device has ``r`` loadings there. The target's loadings get a
  Gaussian prior whose mean and covariance are those of the *source devices'* loadings (a new device
  is assumed to look like a typical measured one), and a Bayesian linear regression on the shots
  gives their posterior mean, the noise variance chosen by marginal likelihood. Ranks
  ``r = 1..10`` are averaged with weights proportional to their marginal likelihoods.

The mix is ``q * twin + (1 - q) * embedding`` with ``q`` the leave-one-out R^2 of the best single
source line on the shots (clipped to [0, 1]): how well the shots are explained by one twin device.

numpy only (scikit-learn through the per-source predictors).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from hsconas.data.tables import LatencyTable
from hsconas.errors import DataFormatError, HsconasError
from hsconas.latency.metrics import LatencyMetrics, evaluate
from hsconas.latency.predictors import LatencyPredictor, LinearPredictor
from hsconas.space import Architecture

__all__ = [
    "DEGENERATE_MS",
    "FewShotTransfer",
    "TransferError",
    "TransferResult",
    "few_shot_transfer",
]

DEGENERATE_MS = 0.05
"""Recorded latencies below this (ms) are degenerate (NB201 cells cut off from their input)."""

_RIDGE_ALPHAS = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
_LINE_RIDGE = 1e-3
_EMBED_RANKS = tuple(range(1, 11))
_EMBED_ROWS = 4000
_NOISE_VARS = tuple(np.logspace(-5, -1, 17))  # (log ms)^2, searched by marginal likelihood
_PRIOR_JITTER = 1e-3
_INTERCEPT_VAR = 10.0


class TransferError(HsconasError, ValueError):
    """Few-shot transfer that cannot run as asked (no sources, too few shots, ...)."""


def _source_label(table: LatencyTable, device: str) -> str:
    return (
        f"{table.path.parent.name}/{table.path.name}:{device}" if table.path is not None else device
    )


class FewShotTransfer:
    """Predict a target device's latency from ``K`` measurements plus source-device tables.

    Args:
        sources: latency tables of one space; every column except ``exclude`` is a source device.
        exclude: device column names never used as sources (the target device), in every table.
        max_source_fit_rows: rows used to fit a per-source predictor for architectures a source
            table does not hold.
        seed: seed of those rows.
    """

    def __init__(
        self,
        sources: Sequence[LatencyTable],
        *,
        exclude: Sequence[str] = (),
        max_source_fit_rows: int = 2000,
        seed: int = 0,
    ) -> None:
        if not sources:
            raise TransferError("few-shot transfer needs at least one source table")
        spaces = {t.space for t in sources}
        if len(spaces) > 1:
            raise DataFormatError(
                "source tables must share one space, got: "
                + ", ".join(f"{t.path or '?'} ({t.space})" for t in sources)
            )
        self.space = sources[0].space
        self.tables = tuple(sources)
        self.columns: list[tuple[int, int]] = [
            (ti, j)
            for ti, t in enumerate(sources)
            for j, d in enumerate(t.devices)
            if d not in set(exclude)
        ]
        if not self.columns:
            raise TransferError(
                "no source device left after excluding the target device "
                f"{', '.join(exclude)}; give a --source-table with other device columns"
            )
        self.source_names = tuple(
            _source_label(sources[ti], sources[ti].devices[j]) for ti, j in self.columns
        )
        self.max_source_fit_rows = max_source_fit_rows
        self.seed = seed
        self._fallback: dict[tuple[int, int], LatencyPredictor] = {}
        logs = [np.log(np.maximum(sources[ti].latency_ms[:, j], 1e-3)) for ti, j in self.columns]
        self._z_mean = np.array([v.mean() for v in logs])
        self._z_std = np.array([v.std() or 1.0 for v in logs])
        self._embed_mean, self._embed_basis = self._embedding_basis()
        self._fitted = False

    def _embedding_basis(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean log-latency per source and right singular vectors (rows) of the centred matrix.

        Computed on up to ``_EMBED_ROWS`` seeded rows of the first source table where no source
        latency is degenerate.
        """
        table = self.tables[0]
        cols = [j for ti, j in self.columns if ti == 0]
        rows = np.arange(len(table))
        if cols:  # rows where the first table's source columns are all usable
            rows = rows[np.all(table.latency_ms[:, cols] > DEGENERATE_MS, axis=1)]
        if rows.size < 2:
            rows = np.arange(len(table))
        rng = np.random.default_rng(self.seed)
        rows = np.sort(rng.permutation(rows)[:_EMBED_ROWS])
        S = self.source_log_latency([table.archs[i] for i in rows])
        mean = S.mean(axis=0)
        _, _, vt = np.linalg.svd(S - mean, full_matrices=False)
        return mean, vt

    # ------------------------------------------------------------------ representation
    def source_log_latency(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Log-latency (log ms) of each architecture on each source device, shape (n, n_sources)."""
        for a in archs[:1]:
            if a.space != self.space:
                raise DataFormatError(
                    f"architectures of space {a.space!r} given to a transfer model of {self.space!r}"
                )
        out = np.empty((len(archs), len(self.columns)))
        for ti, table in enumerate(self.tables):
            cols = [(k, j) for k, (t, j) in enumerate(self.columns) if t == ti]
            if not cols:
                continue
            rows = np.array(
                [table.index_of(a) if a in table else -1 for a in archs], dtype=np.int64
            )
            have = rows >= 0
            for k, j in cols:
                out[have, k] = np.log(np.maximum(table.latency_ms[rows[have], j], 1e-3))
                if not have.all():
                    missing = [a for a, h in zip(archs, have, strict=True) if not h]
                    model = self._source_model(ti, j)
                    out[~have, k] = np.log(model.predict(missing))
        return out

    def _source_model(self, ti: int, j: int) -> LatencyPredictor:
        key = (ti, j)
        if key not in self._fallback:
            table = self.tables[ti]
            y = table.latency_ms[:, j]
            ok = np.flatnonzero(y > DEGENERATE_MS)
            rng = np.random.default_rng(self.seed)
            rows = rng.permutation(ok)[: self.max_source_fit_rows]
            self._fallback[key] = LinearPredictor().fit([table.archs[i] for i in rows], y[rows])
        return self._fallback[key]

    # ------------------------------------------------------------------ fit / predict
    def fit(self, archs: Sequence[Architecture], y_ms: ArrayLike) -> FewShotTransfer:
        """Fit the target device from measured shots ``archs`` with latencies ``y_ms`` (ms)."""
        y = np.asarray(y_ms, dtype=np.float64).ravel()
        if len(archs) != y.size:
            raise TransferError(f"{len(archs)} shot architectures but {y.size} latencies")
        if y.size < 3:
            raise TransferError("few-shot transfer needs at least 3 measured architectures")
        if np.any(y <= 0):
            raise TransferError("measured latencies must be positive (ms)")
        ly = np.log(y)
        S = self.source_log_latency(archs)
        k = y.size
        A = np.stack([np.ones(k), np.zeros(k)], axis=1)
        lines, loo = [], []
        for s in range(S.shape[1]):
            A[:, 1] = S[:, s]
            M = A.T @ A + _LINE_RIDGE * np.eye(2)
            beta = np.linalg.solve(M, A.T @ ly)
            H = A @ np.linalg.solve(M, A.T)
            r = (ly - A @ beta) / np.maximum(1.0 - np.diag(H), 1e-6)
            lines.append(beta)
            loo.append(float(np.mean(r**2)))
        e = np.asarray(loo)
        e_min = max(float(e.min()), 1e-8)
        w = np.exp(-(e - e_min) / e_min)
        self.line_coef = np.asarray(lines)
        self.weights = w / w.sum()
        var = float(ly.var())
        self.twin_share = float(np.clip(1.0 - e.min() / var, 0.0, 1.0)) if var > 0 else 1.0
        self._fit_embedding(S, ly)
        base = self._base(S)
        resid = ly - base
        Z = self._z(S)
        self.resid_mean = float(resid.mean())
        rc = resid - self.resid_mean
        best = (np.inf, _RIDGE_ALPHAS[-1])
        for alpha in _RIDGE_ALPHAS:
            H = Z @ np.linalg.solve(Z.T @ Z + alpha * np.eye(Z.shape[1]), Z.T)
            # leave-one-out with the intercept's share of leverage (1/k) counted too
            r = (rc - H @ rc) / np.maximum(1.0 - np.diag(H) - 1.0 / k, 1e-3)
            score = float(np.mean(r**2))
            if score < best[0]:
                best = (score, alpha)
        self.ridge_alpha = best[1]
        self.ridge_coef = np.linalg.solve(Z.T @ Z + self.ridge_alpha * np.eye(Z.shape[1]), Z.T @ rc)
        self._fitted = True
        return self

    def _fit_embedding(self, S: np.ndarray, ly: np.ndarray) -> None:
        """Bayesian regression of ``ly`` on embedding coordinates, averaged over ranks."""
        k = ly.size
        P = (S - self._embed_mean) @ self._embed_basis.T
        ranks = [r for r in _EMBED_RANKS if r <= self._embed_basis.shape[0]]
        evidence, coefs = [], []
        for r in ranks:
            load = self._embed_basis[:r]  # (r, n_sources): loadings of each source device
            prior_mean = np.concatenate([[ly.mean()], load.mean(axis=1)])
            prior_cov = np.zeros((r + 1, r + 1))
            prior_cov[0, 0] = _INTERCEPT_VAR
            prior_cov[1:, 1:] = np.atleast_2d(np.cov(load)) + _PRIOR_JITTER * np.eye(r)
            A = np.column_stack([np.ones(k), P[:, :r]])
            log_ev, coef = _bayes_linear(A, ly, prior_mean, prior_cov)
            evidence.append(log_ev)
            coefs.append(coef)
        ev = np.asarray(evidence)
        rw = np.exp(ev - ev.max())
        self.rank_weights = dict(zip(ranks, (rw / rw.sum()).tolist(), strict=True))
        self._embed_coefs = coefs

    def _embedding(self, S: np.ndarray) -> np.ndarray:
        P = (S - self._embed_mean) @ self._embed_basis.T
        out = np.zeros(S.shape[0])
        for (r, w), coef in zip(self.rank_weights.items(), self._embed_coefs, strict=True):
            out += w * (coef[0] + P[:, :r] @ coef[1:])
        return out

    def _z(self, S: np.ndarray) -> np.ndarray:
        return (S - self._z_mean) / self._z_std

    def _base(self, S: np.ndarray) -> np.ndarray:
        per_source = self.line_coef[:, 0] + S * self.line_coef[:, 1]
        return np.asarray(per_source @ self.weights)

    def predict(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Predicted target-device latency (ms) of each architecture."""
        if not self._fitted:
            raise TransferError("FewShotTransfer is not fitted; call fit() with measured shots")
        S = self.source_log_latency(archs)
        twin = self._base(S) + self.resid_mean + self._z(S) @ self.ridge_coef
        q = self.twin_share
        return np.asarray(np.exp(q * twin + (1.0 - q) * self._embedding(S)))

    def top_sources(self, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` source devices with the largest averaging weights."""
        order = np.argsort(-self.weights)[:n]
        return [(self.source_names[i], float(self.weights[i])) for i in order]


def _bayes_linear(
    A: np.ndarray, y: np.ndarray, prior_mean: np.ndarray, prior_cov: np.ndarray
) -> tuple[float, np.ndarray]:
    """Log marginal likelihood and posterior mean of ``y = A b + noise``, ``b ~ N(mean, cov)``.

    The noise variance is the one of ``_NOISE_VARS`` with the largest marginal likelihood.
    """
    n = y.size
    res = y - A @ prior_mean
    K0 = A @ prior_cov @ A.T
    best = (-np.inf, _NOISE_VARS[0])
    for s2 in _NOISE_VARS:
        K = K0 + s2 * np.eye(n)
        _, logdet = np.linalg.slogdet(K)
        ll = -0.5 * (res @ np.linalg.solve(K, res) + logdet + n * np.log(2 * np.pi))
        if ll > best[0]:
            best = (float(ll), s2)
    ll, s2 = best
    precision = np.linalg.inv(prior_cov) + A.T @ A / s2
    coef = np.linalg.solve(precision, np.linalg.solve(prior_cov, prior_mean) + A.T @ y / s2)
    return ll, coef


@dataclass(frozen=True)
class TransferResult:
    """Outcome of one few-shot transfer experiment.

    Attributes:
        target_device: the target column.
        shots: number of measured target architectures used.
        seed: seed of the shot sample.
        metrics: accuracy on every other (non-degenerate) architecture of the target table.
        n_sources: number of source devices.
        top_sources: the most weighted source devices and their weights (twin predictor).
        twin_share: weight of the twin predictor in the mix (the rest is the embedding predictor).
    """

    target_device: str
    shots: int
    seed: int
    metrics: LatencyMetrics
    n_sources: int
    top_sources: tuple[tuple[str, float], ...]
    twin_share: float = 1.0


def few_shot_transfer(
    sources: Sequence[LatencyTable],
    target: LatencyTable,
    target_device: str,
    *,
    shots: int = 10,
    seed: int = 0,
) -> TransferResult:
    """Fit ``target_device`` from ``shots`` seeded rows of ``target`` and test on all other rows.

    The target column is excluded from every source table (also when ``target`` is among them).
    Rows below :data:`DEGENERATE_MS` are neither shots nor test rows.

    Raises:
        DataFormatError: unknown target column (the message lists the columns), or a source table
            of another space.
        TransferError: too few usable rows, or no source device left.
    """
    y = target.column(target_device)
    for t in sources:
        if t.space != target.space:
            raise DataFormatError(
                f"source table {t.path or '?'} is a {t.space} table but the target table "
                f"{target.path or '?'} is {target.space}; transfer needs one space"
            )
    if shots < 3:
        raise TransferError(f"--shots must be at least 3, got {shots}")
    ok = np.flatnonzero(y > DEGENERATE_MS)
    if ok.size < shots + 1:
        raise TransferError(
            f"target column {target_device!r} has {ok.size} usable rows; need more than {shots}"
        )
    rng = np.random.default_rng(seed)
    shot_rows = np.sort(rng.choice(ok, size=shots, replace=False))
    test_rows = np.setdiff1d(ok, shot_rows)
    model = FewShotTransfer(sources, exclude=[target_device], seed=seed)
    model.fit([target.archs[i] for i in shot_rows], y[shot_rows])
    pred = model.predict([target.archs[i] for i in test_rows])
    return TransferResult(
        target_device=target_device,
        shots=shots,
        seed=seed,
        metrics=evaluate(pred, y[test_rows]),
        n_sources=len(model.columns),
        top_sources=tuple(model.top_sources()),
        twin_share=model.twin_share,
    )
