"""Accuracy side: supernet training, subnet extraction and evaluation with BN recalibration."""

from hsconas.accuracy.checkpoint import load_checkpoint, load_trained
from hsconas.accuracy.evaluate import (
    EvalBatches,
    accuracy,
    evaluate_model,
    evaluate_subnets,
    recalibrate_bn,
)
from hsconas.accuracy.extract import extract_subnet
from hsconas.accuracy.train import TrainConfig, TrainResult, train

__all__ = [
    "EvalBatches",
    "TrainConfig",
    "TrainResult",
    "accuracy",
    "evaluate_model",
    "evaluate_subnets",
    "extract_subnet",
    "load_checkpoint",
    "load_trained",
    "recalibrate_bn",
    "train",
]
