"""What every latency model file shares, whatever its kind: the format names, the errors of
reading one, the JSON reader and the file digest (no torch here)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from hsconas.errors import DataNotFoundError, HsconasError

__all__ = [
    "HW_MODEL_FORMAT",
    "PREDICTOR_FORMAT",
    "IncompatibleModelError",
    "ModelFileError",
    "file_digest",
    "read_model_json",
]

HW_MODEL_FORMAT = "hsconas-hw-model"
PREDICTOR_FORMAT = "hsconas-latency-model"


class ModelFileError(HsconasError, ValueError):
    """A latency model file that cannot be read, or that does not fit the space/device it is used with."""


class IncompatibleModelError(ModelFileError):
    """A latency model used with another space, device, backend or format than its own."""


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (hex): identifies a model or checkpoint file in run settings."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_model_json(path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """The path and parsed JSON object of a latency model file of any kind.

    Raises:
        DataNotFoundError: the file does not exist.
        ModelFileError: the file is not a JSON object.
    """
    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"latency model file not found: {p}")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{p}: not a JSON latency model file ({exc})") from None
    if not isinstance(doc, dict):
        raise ModelFileError(f"{p}: not an hsconas latency model file (not a JSON object)")
    return p, doc
