"""Few-shot latency transfer to a new device from devices already measured (in the spirit of HELP).

An architecture is represented by its log-latencies on the *source* devices (the columns of source
tables, never the target column): looked up when a source table holds the architecture, otherwise
predicted by a per-source :class:`~hsconas.latency.predictors.LinearPredictor` fitted on that source
table. Tables of the same space whose rows differ are matched by architecture.

On the ``K`` measured shots of the target device the model fits, in log space:

1. for every source device ``s`` a line ``log t = a_s + b_s log s`` (tiny ridge), scored by its
   closed-form leave-one-out error ``e_s``; the sources are averaged with weights
   ``exp(-(e_s - e_min) / e_min)`` (a soft choice of the best-correlated devices);
2. a ridge correction of the remaining residual on all standardised source log-latencies, its
   strength chosen by leave-one-out error on the shots (strong by default, so that a few shots
   cannot overfit).

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
        self._fitted = False

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
        return np.asarray(np.exp(self._base(S) + self.resid_mean + self._z(S) @ self.ridge_coef))

    def top_sources(self, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` source devices with the largest averaging weights."""
        order = np.argsort(-self.weights)[:n]
        return [(self.source_names[i], float(self.weights[i])) for i in order]


@dataclass(frozen=True)
class TransferResult:
    """Outcome of one few-shot transfer experiment.

    Attributes:
        target_device: the target column.
        shots: number of measured target architectures used.
        seed: seed of the shot sample.
        metrics: accuracy on every other (non-degenerate) architecture of the target table.
        n_sources: number of source devices.
        top_sources: the most weighted source devices and their weights.
    """

    target_device: str
    shots: int
    seed: int
    metrics: LatencyMetrics
    n_sources: int
    top_sources: tuple[tuple[str, float], ...]


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
    )
