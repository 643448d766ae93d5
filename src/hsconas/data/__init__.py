"""Data: benchmark tables (recorded devices, tabular accuracy) and, later, image datasets."""

from hsconas.data.tables import (
    AccuracyTable,
    LatencyTable,
    data_dir,
    load_latency_table,
    load_nb201_accuracy,
)

__all__ = [
    "AccuracyTable",
    "LatencyTable",
    "data_dir",
    "load_latency_table",
    "load_nb201_accuracy",
]
