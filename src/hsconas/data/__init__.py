"""Data: benchmark tables (recorded devices, tabular accuracy) and image datasets.

The image-dataset names are imported on first use (PEP 562), so that table users (search,
profiling) do not pay for importing torch.
"""

from typing import Any

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
    "StreamedImageDataset",
    "TensorLoader",
    "data_dir",
    "load_dataset",
    "load_latency_table",
    "load_nb201_accuracy",
]

_LAZY = {"Augment", "ImageDataset", "StreamedImageDataset", "TensorLoader", "load_dataset"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from hsconas.data import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module 'hsconas.data' has no attribute {name!r}")
