"""The pickle-free CIFAR-10 reader: plain batches load, crafted files are refused unexecuted."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from hsconas.data.datasets import load_dataset
from hsconas.data.image_formats import safe_unpickle
from hsconas.errors import DataFormatError


class _RunsShell:
    """Pickles to ``os.system(<command>)``: what a crafted batch file would run on load."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.command,))


class _Evals:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (eval, ("1 + 1",))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_plain_batch_round_trips_under_every_protocol(protocol: int) -> None:
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    doc = {b"data": data, b"labels": [3, 7], b"batch_label": b"training batch 1 of 5"}
    back = safe_unpickle(pickle.dumps(doc, protocol=protocol), "batch")
    assert isinstance(back, dict)
    np.testing.assert_array_equal(back[b"data"], data)
    assert back[b"labels"] == [3, 7] and back[b"batch_label"] == b"training batch 1 of 5"


def test_malicious_batch_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    evil = {b"data": _RunsShell(f"touch {marker}"), b"labels": [0]}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (root / name).write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(DataFormatError, match=r"refused global (posix|os)\.system"):
        load_dataset(f"cifar10:{tmp_path}")
    assert not marker.exists()
    # The same file through the plain pickle module would have run the command: the test's
    # payload is real.
    pickle.loads((root / "test_batch").read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("payload", [_Evals(), np.array([1, "x"], dtype=object)])
def test_builtins_and_object_arrays_are_refused(payload: object) -> None:
    with pytest.raises(DataFormatError, match="not a CIFAR-10 pickle batch"):
        safe_unpickle(pickle.dumps({b"data": payload, b"labels": []}, protocol=2), "f")
