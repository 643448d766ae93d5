"""Latency predictors learned from end-to-end measurements (numpy + scikit-learn, no torch).

Every predictor maps architecture features to milliseconds and shares one interface:

* ``fit(X, y_ms)``: ``X`` is a feature matrix (n, d) or a sequence of architectures (encoded with
  their space's :meth:`~hsconas.space.SearchSpace.feature_matrix`); ``y_ms`` positive latencies.
* ``predict(X) -> ms`` and ``predict_with_uncertainty(X) -> (mean_ms, std_ms)``.
* ``to_dict()`` / :func:`predictor_from_dict`: a JSON-serialisable description holding every fitted
  parameter (plain lists and numbers, never pickles), so model files survive library upgrades.

All models work on ``log(latency)``: device latencies are positive, multiplicative in the layers'
cost and span an order of magnitude, and relative error is what matters. scikit-learn is used only
to fit; prediction is plain numpy over the stored parameters.

Models:

* :class:`LinearPredictor` (``linear``): Bayesian ridge over the (one-hot) features; the standard
  deviation comes from the posterior of the weights plus the noise level.
* :class:`GBDTPredictor` (``gbdt``): a small bag of gradient-boosted regression trees; the trees are
  dumped to JSON arrays; the standard deviation is the spread of the bag.
* :class:`GPPredictor` (``gp``): a Gaussian process with a linear + RBF kernel (additive main effects
  plus smooth interactions); hyper-parameters by marginal likelihood on at most ``max_opt_rows``
  rows; the standard deviation is the posterior standard deviation.

The shared base class lives in :mod:`hsconas.latency.predictors_base`, each family in its own
module (:mod:`~hsconas.latency.predictors_linear`, :mod:`~hsconas.latency.predictors_trees`,
:mod:`~hsconas.latency.predictors_gp`); this module holds the registry (:data:`PREDICTORS`,
:func:`make_predictor`, :func:`predictor_from_dict`) and re-exports the names of the others.
"""

from __future__ import annotations

from typing import Any

from hsconas.latency.predictors_base import FloatArray as FloatArray
from hsconas.latency.predictors_base import LatencyPredictor, NotFittedError
from hsconas.latency.predictors_base import as_features as as_features
from hsconas.latency.predictors_gp import GPPredictor
from hsconas.latency.predictors_linear import LinearPredictor
from hsconas.latency.predictors_trees import GBDTPredictor

__all__ = [
    "PREDICTORS",
    "GBDTPredictor",
    "GPPredictor",
    "LatencyPredictor",
    "LinearPredictor",
    "NotFittedError",
    "make_predictor",
    "predictor_from_dict",
]


PREDICTORS: dict[str, type[LatencyPredictor]] = {
    LinearPredictor.kind: LinearPredictor,
    GBDTPredictor.kind: GBDTPredictor,
    GPPredictor.kind: GPPredictor,
}


def make_predictor(kind: str, **options: Any) -> LatencyPredictor:
    """A new, unfitted predictor by name (``linear``, ``gbdt``, ``gp``)."""
    try:
        cls = PREDICTORS[kind]
    except KeyError:
        raise ValueError(
            f"unknown latency model {kind!r}; choose one of: {', '.join(PREDICTORS)}"
        ) from None
    return cls(**options)


def predictor_from_dict(d: dict[str, Any]) -> LatencyPredictor:
    """Rebuild any fitted predictor from its :meth:`LatencyPredictor.to_dict` document."""
    kind = d.get("kind")
    if kind not in PREDICTORS:
        raise ValueError(f"unknown latency model kind {kind!r}; known: {', '.join(PREDICTORS)}")
    return PREDICTORS[str(kind)].from_dict(d)
