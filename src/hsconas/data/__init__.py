"""Data: benchmark tables (recorded devices, tabular accuracy) and image datasets."""

from hsconas.data.datasets import Augment, ImageDataset, TensorLoader, load_dataset
from hsconas.data.tables import (
    AccuracyTable,
    LatencyTable,
    data_dir,
    load_latency_table,
    load_nb201_accuracy,
)

__all__ = [
    "AccuracyTable",
    "Augment",
    "ImageDataset",
    "LatencyTable",
    "TensorLoader",
    "data_dir",
    "load_dataset",
    "load_latency_table",
    "load_nb201_accuracy",
]
