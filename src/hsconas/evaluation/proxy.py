"""Zero-cost accuracy estimates as an accuracy source: a search steered without any lookup table
or training. Torch is imported when the first network is scored.

A search asks for architectures one at a time, so a score cannot be a rank among the architectures
asked so far (it would change as the search goes on). :class:`ProxyAccuracy` scores against a fixed
*reference*: a seeded random sample of the space whose proxy values are computed first. Each proxy
value becomes its position among the reference values (linear between them, extended linearly past
the ends; size-like proxies on a log scale), and the source's value is 100 x the mean position over
the method's proxies (the ``ensemble``) or 100 x the one proxy's position: about 0..100, higher =
predicted more accurate, *not* a percent accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hsconas.errors import HsconasError
from hsconas.evaluation.base import AccuracySource
from hsconas.space import Architecture, SearchSpace
from hsconas.store import ResultStore

__all__ = [
    "EnsembleAccuracy",
    "ProxyAccuracy",
    "StoredAccuracy",
    "positions_against",
    "proxy_accuracy_source",
]

#: stored-measurement fields of the values kept by :class:`StoredAccuracy`
_STORED_KIND, _STORED_BACKEND = "accuracy", "estimate"

#: proxies compared on a log scale (positive, spanning orders of magnitude)
_LOG_SCALE = frozenset({"synflow", "snip", "grad_norm", "params", "macs"})


def positions_against(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The position of each value among ``reference`` (finite values only), about 0..1.

    The reference values sorted, with mid-rank positions ``(i + 0.5) / n``, define a piecewise
    linear increasing map; past the smallest and largest value it saturates within half a step
    (``1 / 2n``, a tanh of the distance in units of the reference's range), so values beyond the
    reference still rank but an outlier (a dead network's sentinel score) cannot dominate a
    mean. ``-inf`` (a proxy of 0 on a log scale) maps below every other position; NaN stays NaN
    (a missing signal).
    """
    ref = np.sort(reference[np.isfinite(reference)])
    out = np.full(values.shape, np.nan)
    if ref.size == 0:
        return out
    uniq, first = np.unique(ref, return_index=True)
    last = np.append(first[1:], ref.size)
    pos = (first + last) / (2.0 * ref.size)  # mid-rank position of each distinct value
    finite = np.isfinite(values)
    out[finite] = np.interp(values[finite], uniq, pos)
    span = float(uniq[-1] - uniq[0]) or 1.0
    half_step = 0.5 / ref.size
    lo, hi = finite & (values < uniq[0]), finite & (values > uniq[-1])
    out[lo] = pos[0] + half_step * np.tanh((values[lo] - uniq[0]) / span)
    out[hi] = pos[-1] + half_step * np.tanh((values[hi] - uniq[-1]) / span)
    out[values == -np.inf] = np.nanmin(np.append(out, pos[0])) - 1.0 / ref.size
    out[values == np.inf] = np.nanmax(np.append(out, pos[-1])) + 1.0 / ref.size
    return out


def _scaled(method: str, values: np.ndarray) -> np.ndarray:
    if method not in _LOG_SCALE:
        return values
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(values)  # 0 -> -inf: below every reference value


