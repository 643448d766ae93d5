"""``hsconas profile blocks --accuracy-model``: OFA-MBv3 profiled with the ImageNet predictor's
accuracy, kept to the resolution its table covers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hsconas.spaces  # noqa: F401
from hsconas.cli.main import main
from hsconas.data.tables import data_dir
from hsconas.space import get_space

try:
    OFA_DIR = data_dir() / "ofa_mbv3"
except Exception:
    OFA_DIR = Path("/nonexistent")
pytestmark = pytest.mark.skipif(
    not (OFA_DIR / "imagenet_accuracy_dynast.csv").is_file()
    or not (OFA_DIR / "latency_help_gpu.csv.gz").is_file(),
    reason="OFA-MBv3 tables not available",
)


def _models(tmp_path: Path) -> tuple[Path, Path]:
    """A ridge ImageNet accuracy model and a linear V100 latency model (small fits)."""
    from hsconas.accuracy.accuracy_table import read_accuracy_table
    from hsconas.accuracy.predictor import fit_accuracy_model
    from hsconas.data.tables import load_latency_table
    from hsconas.latency.model_io import save_model
    from hsconas.latency.predictors import make_predictor

    space = get_space("ofa-mbv3")
    archs, acc = read_accuracy_table(OFA_DIR / "imagenet_accuracy_dynast.csv", space)
    model, _ = fit_accuracy_model(space, archs[:400], acc[:400], kinds=("ridge",), folds=2)
    acc_path = model.save(tmp_path / "acc.json")
    table = load_latency_table(OFA_DIR / "latency_help_gpu.csv.gz", space="ofa-mbv3")
    idx = np.arange(300)
    lat = make_predictor("linear").fit([table.archs[i] for i in idx], table.column("v100_64")[idx])
    lat_path = save_model(lat, tmp_path / "lat.json", space="ofa-mbv3", device="v100_64")
    return Path(acc_path), Path(lat_path)


@pytest.mark.slow  # two model fits and a profile: about 30 s on the loaded 2-core machine
def test_profile_blocks_with_the_accuracy_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    acc_path, lat_path = _models(tmp_path)
    out = tmp_path / "prof"
    args = [
        "profile", "blocks", "ofa-mbv3", "--source", f"model:{lat_path}",
        "--accuracy-model", str(acc_path), "--samples", "3", "--positions", "u1.l1.kernel",
        "u3.l1.expand", "--out", str(out), "--no-figures", "--json",
    ]  # fmt: skip
    assert main(args) == 0
    cap = capsys.readouterr()
    doc = json.loads(cap.out)
    assert doc["accuracy"].startswith("model:") and doc["n_specs"] == 6
    assert "resolution in [224]" in cap.err  # the table's only resolution
    prof = json.loads((out / "profile.json").read_text())
    draws = pd.read_parquet(out / "draws.parquet")
    assert draws["arch"].str.startswith("r224|").all()
    acc = draws["accuracy"].to_numpy(float)
    assert np.isfinite(acc).all() and acc.min() > 65 and acc.max() < 80 and acc.std() > 0
    assert prof["space"] == "ofa-mbv3"
    # accuracy from two places is refused
    rc = main([*args[:-4], "--accuracy-table", str(acc_path), "--out", str(tmp_path / "x")])
    assert rc == 2 and "exclude each other" in capsys.readouterr().err
