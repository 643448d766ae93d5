"""Reading a table of architectures and measured accuracies (CSV) for an accuracy predictor."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hsconas.errors import DataFormatError, DataNotFoundError, InvalidArchitectureError
from hsconas.space import Architecture, SearchSpace

__all__ = ["read_accuracy_table"]


def read_accuracy_table(
    path: str | os.PathLike[str],
    space: SearchSpace,
    *,
    arch_column: str = "arch",
    accuracy_column: str = "top1",
) -> tuple[list[Architecture], np.ndarray]:
    """Architectures and accuracies (percent) of a CSV table (optionally gzip-compressed).

    Args:
        path: the CSV file.
        space: the space the architecture strings belong to (``SPACE:`` prefixes are accepted
            when they name it).
        arch_column: column holding the canonical architecture strings.
        accuracy_column: column holding the measured accuracy, percent.

    Raises:
        DataNotFoundError: no such file.
        DataFormatError: unreadable CSV, a missing column, empty table, or a non-numeric
            accuracy; the message names the row.
        InvalidArchitectureError: an architecture string that is not a member of ``space``
            (the message names the row).
    """
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"accuracy table not found: {p}")
    try:
        df = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{p}: not a readable CSV table ({exc})") from None
    missing = [c for c in (arch_column, accuracy_column) if c not in df.columns]
    if missing:
        raise DataFormatError(
            f"{p}: missing column(s) {', '.join(missing)}; the table has: "
            f"{', '.join(map(str, df.columns))}"
        )
    if len(df) == 0:
        raise DataFormatError(f"{p}: the table has no rows")
    acc = pd.to_numeric(df[accuracy_column], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(acc))
    if len(bad):
        row = int(bad[0])
        raise DataFormatError(
            f"{p}: row {row + 2}: column {accuracy_column!r} holds "
            f"{df[accuracy_column].iloc[row]!r}, not a number"
        )
    archs: list[Architecture] = []
    prefix = f"{space.name}:"
    for i, text in enumerate(df[arch_column].astype(str)):
        s = text[len(prefix) :] if text.startswith(prefix) else text
        try:
            archs.append(space.from_string(s))
        except InvalidArchitectureError as exc:
            raise type(exc)(
                f"{p}: row {i + 2}: {exc}", space=exc.space, gene=exc.gene, value=exc.value
            ) from None
    return archs, acc
