"""Latency models: metrics, predictors learned from end-to-end measurements, few-shot transfer
across devices, and versioned JSON model files. No torch."""

from hsconas.latency.metrics import LatencyMetrics, evaluate
from hsconas.latency.model_io import LatencyModel, ModelFileError, load_model, save_model
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
    "LatencyMetrics",
    "LatencyModel",
    "LatencyPredictor",
    "LinearPredictor",
    "ModelFileError",
    "TransferResult",
    "evaluate",
    "few_shot_transfer",
    "load_model",
    "make_predictor",
    "predictor_from_dict",
    "save_model",
]
