"""The feature vector of an accuracy predictor: the space's own features, the extra inputs
(zero-cost proxies, a supernet's accuracy) as positions among the fitting table's values, then log
MACs and log parameters (millions). Used by :mod:`hsconas.accuracy.predictor`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hsconas.accuracy.costs import arch_cost
from hsconas.accuracy.predictor_models import AccuracyModelError, IncompatibleAccuracyModelError
from hsconas.space import Architecture, SearchSpace


class MissingInputError(AccuracyModelError):
    """An accuracy model asked to predict without an input it was fitted on (proxy values
    need ``--data SPEC``; a supernet's accuracy needs ``--supernet CKPT``)."""


#: proxies used as predictor inputs on a log scale (positive, spanning orders of magnitude)
LOG_PROXIES = frozenset({"synflow", "snip", "grad_norm", "params", "macs"})

#: the name of the supernet-accuracy input
SUPERNET_INPUT = "supernet"


#: quantiles of an input's fitting values kept in the model file
_N_REFERENCE = 101


def _input_column(name: str, raw: Any) -> np.ndarray:
    """One extra input's raw values on its comparison scale: the log of size-like proxies (0 ->
    -inf, below everything); NaN stays NaN (missing)."""
    v = np.asarray(raw, dtype=np.float64).ravel()
    if name in LOG_PROXIES:
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.log(v)
    return v


def _reference(values: np.ndarray) -> list[float]:
    """The quantiles of the finite ``values`` a model keeps as the input's reference."""
    ok = np.sort(values[np.isfinite(values)])
    if ok.size <= _N_REFERENCE:
        return [float(x) for x in ok]
    return [float(x) for x in np.quantile(ok, np.linspace(0.0, 1.0, _N_REFERENCE))]


class AccuracyFeatures:
    """Feature matrix of architectures of one space: the space's features, then the extra inputs
    (zero-cost proxy values, a supernet's accuracy), then log MACs and log params (kept last: the
    MACs baseline reads the second-to-last column).

    Extra inputs are raw values handed to :meth:`transform` (``inputs``, one array per name).
    Each enters as its position among the fitting table's values (:attr:`reference`, up to 101
    quantiles; :func:`~hsconas.evaluation.proxy.positions_against`): about 0..1, monotone, linear
    between the quantiles and saturating past the ends, so a proxy's heavy tail or sentinel (jacov
    -1e9 for a dead network, synflow spanning 40 orders of magnitude) cannot throw a linear model
    off; size-like proxies (:data:`LOG_PROXIES`) are compared on a log scale (0 -> below
    everything). A missing value (NaN: a proxy that failed on that network) becomes 0.5, the
    middle of the table. The ridge then standardises every column; the trees need no scaling.

    Args:
        space: the (unrestricted) space.
        proxies: names of the zero-cost proxies used as inputs
            (:data:`hsconas.accuracy.proxies.PROXIES`), in column order.
        supernet: whether a supernet's accuracy (percent) is an input.
        proxy_settings: how the proxy values were computed (seed, minibatches, batch size,
            image pool, dataset name); :meth:`~hsconas.accuracy.zero_cost.ProxyConfig.settings`
            without the dataset path.
        reference: per extra input, the sorted reference values its positions are measured
            against (set by :func:`fit_accuracy_model`).
    """

    def __init__(
        self,
        space: SearchSpace,
        *,
        proxies: Sequence[str] = (),
        supernet: bool = False,
        proxy_settings: Mapping[str, Any] | None = None,
        reference: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self.space = space
        self.proxies: tuple[str, ...] = tuple(proxies)
        self.supernet = bool(supernet)
        self.proxy_settings: dict[str, Any] = dict(proxy_settings or {})
        self.inputs: tuple[str, ...] = (*self.proxies, *((SUPERNET_INPUT,) if supernet else ()))
        self.reference: dict[str, list[float]] = {
            k: [float(x) for x in v] for k, v in (reference or {}).items()
        }
        self._costs: dict[Architecture, tuple[float, float]] = {}
        extra = [f"proxy:{p}" for p in self.proxies] + (["supernet_acc"] if supernet else [])
        self.names: tuple[str, ...] = (
            *space.feature_names,
            *extra,
            "log_macs_m",
            "log_params_m",
        )

    def spec(self) -> dict[str, Any]:
        """JSON description (checked when a model file is loaded)."""
        out: dict[str, Any] = {
            "kind": "space-features+log-cost",
            "space": self.space.name,
            "names": list(self.names),
        }
        if self.inputs:
            out["kind"] = "space-features+inputs+log-cost"
            out["inputs"] = {
                "proxies": list(self.proxies),
                "supernet": self.supernet,
                "proxy_settings": self.proxy_settings,
                "log_scale": sorted(p for p in self.proxies if p in LOG_PROXIES),
                "scale": "position among the fitting table's values (quantiles in reference)",
                "reference": self.reference,
            }
        return out

    @classmethod
    def from_spec(cls, space: SearchSpace, spec: Mapping[str, Any]) -> AccuracyFeatures:
        """The features a model file's ``features`` entry describes."""
        inputs = spec.get("inputs") or {}
        return cls(
            space,
            proxies=[str(p) for p in inputs.get("proxies", [])],
            supernet=bool(inputs.get("supernet", False)),
            proxy_settings=inputs.get("proxy_settings") or {},
            reference=inputs.get("reference") or {},
        )

    def check(self, archs: Sequence[Architecture]) -> None:
        """Raise :class:`IncompatibleAccuracyModelError` for an architecture of another space."""
        for a in archs:
            if a.space != self.space.name:
                raise IncompatibleAccuracyModelError(
                    f"this accuracy model is for space {self.space.name!r} but was given an "
                    f"architecture of space {a.space!r}"
                )

    def missing_message(self) -> str:
        """What a user must give for the extra inputs (one line)."""
        need = []
        if self.proxies:
            data = self.proxy_settings.get("dataset", "the fitting")
            need.append(
                f"zero-cost proxies {', '.join(self.proxies)} computed on {data} images: give "
                "--data SPEC"
            )
        if self.supernet:
            need.append("a supernet's accuracy: give --supernet CKPT --data SPEC")
        return "this accuracy model needs " + "; and ".join(need)

    def cost(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        """(params, MACs) of each architecture, both in millions (remembered per architecture:
        spaces without closed-form counts build the network to count it)."""
        for a in archs:
            if a not in self._costs:
                c = arch_cost(self.space, a)
                self._costs[a] = (c.params / 1e6, c.macs / 1e6)
        return (
            np.array([self._costs[a][0] for a in archs], dtype=np.float64),
            np.array([self._costs[a][1] for a in archs], dtype=np.float64),
        )

    def fit_reference(self, archs: Sequence[Architecture], inputs: Mapping[str, Any]) -> None:
        """Set :attr:`reference` from the inputs of the fitting table's rows.

        Raises:
            MissingInputError: an input not given.
            AccuracyModelError: an input without a single finite value.
        """
        cols = self.input_columns(archs, inputs)
        for j, k in enumerate(self.inputs):
            self.reference[k] = _reference(cols[:, j])
            if not self.reference[k]:
                raise AccuracyModelError(f"input {k!r} has no finite value on any row of the table")

    def position(self, name: str, values: np.ndarray) -> np.ndarray:
        """Positions (about 0..1) of one input's values (comparison scale) in its reference;
        0.5 where missing.

        Raises:
            AccuracyModelError: the input has no reference (a malformed model file).
        """
        from hsconas.evaluation.proxy import positions_against

        ref = self.reference.get(name)
        if not ref:
            raise AccuracyModelError(f"input {name!r} has no reference values")
        pos = positions_against(np.asarray(values, dtype=np.float64), np.asarray(ref))
        return np.where(np.isnan(pos), 0.5, pos)

    def input_columns(
        self, archs: Sequence[Architecture], inputs: Mapping[str, Any] | None
    ) -> np.ndarray:
        """The extra inputs as feature columns (log scale where due, NaN where missing), shape
        (n, len(:attr:`inputs`)).

        Raises:
            MissingInputError: an input the features need is not in ``inputs``.
            AccuracyModelError: an input of the wrong length.
        """
        if not self.inputs:
            return np.zeros((len(archs), 0))
        given = dict(inputs or {})
        absent = [k for k in self.inputs if k not in given]
        if absent:
            raise MissingInputError(self.missing_message())
        cols = []
        for k in self.inputs:
            col = _input_column(k, given[k])
            if len(col) != len(archs):
                raise AccuracyModelError(
                    f"input {k!r} has {len(col)} values for {len(archs)} architectures"
                )
            cols.append(col)
        return np.column_stack(cols)

    def transform(
        self, archs: Sequence[Architecture], inputs: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """Feature matrix, shape (n, len(names)), float64.

        Args:
            archs: architectures of the space.
            inputs: raw values of the extra inputs (:attr:`inputs`), one array per name, one
                value per architecture (NaN: missing).

        Raises:
            IncompatibleAccuracyModelError: an architecture of another space.
            MissingInputError: an extra input not given.
        """
        self.check(archs)
        if not archs:
            return np.zeros((0, len(self.names)))
        extra = self.input_columns(archs, inputs)
        for j, k in enumerate(self.inputs):
            extra[:, j] = self.position(k, extra[:, j])
        params_m, macs_m = self.cost(archs)
        base = self.space.feature_matrix(list(archs))
        return np.column_stack([base, extra, np.log(macs_m), np.log(params_m)])