class ProxyAccuracy:
    """A zero-cost estimate (one proxy or the ensemble) as an accuracy source.

    Args:
        space: the searched space (the reference is sampled from it).
        method: ``ensemble`` or a proxy name of :data:`hsconas.accuracy.proxies.PROXIES`.
        data: dataset spec of the minibatches.
        seed: seed of weights, minibatch and the reference sample.
        store: results store of the proxy values (``None``: in memory only).
        reference: architectures in the reference sample.
        device: torch device.
        batches: minibatches per proxy.
        batch_size: images per minibatch.
    """

    def __init__(
        self,
        space: SearchSpace,
        method: str,
        data: str,
        *,
        seed: int = 0,
        store: ResultStore | None = None,
        reference: int = 64,
        device: str = "cpu",
        batches: int = 1,
        batch_size: int = 64,
    ) -> None:
        from hsconas.accuracy.zero_cost import (
            ENSEMBLE_MEMBERS,
            ProxyConfig,
            ZeroCostScorer,
            check_method,
        )

        check_method(method)
        if method == "supernet":
            raise HsconasError("proxy:supernet is not a proxy; use --supernet CHECKPOINT")
        self.space = space
        self.method = method
        self.members = tuple(ENSEMBLE_MEMBERS) if method == "ensemble" else (method,)
        self.config = ProxyConfig(
            data=data, seed=seed, batches=batches, batch_size=batch_size, device=device
        )
        self.scorer = ZeroCostScorer(space, self.config, store=store)
        self.reference_size = min(reference, space.size())
        self._reference: dict[str, np.ndarray] | None = None
        self._cache: dict[Architecture, float] = {}

    @property
    def name(self) -> str:
        return f"proxy:{self.method}"

    @property
    def settings(self) -> Mapping[str, Any]:
        return {
            "kind": "proxy",
            "method": self.method,
            "members": list(self.members),
            "reference": self.reference_size,
            **self.config.settings(),
        }

    @property
    def n_evals(self) -> int:
        """Networks whose proxies were computed (not read back from the store)."""
        return self.scorer.n_computed

    def pool(self, space: SearchSpace) -> None:
        return None

    def reference_archs(self) -> list[Architecture]:
        """The reference sample: ``reference`` distinct architectures drawn with ``seed``; it does
        not depend on what the search asks, so a score never changes once given."""
        return self.space.sample_many(self.reference_size, self.config.seed, unique=True)

    def signals(self, archs: Sequence[Architecture]) -> dict[str, np.ndarray]:
        """Per signal (higher = better), the values of ``archs`` on the scale positions use."""
        raw = self.scorer.values_of(archs, self.members)
        return {m: _scaled(m, v) for m, v in raw.items()}

    def reference(self) -> dict[str, np.ndarray]:
        """The signal values of the reference sample (computed on first use), scaled."""
        if self._reference is None:
            self._reference = self.signals(self.reference_archs())
        return self._reference

    def accuracy(self, arch: Architecture) -> float:
        return float(self.evaluate([arch])[0])

    def evaluate(self, archs: Sequence[Architecture]) -> np.ndarray:
        todo = [a for a in dict.fromkeys(archs) if a not in self._cache]
        if todo:
            ref = self.reference()
            raw = self.signals(todo)
            pos = np.array([positions_against(raw[m], ref[m]) for m in ref])
            with np.errstate(all="ignore"):
                score = 100.0 * np.nanmean(pos, axis=0)
            for a, s in zip(todo, score, strict=True):
                self._cache[a] = float(s) if np.isfinite(s) else 0.0
        return np.array([self._cache[a] for a in archs], dtype=np.float64)


class StoredAccuracy:
    """Any accuracy source whose values are kept in the results store, so a resumed run reads
    them back instead of computing them again (a supernet's accuracies of the reference sample).

    Args:
        source: the accuracy source.
        store: the results store.
        space: the architectures' space (values are stored under its canonical strings).
        identity: JSON-ready identity of the values (a checkpoint digest, the data, the
            calibration); values stored under another identity are not read.
    """

    def __init__(
        self,
        source: AccuracySource,
        store: ResultStore,
        space: SearchSpace,
        identity: Mapping[str, Any],
    ) -> None:
        self.source = source
        self.store = store
        self.space = space
        self.identity = dict(identity)
        self._cache: dict[str, float] | None = None

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def settings(self) -> Mapping[str, Any]:
        return dict(self.identity)

    @property
    def n_evals(self) -> int:
        """Values computed by the source (not read back from the store)."""
        return int(getattr(self.source, "n_evals", 0))

    def pool(self, space: SearchSpace) -> None:
        return None

    def _stored(self) -> dict[str, float]:
        if self._cache is None:
            found = self.store.measurements(
                space=self.space.name, kind=_STORED_KIND, device=self.name,
                backend=_STORED_BACKEND, settings=self.identity,
            )  # fmt: skip
            self._cache = {
                m.key: float(m.extra["value"]) for m in found if m.extra.get("value") is not None
            }
        return self._cache

    def accuracy(self, arch: Architecture) -> float:
        return float(self.evaluate([arch])[0])

    def evaluate(self, archs: Sequence[Architecture]) -> np.ndarray:
        from hsconas.store import Measurement

        cache = self._stored()
        keys = [self.space.to_string(a) for a in archs]
        todo = {k: a for a, k in zip(archs, keys, strict=True) if k not in cache}
        if todo:
            values = self.source.evaluate(list(todo.values()))
            for k, v in zip(todo, values, strict=True):
                cache[k] = float(v)
                self.store.put_measurement(
                    Measurement(
                        space=self.space.name, kind=_STORED_KIND, key=k, device=self.name,
                        backend=_STORED_BACKEND, settings=self.identity, median_ms=float(v),
                        spread_ms=0.0, n_runs=1, stable=True, extra={"value": float(v)},
                    )
                )  # fmt: skip
        return np.array([cache[k] for k in keys], dtype=np.float64)


