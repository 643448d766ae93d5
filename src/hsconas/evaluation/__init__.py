"""Evaluation sources: where the accuracy (percent) and latency (ms) of an architecture come from.

One :class:`AccuracySource` and one :class:`LatencySource` contract (:mod:`.base`), fulfilled by
recorded tables (:mod:`.tables`), saved latency models (:mod:`.models`), saved accuracy models
(:mod:`.predictor`), zero-cost proxy estimates (:mod:`.proxy`), real timing on a backend
(:mod:`.backend`) and trained supernets (:mod:`.supernet`); :func:`make_evaluator` joins two of them
for a search, :func:`parse_latency_source` reads the CLI's ``--source``. Used alike by the search,
block profiling, the pipeline and the benchmarks. Importing this package loads no torch.
"""

from hsconas.evaluation.backend import BackendLatency
from hsconas.evaluation.base import (
    AccuracySource,
    ArchPool,
    CombinedEvaluator,
    LatencySource,
    SourceError,
    measure_cached,
)
from hsconas.evaluation.factory import make_evaluator, parse_latency_source
from hsconas.evaluation.models import ModelLatency
from hsconas.evaluation.predictor import PredictorAccuracy
from hsconas.evaluation.proxy import ProxyAccuracy
from hsconas.evaluation.supernet import CallableAccuracy, SupernetAccuracy, SupernetEvaluator
from hsconas.evaluation.tables import TableAccuracy, TableLatency, TabularEvaluator, check_coverage

__all__ = [
    "AccuracySource",
    "ArchPool",
    "BackendLatency",
    "CallableAccuracy",
    "CombinedEvaluator",
    "LatencySource",
    "ModelLatency",
    "PredictorAccuracy",
    "ProxyAccuracy",
    "SourceError",
    "SupernetAccuracy",
    "SupernetEvaluator",
    "TableAccuracy",
    "TableLatency",
    "TabularEvaluator",
    "check_coverage",
    "make_evaluator",
    "measure_cached",
    "parse_latency_source",
]
