"""Few-shot latency transfer on the recorded NB201/FBNet device tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hsconas.spaces  # noqa: F401
from hsconas.cli.main import main
from hsconas.data.tables import LatencyTable, load_latency_table
from hsconas.errors import DataFormatError
from hsconas.latency import LinearPredictor, evaluate
from hsconas.latency.transfer import (
    DEGENERATE_MS,
    FewShotTransfer,
    TransferError,
    few_shot_transfer,
)


@pytest.fixture(scope="module")
def nb201(data_dir: Path) -> LatencyTable:
    return load_latency_table(data_dir / "nb201" / "latency_help.csv.gz")


@pytest.mark.parametrize("device", ["gold_6240", "samsung_a50", "titanx_32"])
def test_transfer_beats_plain_ridge_with_10_shots(nb201: LatencyTable, device: str) -> None:
    """Leave-one-device-out: 10 shots plus the other 20 devices beat 10 shots alone."""
    res = few_shot_transfer([nb201], nb201, device, shots=10, seed=0)
    assert device not in {name.rsplit(":", 1)[-1] for name, _ in res.top_sources}
    assert res.n_sources == len(nb201.devices) - 1
    y = nb201.column(device)
    ok = np.flatnonzero(y > DEGENERATE_MS)
    shots = np.sort(np.random.default_rng(0).choice(ok, size=10, replace=False))
    test = np.setdiff1d(ok, shots)
    ridge = LinearPredictor().fit([nb201.archs[i] for i in shots], y[shots])
    base = evaluate(ridge.predict([nb201.archs[i] for i in test]), y[test])
    assert res.metrics.n == test.size
    assert res.metrics.spearman > 0.93  # measured 0.95-0.99 on these devices
    assert res.metrics.spearman > base.spearman + 0.2


def test_target_column_never_a_source(nb201: LatencyTable) -> None:
    model = FewShotTransfer([nb201], exclude=["pixel3"])
    assert not any(n.endswith(":pixel3") for n in model.source_names)
    only_target = LatencyTable("nb201", nb201.archs, ("pixel3",), nb201.latency_ms[:, [8]])
    with pytest.raises(TransferError, match="no source device"):
        FewShotTransfer([only_target], exclude=["pixel3"])


def test_sources_with_other_rows_are_matched_by_architecture(nb201: LatencyTable) -> None:
    """A source table holding only some rows: lookups where present, predictions elsewhere."""
    keep = np.arange(0, len(nb201), 2)
    cols = [j for j, d in enumerate(nb201.devices) if d != "gold_6240"]
    half = LatencyTable(
        "nb201",
        tuple(nb201.archs[i] for i in keep),
        tuple(nb201.devices[j] for j in cols),
        nb201.latency_ms[np.ix_(keep, cols)],
    )
    model = FewShotTransfer([half], exclude=["gold_6240"])
    probe = [nb201.archs[0], nb201.archs[1]]  # row 0 is in `half`, row 1 is not
    S = model.source_log_latency(probe)
    np.testing.assert_allclose(S[0], np.log(nb201.latency_ms[0, cols]))
    assert np.all(np.isfinite(S[1]))
    y = nb201.column("gold_6240")
    ok = np.flatnonzero(y > DEGENERATE_MS)
    shots = np.random.default_rng(1).choice(ok, size=10, replace=False)
    model.fit([nb201.archs[i] for i in shots], y[shots])
    test = np.setdiff1d(ok, shots)[1::2][:3000]  # odd rows: not in the source table
    m = evaluate(model.predict([nb201.archs[i] for i in test]), y[test])
    assert m.spearman > 0.85


def test_space_mismatch_and_bad_arguments(nb201: LatencyTable, data_dir: Path) -> None:
    fbnet = load_latency_table(data_dir / "fbnet" / "latency_help.csv.gz", devices=["pixel3"])
    with pytest.raises(DataFormatError, match="fbnet"):
        few_shot_transfer([fbnet], nb201, "pixel3")
    with pytest.raises(DataFormatError, match="columns are:"):
        few_shot_transfer([nb201], nb201, "pixel4")
    with pytest.raises(TransferError, match="at least 3"):
        few_shot_transfer([nb201], nb201, "pixel3", shots=2)


def test_cli_transfer_json(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # recorded subsets keep the CLI test fast
    table, fb = str(tmp_path / "nb201_part.csv"), str(tmp_path / "fbnet_part.csv")
    pd.read_csv(data_dir / "nb201" / "latency_help.csv.gz", nrows=3000).to_csv(table, index=False)
    pd.read_csv(data_dir / "fbnet" / "latency_help.csv.gz", nrows=50).to_csv(fb, index=False)
    argv = ["latency", "transfer", "--space", "nb201", "--source-table", table]
    argv += ["--target-table", table, "--shots", "10", "--seed", "0"]
    assert main([*argv, "--target-device", "titan_rtx_1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in (
        "spearman",
        "kendall",
        "within_10pct",
        "within_5pct",
        "rmse_ms",
        "mape_pct",
        "n_test",
    ):
        assert key in out
    assert out["spearman"] > 0.93 and out["n_sources"] == 20
    assert 0.0 <= out["twin_share"] <= 1.0
    assert all(not s["device"].endswith(":titan_rtx_1") for s in out["top_sources"])
    assert main([*argv, "--target-device", "pixel9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hsconas: error:") and "titan_rtx_1" in err and len(err.splitlines()) == 1
    bad = ["latency", "transfer", "--space", "nb201", "--source-table", fb, "--target-table", table]
    assert main([*bad, "--target-device", "pixel3"]) == 2
    assert "fbnet" in capsys.readouterr().err


@pytest.fixture(scope="module")
def fbnet(data_dir: Path) -> LatencyTable:
    return load_latency_table(data_dir / "fbnet" / "latency_help.csv.gz")


def _shots_and_test(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    ok = np.flatnonzero(y > DEGENERATE_MS)
    shots = np.sort(np.random.default_rng(seed).choice(ok, size=10, replace=False))
    return shots, np.setdiff1d(ok, shots)


@pytest.mark.parametrize(
    ("device", "seed", "floor"),
    # the twin-device model alone (the method before the embedding mix) reaches 0.697, 0.647 and
    # 0.616 on these shots; the mix measured 0.807, 0.738 and 0.701
    [("samsung_a50", 4, 0.78), ("gold_6226", 2, 0.71), ("pixel2", 1, 0.68)],
)
def test_embedding_rescues_targets_without_a_twin_source(
    fbnet: LatencyTable, device: str, seed: int, floor: float
) -> None:
    """FBNet 10-shot draws where no single source line explains the shots (low ``twin_share``)."""
    res = few_shot_transfer([fbnet], fbnet, device, shots=10, seed=seed)
    assert res.twin_share < 0.6
    assert res.metrics.spearman > floor
    y = fbnet.column(device)
    shots, test = _shots_and_test(y, seed)
    twin = FewShotTransfer([fbnet], exclude=[device], seed=seed)
    twin.fit([fbnet.archs[i] for i in shots], y[shots])
    twin.twin_share = 1.0
    old = evaluate(twin.predict([fbnet.archs[i] for i in test]), y[test])
    assert res.metrics.spearman > old.spearman + 0.05


def _with_column(table: LatencyTable, name: str, values: np.ndarray) -> LatencyTable:
    return LatencyTable(
        table.space,
        table.archs,
        (*table.devices, name),
        np.column_stack([table.latency_ms, values]),
    )


def test_twin_share_tracks_whether_one_source_explains_the_target(
    nb201: LatencyTable, fbnet: LatencyTable
) -> None:
    """A scaled copy of a source is a twin (share ~1, exact ranking); the geometric mean of two
    unlike FBNet devices (a Xeon and a GPU at batch 64) is recovered by the embedding model alone
    from 10 shots, where the twin model alone is not."""
    L = nb201.latency_ms
    ok = np.all(L > DEGENERATE_MS, axis=1)
    copy = np.where(ok, 1.7 * L[:, nb201.devices.index("titanx_256")], 0.0)
    table = _with_column(nb201, "copy", copy)
    res = few_shot_transfer([table], table, "copy", shots=10, seed=0)
    assert res.twin_share > 0.99 and res.metrics.spearman > 0.999
    assert res.top_sources[0][0].rsplit(":", 1)[-1] == "titanx_256"

    F = fbnet.latency_ms
    blend = np.sqrt(
        F[:, fbnet.devices.index("gold_6226")] * F[:, fbnet.devices.index("titanxp_64")]
    )
    table = _with_column(fbnet, "blend", blend)
    shots, test = _shots_and_test(blend, 2)
    model = FewShotTransfer([table], exclude=["blend"], seed=2)
    model.fit([table.archs[i] for i in shots], blend[shots])
    assert abs(sum(model.rank_weights.values()) - 1.0) < 1e-9
    test_archs = [table.archs[i] for i in test]
    mixed = evaluate(model.predict(test_archs), blend[test]).spearman
    model.twin_share = 0.0  # the embedding model alone: measured 0.996
    embedding = evaluate(model.predict(test_archs), blend[test]).spearman
    model.twin_share = 1.0  # the twin model alone: measured 0.878
    twin = evaluate(model.predict(test_archs), blend[test]).spearman
    assert embedding > 0.99
    assert mixed > twin + 0.03