class EnsembleAccuracy(ProxyAccuracy):
    """The label-free default estimate: the zero-cost ``ensemble`` with further accuracy sources
    (the stage's trained supernet) folded in as more signals.

    Each signal's value becomes its position among the same signal's values on the fixed seeded
    reference sample (:meth:`ProxyAccuracy.reference_archs`; the supernet evaluates those
    architectures too), and the score is 100 x the mean position over the proxies of
    :data:`~hsconas.accuracy.zero_cost.ENSEMBLE_MEMBERS` and the extra sources: about 0..100,
    higher = predicted more accurate, *not* a percent accuracy. A NaN signal is left out of an
    architecture's mean.

    Args:
        space: the searched space.
        data: dataset spec of the proxies' minibatches.
        others: further signals by name, e.g. ``{"supernet": SupernetAccuracy(...)}`` (percent or
            any scale: only positions count).
        **kwargs: as :class:`ProxyAccuracy` (``seed``, ``store``, ``reference``, ...).
    """

    def __init__(
        self,
        space: SearchSpace,
        data: str,
        others: Mapping[str, AccuracySource],
        **kwargs: Any,
    ) -> None:
        super().__init__(space, "ensemble", data, **kwargs)
        self.others = dict(others)

    @property
    def name(self) -> str:
        return "ensemble"

    @property
    def settings(self) -> Mapping[str, Any]:
        base = dict(super().settings)
        base["kind"] = "ensemble"
        base["signals"] = [*self.members, *self.others]
        base["others"] = {k: dict(v.settings) for k, v in self.others.items()}
        return base

    @property
    def n_evals(self) -> int:
        """Networks whose proxies were computed plus the extra sources' own evaluations."""
        return self.scorer.n_computed + sum(
            int(getattr(s, "n_evals", 0)) for s in self.others.values()
        )

    def signals(self, archs: Sequence[Architecture]) -> dict[str, np.ndarray]:
        out = super().signals(archs)
        for name, source in self.others.items():
            out[name] = np.asarray(source.evaluate(list(archs)), dtype=np.float64)
        return out


def proxy_accuracy_source(
    text: str,
    *,
    space: SearchSpace,
    data: str | None,
    seed: int = 0,
    store: ResultStore | None = None,
    device: str = "cpu",
) -> ProxyAccuracy:
    """The source of ``proxy:METHOD`` (the CLI's ``--accuracy``, a pipeline's ``search.accuracy``).

    Raises:
        HsconasError: not ``proxy:METHOD``, no dataset, or an unknown method.
    """
    kind, sep, method = text.partition(":")
    if kind != "proxy" or not sep or not method:
        raise HsconasError(f"accuracy {text!r} must be proxy:METHOD (e.g. proxy:ensemble)")
    if not data:
        raise HsconasError(
            f"{text} needs --data SPEC: the images the proxies see (digits | mnist:PATH | "
            "cifar10:PATH | folder:PATH)"
        )
    return ProxyAccuracy(space, method, data, seed=seed, store=store, device=device)
