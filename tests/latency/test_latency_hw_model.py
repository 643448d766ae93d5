"""The HSCoNAS model: fit on real measurements, predict, save/load round trip, compatibility."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hsconas.hardware.measure import measure_network
from hsconas.hardware.timing import TimingConfig
from hsconas.latency.base import IncompatibleModelError
from hsconas.latency.hsconas.lut import (
    LookupTable,
    LutEntry,
    decompose,
    materialize,
    measure_blocks,
    meta_build,
)
from hsconas.latency.hsconas.model import HSCoNASModel
from hsconas.latency.hsconas.profile import sample_archs
from hsconas.nn.counting import count_macs

_FAST = TimingConfig(max_time_s=0.01, warmup_runs=1, warmup_time_s=0.0, min_runs=5)


@pytest.fixture(scope="module")
def fitted() -> tuple[HSCoNASModel, list]:  # type: ignore[type-arg]
    archs = sample_archs("ofa-mbv3", 5, resolution=128, seed=0)
    blocks = {}
    for a in archs:
        for c in decompose(meta_build(a), (3, 128, 128)):
            blocks.setdefault(c.key, c)
    lut = measure_blocks(blocks, "torch", space="ofa-mbv3", resolution=128, timing=_FAST)
    lat = [measure_network(a, "torch", timing=_FAST).median_ms for a in archs[:4]]
    return HSCoNASModel.fit(lut, archs[:4], lat), archs


def test_fit_predicts_positive_latency_with_uncertainty(fitted) -> None:  # type: ignore[no-untyped-def]
    model, archs = fitted
    p = model.predict(archs[4])
    assert p.latency_ms > 0 and p.std_ms >= 0 and p.lut_sum_ms > 0
    assert p.lut_sum_ms == pytest.approx(model.lut_sum(archs[4]))
    assert model.n_train == 4 and len(model.coef) == len(model.feature_names) + 1


def test_save_load_round_trip(fitted, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model, archs = fitted
    path = model.save(tmp_path / "m.json")
    again = HSCoNASModel.load(path)
    assert again.lut == model.lut and again.heights == model.heights
    np.testing.assert_allclose(again.predict_ms(archs[3:]), model.predict_ms(archs[3:]))
    doc = json.loads(path.read_text())
    assert doc["space"] == "ofa-mbv3" and doc["backend"] == "torch" and doc["lut"]["entries"]


def test_incompatible_use_is_a_clear_error(fitted, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model, _ = fitted
    other = sample_archs("proxylessnas", 1, resolution=128, seed=0)[0]
    with pytest.raises(IncompatibleModelError, match="space 'ofa-mbv3', not 'proxylessnas'"):
        model.predict(other)
    with pytest.raises(IncompatibleModelError, match="device"):
        model.check_compatible(device="pixel1")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    with pytest.raises(IncompatibleModelError, match="not an HSCoNAS latency model"):
        HSCoNASModel.load(bad)


def test_correction_is_chosen_by_leave_one_out_against_the_plain_lut_sum(fitted) -> None:  # type: ignore[no-untyped-def]
    model, archs = fitted
    lut = model.lut
    sums = np.array([model.lut_sum(a) for a in archs])
    # measurements that the LUT sum already explains: no correction may be kept
    exact = HSCoNASModel.fit(lut, archs, sums * (1 + 0.001 * np.array([1, -1, 1, -1, 0])))
    assert exact.info["fit"]["correction"] == "none"
    np.testing.assert_allclose(exact.predict_ms(archs), sums)
    # a systematic overhead the LUT misses (a constant plus 40%): the ridge correction wins
    skewed = 1.4 * sums + 0.5
    corrected = HSCoNASModel.fit(lut, archs, skewed, corrections=("none", "ridge"))
    assert corrected.info["fit"]["correction"] == "ridge"
    assert np.max(np.abs(corrected.predict_ms(archs) / skewed - 1)) < 0.05
    with pytest.raises(ValueError, match="unknown corrections"):
        HSCoNASModel.fit(lut, archs, skewed, corrections=("quadratic",))


def test_share_correction_learns_per_block_factors_and_survives_a_round_trip(
    tmp_path,
) -> None:  # type: ignore[no-untyped-def]
    archs = sample_archs("ofa-mbv3", 30, resolution=128, seed=3)
    blocks = {}
    for a in archs:
        for c in decompose(meta_build(a), (3, 128, 128)):
            blocks.setdefault(c.key, c)
    # a table from each block's MACs (0.02 ms launch cost + 1 ms per million MACs), not timed:
    # load on the machine would change the problem this test sets (timing is tested above)
    lut = LookupTable(
        space="ofa-mbv3",
        device="roofline",
        backend="torch",
        settings={},
        resolution=128,
        entries={
            k: LutEntry(k, 0.02 + count_macs(materialize(c.module), c.input_shape) / 1e6, 0.0,
                        True, c.input_shape)
            for k, c in blocks.items()
        },
    )  # fmt: skip
    probe = HSCoNASModel.fit(lut, archs[:3], [1.0, 1.1, 1.2])
    # the device runs one block 2x slower inside a network than in isolation (e.g. because it
    # loses a fused kernel there): the slowest block that 30-70% of the networks use
    keys_of = [probe.features(a).block_keys for a in archs]
    uses = [set(k) for k in keys_of]
    common = [k for k in lut.entries if 0.3 <= np.mean([k in u for u in uses]) <= 0.7]
    slow = max(common, key=lambda k: lut.latencies([k])[0])

    y = np.array(
        [sum(lut.latencies([k])[0] * (2.0 if k == slow else 1.0) for k in keys) for keys in keys_of]
    )
    train, test = archs[:22], archs[22:]
    model = HSCoNASModel.fit(lut, train, y[:22])
    ridge = HSCoNASModel.fit(lut, train, y[:22], corrections=("none", "ridge"))
    assert model.correction == "share" and slow in model.share_keys
    err = np.abs(model.predict_ms(test) / y[22:] - 1)
    err_ridge = np.abs(ridge.predict_ms(test) / y[22:] - 1)
    assert err.mean() < err_ridge.mean()
    # the slow block gets by far the largest relative correction (shrunk from its true +1.0)
    w = dict(zip(model.share_keys, model.coef[-len(model.share_keys) :], strict=True))
    runner_up = max(v for k, v in w.items() if k != slow)
    assert w[slow] > 0.2 and w[slow] > 2 * runner_up
    assert len(model.coef) == len(model.feature_names) + 1
    again = HSCoNASModel.load(model.save(tmp_path / "m.json"))
    assert again.correction == "share" and again.share_keys == model.share_keys
    np.testing.assert_allclose(again.predict_ms(test), model.predict_ms(test))
