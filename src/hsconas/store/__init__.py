"""The results store (SQLite): measurements, runs, evaluations and metrics. No torch here."""

from hsconas.store.sqlite import (
    SCHEMA_VERSION,
    Evaluation,
    Measurement,
    ResultStore,
    Run,
    StoreError,
    canonical_json,
    default_store_path,
)

__all__ = [
    "SCHEMA_VERSION",
    "Evaluation",
    "Measurement",
    "ResultStore",
    "Run",
    "StoreError",
    "canonical_json",
    "default_store_path",
]
