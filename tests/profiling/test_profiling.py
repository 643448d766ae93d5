"""Block profiling: specifications, forced draws, measurement reuse, regression, reduction, insights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hsconas.spaces  # noqa: F401
from hsconas.errors import DataFormatError, HsconasError, InvalidArchitectureError
from hsconas.evaluation import ArchPool, CallableAccuracy, TableLatency
from hsconas.profiling import (
    enumerate_specs,
    fit_block_regression,
    holds,
    load_profile,
    parse_spec,
    profile_blocks,
)
from hsconas.profiling.draws import draw_forced
from hsconas.profiling.friendliness import block_friendliness, friendliness
from hsconas.profiling.insights import cross_device_insights, device_insights
from hsconas.profiling.reduce import load_reduction, random_reduction, reduce_space
from hsconas.space import get_space
from hsconas.store import ResultStore

NB201 = get_space("nb201")


def _effects(seed: int) -> dict[tuple[str, str], float]:
    """Known additive latency effects (ms) per (edge, op)."""
    rng = np.random.default_rng(seed)
    base = {
        "none": 0.0,
        "skip_connect": 0.2,
        "nor_conv_1x1": 1.0,
        "nor_conv_3x3": 3.0,
        "avg_pool_3x3": 0.8,
    }
    return {
        (g.name, op): base[op] * (1.0 + 0.5 * i) + 0.1 * rng.standard_normal()
        for i, g in enumerate(NB201.genes)
        for op in g.choices
    }


def _synthetic_table(tmp_path: Path, n: int = 3000, seed: int = 0, noise: float = 0.05) -> Path:
    """An NB201-schema latency CSV of ``n`` random cells with additive latency on two devices."""
    rng = np.random.default_rng(seed)
    archs = NB201.sample_many(n, rng, unique=True)
    eff = _effects(1)
    lat = np.array(
        [
            5.0 + sum(eff[(g.name, v)] for g, v in zip(NB201.genes, a.values, strict=True))
            for a in archs
        ]
    )
    df = pd.DataFrame(
        {
            "arch_str": [NB201.to_string(a) for a in archs],
            "dev_a": lat + noise * rng.standard_normal(n),
            "dev_b": 2.0 + 0.5 * lat + noise * rng.standard_normal(n),
        }
    )
    path = tmp_path / "lat.csv"
    df.to_csv(path, index=False)
    return path


# ------------------------------------------------------------------ specifications
def test_specs_cover_every_gene_choice_and_validate() -> None:
    specs = enumerate_specs(NB201)
    assert len(specs) == 30
    assert {s.position for s in specs} == set(range(6))
    only = enumerate_specs(NB201, blocks=["nor_conv_3x3"], positions=[5, "edge1<-0"])
    assert [(s.gene, s.choice) for s in only] == [
        ("edge3<-2", "nor_conv_3x3"),
        ("edge1<-0", "nor_conv_3x3"),
    ]
    with pytest.raises(
        InvalidArchitectureError, match=r"block 'conv5x5' is not a choice.*nor_conv_3x3"
    ):
        enumerate_specs(NB201, blocks=["conv5x5"])
    with pytest.raises(
        InvalidArchitectureError, match=r"position 6 is out of range; positions are 0\.\.5"
    ):
        enumerate_specs(NB201, positions=[6])
    with pytest.raises(InvalidArchitectureError, match="unknown layer 'edge9<-0'"):
        enumerate_specs(NB201, positions=["edge9<-0"])
    assert parse_spec(NB201, "3=skip_connect").gene == "edge3<-0"
    with pytest.raises(InvalidArchitectureError, match="not a choice"):
        parse_spec(NB201, "edge1<-0=conv7x7")
    ofa = get_space("ofa-mbv3")
    s = parse_spec(ofa, "u3.l2.kernel=7")
    assert (s.unit, s.layer, s.block) == ("u3", "u3.l2", "kernel=7")


def test_table_of_another_space_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "fbnet.csv"
    pd.DataFrame({"op_idx_list": ["0 " * 22], "dev": [1.0]}).to_csv(p, index=False)
    with pytest.raises(DataFormatError, match="is a fbnet table, not a nb201 table"):
        TableLatency.from_path(p, "dev", "nb201")


# ------------------------------------------------------------------ forced draws
def test_forced_draws_from_a_table_hold_the_block(tmp_path: Path) -> None:
    src = TableLatency.from_path(_synthetic_table(tmp_path, n=800), "dev_a", "nb201")
    pool = src.pool(NB201)
    for spec in enumerate_specs(NB201):
        rng = np.random.default_rng(3)
        got = draw_forced(NB201, spec, 25, rng, pool=pool)
        assert len(got) == 25 and len(set(got)) == 25
        assert all(a in pool and holds(NB201, a, spec) for a in got)
        assert got == draw_forced(NB201, spec, 25, np.random.default_rng(3), pool=pool)
    spec = enumerate_specs(NB201, blocks=["none"], positions=[0])[0]
    available = int(pool.mask_of(spec.position, spec.choice).sum())
    assert len(draw_forced(NB201, spec, 10_000, np.random.default_rng(0), pool=pool)) == available


def test_forced_sampling_activates_elastic_layers() -> None:
    ofa = get_space("ofa-mbv3")
    spec = parse_spec(ofa, "u3.l4.kernel=7")
    got = draw_forced(ofa, spec, 20, np.random.default_rng(0))
    assert len(got) == 20
    for a in got:
        d = ofa.as_dict(a)
        assert d["u3.depth"] == 4 and d["u3.l4.kernel"] == 7 and ofa.contains(a)


# ------------------------------------------------------------------ measurement reuse
def test_measurements_are_reused_across_specs_and_through_the_store(tmp_path: Path) -> None:
    src = TableLatency.from_path(_synthetic_table(tmp_path), "dev_a", "nb201")
    specs = enumerate_specs(NB201)
    store = ResultStore(tmp_path / "r.db")
    p1 = profile_blocks(NB201, specs, src, samples=10, seed=0, store=store)
    assert p1.n_distinct < len(specs) * 10
    assert p1.n_new == p1.n_distinct
    assert (p1.stats.loc[p1.stats["spec"] != "baseline", "n"] == 10).all()
    assert len(store.measurements(space="nb201", device="dev_a")) == p1.n_distinct
    p2 = profile_blocks(NB201, specs, src, samples=10, seed=0, store=store)
    assert p2.n_new == 0 and p2.n_distinct == p1.n_distinct
    pd.testing.assert_frame_equal(p1.stats, p2.stats)
    # a table answers from the table, so the stored value is the table's
    row = p1.draws.iloc[0]
    assert (
        src.measure(NB201, [NB201.from_string(row["arch"])], store=None)[0][0] == row["latency_ms"]
    )


# ------------------------------------------------------------------ regression
def test_regression_recovers_known_additive_effects(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    archs = NB201.sample_many(600, rng, unique=True)
    eff = _effects(1)
    y = np.array(
        [
            5.0 + sum(eff[(g.name, v)] for g, v in zip(NB201.genes, a.values, strict=True))
            for a in archs
        ]
    )
    y = y + 0.1 * rng.standard_normal(len(y))
    reg = fit_block_regression(NB201, archs, y)
    assert reg.r2 > 0.99
    for g in NB201.genes:
        truth = np.array([eff[(g.name, c)] for c in g.choices])
        truth = truth - truth.mean()
        for c, t in zip(g.choices, truth, strict=True):
            row = reg._row(g.name, c)
            assert abs(row["effect"] - t) < 4 * row["se"] + 1e-9
            assert abs(row["effect"] - t) < 0.05
            assert row["ci_low"] < t < row["ci_high"] or abs(row["effect"] - t) < 2.5 * row["se"]


# ------------------------------------------------------------------ reduction, insights
def _profile_with_accuracy(tmp_path: Path, device: str = "dev_a"):  # type: ignore[no-untyped-def]
    src = TableLatency.from_path(_synthetic_table(tmp_path), device, "nb201")
    acc_eff = {
        "none": -4.0,
        "skip_connect": 0.5,
        "nor_conv_1x1": 1.0,
        "nor_conv_3x3": 3.0,
        "avg_pool_3x3": -3.0,
    }

    def acc(archs):  # type: ignore[no-untyped-def]
        return [60 + sum(acc_eff[str(v)] for v in a.values) for a in archs]

    return profile_blocks(
        NB201,
        enumerate_specs(NB201),
        src,
        accuracy=CallableAccuracy(acc, "synthetic"),
        samples=15,
        seed=1,
    )


def test_reduction_keeps_min_and_random_control_matches(tmp_path: Path) -> None:
    prof = _profile_with_accuracy(tmp_path)
    red1 = reduce_space(prof, rule="dominated", keep_min=1, rescue_fronts=0)
    # avg_pool_3x3 is slower than skip and less accurate everywhere: it must go
    assert all("avg_pool_3x3" in red1.dropped.get(g.name, []) for g in NB201.genes)
    for k in (1, 2, 3, 4):
        red = reduce_space(prof, rule="dominated", keep_min=k, rescue_fronts=0)
        assert all(len(v) >= k for v in red.restrict.values())
        ctrl = random_reduction(red, seed=5)
        assert ctrl.size == red.size
        assert {g: len(v) for g, v in ctrl.restrict.items()} == {
            g: len(v) for g, v in red.restrict.items()
        }
        path = red.save(tmp_path / f"r{k}.json")
        doc = json.loads(path.read_text())
        assert doc["space"] == "nb201" and doc["device"] == "dev_a"
        assert NB201.restrict(doc["restrict"]).size() == red.size
        assert load_reduction(path).restrict == red.restrict
    from hsconas.cli.search_sources import load_restrict

    assert (
        load_restrict(tmp_path / "r2.json", "nb201")
        == json.loads((tmp_path / "r2.json").read_text())["restrict"]
    )
    with pytest.raises(HsconasError, match="keep-min"):
        reduce_space(prof, keep_min=0)


def test_front_rate_rule_drops_what_no_good_network_uses(tmp_path: Path) -> None:
    prof = _profile_with_accuracy(tmp_path)
    red = reduce_space(prof, keep_min=1)
    assert red.rule.startswith("front-rate(")
    # additive problem: the exact front uses none / skip / conv1x1 / conv3x3 only, so avg_pool
    # (slower than skip and less accurate) is the one op that may go, and some of it does
    assert red.dropped and all(v == ["avg_pool_3x3"] for v in red.dropped.values())
    for g in NB201.genes:
        # the two cheapest ops and the most accurate one anchor the front's ends
        assert {"none", "skip_connect", "nor_conv_3x3"} <= set(red.restrict[g.name])
    for key in (f"{g}=avg_pool_3x3" for g in red.dropped):
        assert "near-front rate" in red.reasons[key]
    assert red.size < NB201.size()
    protect_all = reduce_space(prof, keep_min=1, protect_cheapest=5)
    assert protect_all.size == NB201.size() and not protect_all.dropped
    with pytest.raises(HsconasError, match="unknown reduction rule"):
        reduce_space(prof, rule="magic")


def test_front_rate_ratio_trades_size_for_coverage(tmp_path: Path) -> None:
    prof = _profile_with_accuracy(tmp_path)
    kwargs = {"keep_min": 1, "rescue_fronts": 0, "protect_cheapest": 0, "protect_accurate": 0}
    sizes = [reduce_space(prof, min_rate_ratio=r, **kwargs).size for r in (0.0, 0.35, 0.7, 1.0)]
    assert sizes[0] == NB201.size()  # nothing falls below 0 x the best rate
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < sizes[1]
    # at ratio 1 only each layer's best near-front choice (and its ties) survives
    best_only = reduce_space(prof, min_rate_ratio=1.0, **kwargs)
    assert all(1 <= len(v) <= 2 for v in best_only.restrict.values())
    for bad in (-0.1, 1.5):
        with pytest.raises(HsconasError, match="min-rate-ratio"):
            reduce_space(prof, min_rate_ratio=bad)


def test_latency_only_profile_cannot_be_reduced(tmp_path: Path) -> None:
    src = TableLatency.from_path(_synthetic_table(tmp_path, n=500), "dev_a", "nb201")
    prof = profile_blocks(NB201, enumerate_specs(NB201), src, samples=4, seed=0)
    with pytest.raises(HsconasError, match="needs accuracy"):
        reduce_space(prof)


def test_insights_cite_the_numbers_of_the_tables(tmp_path: Path) -> None:
    pa = _profile_with_accuracy(tmp_path, "dev_a")
    pb = _profile_with_accuracy(tmp_path, "dev_b")
    ins = device_insights(pa) + cross_device_insights([pa, pb])
    assert ins
    for i in ins:
        for text in i.numbers.values():
            assert text in i.text
    costliest = next(i for i in ins if i.kind == "costliest" and i.device == "dev_a")
    bf = block_friendliness(pa)
    assert costliest.values["hi"] == pytest.approx(bf["lat_effect_pct"].max())
    assert "nor_conv_3x3" in costliest.text
    f = friendliness(pa)
    best = next(i for i in ins if i.kind == "friendliest")
    row = f.loc[f["score"].idxmax()]
    assert best.values["acc"] == pytest.approx(row["acc_effect"]) and str(row["gene"]) in best.text


def test_profile_round_trips_through_its_files(tmp_path: Path) -> None:
    prof = _profile_with_accuracy(tmp_path)
    paths = prof.save(tmp_path / "out")
    assert paths["stats_parquet"].is_file() and paths["effects"].is_file()
    back = load_profile(tmp_path / "out")
    assert back.n_distinct == prof.n_distinct and back.specs == prof.specs
    np.testing.assert_allclose(
        back.regression["accuracy"].frame["effect"], prof.regression["accuracy"].frame["effect"]
    )
    assert reduce_space(back).restrict == reduce_space(prof).restrict
    pool = ArchPool(NB201, [NB201.from_string(a) for a in back.draws["arch"]])
    assert len(pool) == prof.n_distinct


@pytest.mark.slow
def test_backend_source_times_real_networks_and_reuses_the_store(tmp_path: Path) -> None:
    from hsconas.evaluation import BackendLatency
    from hsconas.hardware.timing import TimingConfig

    timing = TimingConfig(warmup_runs=1, warmup_time_s=0.0, min_runs=5, max_runs=5, max_time_s=0.5)
    src = BackendLatency("torch", device="test-cpu", timing=timing)
    specs = enumerate_specs(NB201, blocks=["nor_conv_3x3", "none"], positions=[5])
    store = ResultStore(tmp_path / "r.db")
    p1 = profile_blocks(NB201, specs, src, samples=2, baseline_samples=2, seed=0, store=store)
    assert p1.n_new == p1.n_distinct >= 2
    assert (p1.draws["latency_ms"] > 0).all()
    p2 = profile_blocks(NB201, specs, src, samples=2, baseline_samples=2, seed=0, store=store)
    assert p2.n_new == 0
    np.testing.assert_allclose(p2.draws["latency_ms"], p1.draws["latency_ms"])


def test_backend_source_with_a_reference_stores_normalised_timings(tmp_path: Path) -> None:
    from hsconas.evaluation import parse_latency_source
    from hsconas.hardware.timing import TimingConfig

    src = parse_latency_source("backend:torch", space="nb201", device="test-cpu", reference=True)
    src.timing = TimingConfig(warmup_runs=1, warmup_time_s=0.0, min_runs=5, max_time_s=0.1)
    store = ResultStore(tmp_path / "r.db")
    archs = NB201.sample_many(4, 0, unique=True)
    lat, new = src.measure(NB201, archs[:2], store=store)
    assert new == 2 and (lat > 0).all()
    (cal,) = store.measurements(kind="reference")
    assert cal.key.startswith("nb201:")
    nets = store.measurements(kind="network")
    assert {m.settings["reference"] for m in nets} == {cal.key}
    assert src.settings["reference"] is True
    # a later chunk of the same profile is timed against the same calibration, even unstored
    _, new = src.measure(NB201, archs[2:], store=None)
    assert new == 2 and src._backend.reference.base_ms == cal.median_ms


def test_model_source_profiles_a_latency_model_file(tmp_path: Path) -> None:
    from hsconas.evaluation import ModelLatency, SourceError
    from hsconas.latency.base import ModelFileError
    from hsconas.latency.model_io import save_model
    from hsconas.latency.predictors import LinearPredictor

    archs = NB201.sample_many(200, 0, unique=True)
    y = np.array([1 + sum(3.0 if v == "nor_conv_3x3" else 0.5 for v in a.values) for a in archs])
    path = save_model(
        LinearPredictor().fit(NB201.feature_matrix(archs), y), tmp_path / "m.json",
        space="nb201", device="synth",
    )  # fmt: skip
    src = ModelLatency.from_file(path)
    prof = profile_blocks(NB201, enumerate_specs(NB201), src, samples=4, seed=0)
    assert prof.device == "synth" and prof.source["kind"] == "model"
    blocks = block_friendliness(prof).set_index("block")["lat_effect_pct"]
    assert blocks.idxmax() == "nor_conv_3x3"
    with pytest.raises(SourceError, match="not 'fbnet'"):
        src.pool(get_space("fbnet"))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ModelFileError, match="not an hsconas latency model"):
        ModelLatency.from_file(tmp_path / "bad.json")
