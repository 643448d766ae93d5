"""Latency models: the :class:`LatencyModel` contract and the one reader of model files
(:mod:`.base`), the HSCoNAS LUT + correction model (:mod:`.hsconas`, which imports torch when
used), predictors learned from end-to-end measurements, few-shot transfer across devices, and
metrics. Importing this package loads no torch."""

from hsconas.latency.base import (
    IncompatibleModelError,
    LatencyModel,
    ModelFileError,
    file_digest,
    load_latency_model,
)
from hsconas.latency.metrics import LatencyMetrics, evaluate
from hsconas.latency.model_io import PredictorModel, load_model, save_model
from hsconas.latency.predictors import (
    PREDICTORS,
    GBDTPredictor,
    GPPredictor,
    LatencyPredictor,
    LinearPredictor,
    make_predictor,
    predictor_from_dict,
)
from hsconas.latency.transfer import FewShotTransfer, TransferResult, few_shot_transfer

__all__ = [
    "PREDICTORS",
    "FewShotTransfer",
    "GBDTPredictor",
    "GPPredictor",
    "IncompatibleModelError",
    "LatencyMetrics",
    "LatencyModel",
    "LatencyPredictor",
    "LinearPredictor",
    "ModelFileError",
    "PredictorModel",
    "TransferResult",
    "evaluate",
    "few_shot_transfer",
    "file_digest",
    "load_latency_model",
    "load_model",
    "make_predictor",
    "predictor_from_dict",
    "save_model",
]
