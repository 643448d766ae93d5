"""The extra inputs of an accuracy predictor, computed for the architectures it is asked about.

A model fitted with ``--proxies`` needs each architecture's zero-cost proxy values, computed as
they were at fitting time (same seed, minibatches, batch size and image pool, on images of the
same dataset); a model fitted with a supernet's accuracy needs that accuracy. :class:`PredictorInputs`
computes both: proxies through a :class:`~hsconas.accuracy.zero_cost.ZeroCostScorer` (cached in a
results store when one is given, so a repeat costs nothing), the supernet's accuracy through any
accuracy source with ``evaluate`` (:class:`~hsconas.evaluation.supernet.SupernetAccuracy`).
Torch is imported only when a proxy is computed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hsconas.accuracy.predictor import (
    SUPERNET_INPUT,
    AccuracyFeatures,
    AccuracyModelError,
    AccuracyPredictor,
    IncompatibleAccuracyModelError,
    MissingInputError,
)
from hsconas.space import Architecture
from hsconas.store import ResultStore

__all__ = ["PredictorInputs", "dataset_name", "proxy_settings"]


def dataset_name(spec: str) -> str:
    """The dataset a spec names (``cifar10:PATH`` -> ``cifar10``, ``digits`` -> ``digits``)."""
    return spec.partition(":")[0].strip()


def proxy_settings(config: Any) -> dict[str, Any]:
    """What a model file records of a :class:`~hsconas.accuracy.zero_cost.ProxyConfig`: its
    settings without the dataset path (a user's copy of the images may live elsewhere), with the
    dataset's name."""
    out = {k: v for k, v in config.settings().items() if k != "data"}
    out["dataset"] = dataset_name(config.data)
    return out


class PredictorInputs:
    """Computes the extra inputs an accuracy model needs (a callable: archs -> inputs).

    Args:
        model: the fitted predictor, or its :class:`~hsconas.accuracy.predictor.AccuracyFeatures`.
        data: dataset spec of the images the proxies see (needed when the model has proxies).
        store: results store of the proxy values (``None``: kept in memory only).
        supernet: an accuracy source (``evaluate(archs) -> percent``) of the supernet (needed
            when the model has a supernet input).
        device: torch device the proxies run on.

    Raises:
        MissingInputError: the model needs proxies and ``data`` is ``None``, or a supernet and
            ``supernet`` is ``None``.
        IncompatibleAccuracyModelError: ``data`` names another dataset than the model's proxies
            were computed on.
    """

    def __init__(
        self,
        model: AccuracyPredictor | AccuracyFeatures,
        *,
        data: str | None = None,
        store: ResultStore | None = None,
        supernet: Any = None,
        device: str = "cpu",
    ) -> None:
        features = model.features if isinstance(model, AccuracyPredictor) else model
        self.features = features
        self.supernet = supernet
        self.scorer: Any = None
        if features.proxies and data is None:
            raise MissingInputError(features.missing_message())
        if features.supernet and supernet is None:
            raise MissingInputError(features.missing_message())
        if features.proxies and data is not None:
            from hsconas.accuracy.zero_cost import ProxyConfig, ZeroCostScorer

            ps = features.proxy_settings
            want = ps.get("dataset")
            if want is not None and dataset_name(data) != want:
                raise IncompatibleAccuracyModelError(
                    f"this accuracy model's proxies were computed on {want} images; --data "
                    f"{data!r} names {dataset_name(data)!r}"
                )
            config = ProxyConfig(
                data=data,
                seed=int(ps.get("seed", 0)),
                batches=int(ps.get("batches", 1)),
                batch_size=int(ps.get("batch_size", 64)),
                pool=int(ps.get("pool", 2000)),
                device=device,
            )
            self.scorer = ZeroCostScorer(features.space, config, store=store)

    @property
    def n_computed(self) -> int:
        """Networks whose proxies were computed (not read back from the store)."""
        return 0 if self.scorer is None else int(self.scorer.n_computed)

    def __call__(self, archs: Sequence[Architecture]) -> dict[str, np.ndarray]:
        """Raw values of every extra input, one array per name, one value per architecture."""
        out: dict[str, np.ndarray] = {}
        if not archs:
            return {k: np.zeros(0) for k in self.features.inputs}
        if self.features.proxies:
            out.update(self.scorer.values_of(archs, self.features.proxies))
        if self.features.supernet:
            values = np.asarray(self.supernet.evaluate(list(archs)), dtype=np.float64)
            if values.shape != (len(archs),):
                raise AccuracyModelError("the supernet source returned the wrong number of values")
            out[SUPERNET_INPUT] = values
        return out

    def settings(self) -> Mapping[str, Any]:
        """JSON-ready identity of the inputs (stored with search runs)."""
        out: dict[str, Any] = {"inputs": list(self.features.inputs)}
        if self.scorer is not None:
            out["proxies"] = self.scorer.config.settings()
        if self.supernet is not None:
            out["supernet"] = dict(getattr(self.supernet, "settings", {}))
        return out
