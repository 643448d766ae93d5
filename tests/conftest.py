"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Small single-image forward passes run far faster on one thread than with OpenMP spinning on a
# shared 2-core machine; tests that measure with more threads set them explicitly.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session", autouse=True)
def own_results_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test (and the commands it starts) writes a results store of its own session, never
    the user's default one (``HSCONAS_STORE``)."""
    before = os.environ.get("HSCONAS_STORE")
    os.environ["HSCONAS_STORE"] = str(tmp_path_factory.mktemp("store") / "results.db")
    yield
    if before is None:
        os.environ.pop("HSCONAS_STORE", None)
    else:
        os.environ["HSCONAS_STORE"] = before


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data directory (``HSCONAS_DATA_DIR``, default ``../shared/data``); skip if absent."""
    path = Path(os.environ.get("HSCONAS_DATA_DIR", REPO_ROOT / ".." / "shared" / "data")).resolve()
    if not path.is_dir():
        pytest.skip(f"shared data directory not found: {path} (set HSCONAS_DATA_DIR)")
    return path


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Run a test with one torch thread: small forwards are faster than with OpenMP spinning on a
    shared machine. Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
