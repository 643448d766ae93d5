"""Surrogate features and acquisition pieces of the HSCoNAS search: NB201 cell features (effective
cell, canonical form, path encoding), their predictive value on the real NB201 table, and the
probability of non-domination."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kendalltau

import hsconas.spaces  # noqa: F401
from hsconas.search.surrogate.acquisition import (
    latency_quantum,
    non_dominated_batch,
    prob_non_dominated,
)
from hsconas.search.surrogate.models import (
    RidgeEnsemble,
    inflated_residuals,
    loo_residuals,
    robust_sd,
)
from hsconas.space import get_space
from hsconas.space.codec import GeneCodec, OneHotFeatures
from hsconas.spaces.nb201_features import CellFeatureMap, nb201_canonical, nb201_tables

OPS = {"none": 0, "skip": 1, "c1": 2, "c3": 3, "avg": 4}


def _ops(*names: str) -> list[int]:
    return [OPS[n] for n in names]


def test_canonical_form_merges_equivalent_cells() -> None:
    # edge order: 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2
    assert nb201_canonical(_ops("none", "none", "none", "none", "none", "none")) == "#"
    # node 1 receives nothing, so the conv out of it is dead: same as with none there
    dead = nb201_canonical(_ops("none", "c3", "none", "none", "c1", "c3"))
    assert dead == nb201_canonical(_ops("none", "c3", "none", "none", "none", "c3"))
    # node 2 cannot reach the output: the edges into it are dead
    assert nb201_canonical(_ops("c3", "c1", "avg", "skip", "c3", "none")) == nb201_canonical(
        _ops("c3", "none", "none", "skip", "c3", "none")
    )
    # sums are unordered; skip is the identity
    a = nb201_canonical(_ops("c3", "none", "none", "c1", "skip", "none"))
    b = nb201_canonical(_ops("c1", "none", "none", "c3", "skip", "none"))
    assert a == b == "(0)@nor_conv_1x1+(0)@nor_conv_3x3"
    # different computations stay apart
    assert nb201_canonical(_ops("c3", "none", "none", "none", "c1", "none")) != nb201_canonical(
        _ops("c1", "none", "none", "none", "c3", "none")
    )


def test_path_encoding_counts_live_paths() -> None:
    codec = GeneCodec(get_space("nb201"))
    assert isinstance(get_space("nb201").surrogate_features(codec, "accuracy"), CellFeatureMap)
    fmap = CellFeatureMap(codec)
    space = get_space("nb201")
    arch = space.from_string(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    x = fmap.transform(codec.encode([arch]))[0]
    paths = x[60:144]  # 4 + 16 + 64 op-sequence columns after the two one-hot blocks
    c3 = 2  # index of nor_conv_3x3 among the 4 non-none ops
    assert paths[c3] == 1  # 0 -> 3
    assert paths[4 + c3 * 4 + c3] == 2  # 0 -> 1 -> 3 and 0 -> 2 -> 3
    assert paths[20 + (c3 * 4 + c3) * 4 + c3] == 1  # 0 -> 1 -> 2 -> 3
    assert paths.sum() == 4
    # a cell whose output receives nothing has no live path and dead-edge one-hots only
    dead = space.from_string(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|"
    )
    xd = fmap.transform(codec.encode([dead]))[0]
    assert xd[60:144].sum() == 0
    assert xd[30:60].reshape(6, 5)[:, 0].sum() == 6  # every effective edge is none
    # one-hot spaces without a cell encoding get the generic features
    fbnet = get_space("fbnet")
    for target in ("accuracy", "latency"):
        assert type(fbnet.surrogate_features(GeneCodec(fbnet), target)) is OneHotFeatures


def test_canonical_classes_coarsen_published_unique_str(data_dir: Path) -> None:
    import pandas as pd

    df = pd.read_csv(data_dir / "nb201" / "accuracy.csv", usecols=["arch_str", "unique_str"])
    space = get_space("nb201")
    codec = GeneCodec(space)
    classes = CellFeatureMap(codec).classes(
        codec.encode([space.from_string(s) for s in df.arch_str])
    )
    # every published equivalence group falls into exactly one of our classes
    per_group = pd.Series(classes).groupby(df.unique_str.to_numpy()).nunique()
    assert per_group.max() == 1
    assert df.unique_str.nunique() == 6466
    assert 4000 < len(np.unique(classes)) <= 6466
    _, all_classes = nb201_tables()
    assert all_classes.shape == (15625,)


def test_cell_features_rank_nb201_accuracy_better_than_one_hot(data_dir: Path) -> None:
    from sklearn.ensemble import ExtraTreesRegressor

    from hsconas.data.tables import load_nb201_accuracy

    table = load_nb201_accuracy(data_dir / "nb201" / "accuracy.csv")
    y = table.column("cifar10")
    codec = GeneCodec(get_space("nb201"))
    codes = codec.encode(list(table.archs))
    taus = {}
    for name, X in (
        ("onehot", OneHotFeatures(codec, pairwise=False).transform(codes)),
        ("cell", CellFeatureMap(codec).transform(codes)),
    ):
        t = []
        for seed in (0, 1):
            idx = np.random.default_rng(seed).choice(len(y), 300, replace=False)
            model = ExtraTreesRegressor(50, max_features=0.5, random_state=0, n_jobs=1)
            model.fit(X[idx], y[idx])
            t.append(kendalltau(model.predict(X), y).statistic)
        taus[name] = float(np.mean(t))
    # measured: ~0.82 with cell features vs ~0.63 with one-hot (300 random training cells)
    assert taus["cell"] > 0.75 and taus["cell"] > taus["onehot"] + 0.1, taus


def test_prob_non_dominated_matches_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    acc = np.array([70.0, 80.0, 85.0, 84.0])
    lat = np.array([1.0, 2.0, 3.0, 3.5])
    mu = np.array([75.0, 90.0, 60.0, 84.5])
    sd = np.array([3.0, 1.0, 0.5, 2.0])
    lat_mu = np.array([1.5, 5.0, 10.0, 2.5])
    p = prob_non_dominated(mu, sd, lat_mu, 0.7, acc, lat)
    A = mu + sd * rng.standard_normal((200_000, 4))
    L = lat_mu + 0.7 * rng.standard_normal((200_000, 4))
    dominated = np.zeros_like(A, dtype=bool)
    for a, la in zip(acc, lat, strict=True):
        dominated |= (la <= L) & (a >= A)
    np.testing.assert_allclose(p, 1 - dominated.mean(axis=0), atol=0.005)
    assert p[2] < 1e-6 < p[1]  # slow and weak vs fast and strong


def test_non_dominated_batch_spreads_picks_by_fantasies() -> None:
    # candidates 0 and 1 are twins that surely beat the known points; 2 is a fast cell that
    # probably (p ~ 0.98) beats the fast known point. A plain top-2 by probability takes the
    # twins; the greedy batch takes one twin, which as a fantasy halves the other's chance, and
    # then the fast cell.
    mu = np.array([80.0, 80.0, 60.0])
    sd = np.array([0.5, 0.5, 0.2])
    lat_mu = np.array([10.0, 10.0, 2.0])
    acc, lat = np.array([70.0, 59.6]), np.array([9.0, 1.5])
    p = prob_non_dominated(mu, sd, lat_mu, 0.5, acc, lat)
    assert p[0] == p[1] > p[2] > 0.95
    assert non_dominated_batch(mu, sd, lat_mu, 0.5, acc, lat, 2) == [0, 2]
    assert non_dominated_batch(mu, sd, lat_mu, 0.5, acc, lat, 5) == [0, 2, 1]


def test_prob_non_dominated_with_whole_millisecond_latencies_matches_monte_carlo() -> None:
    """A device reporting whole ms: a candidate whose latency rounds to a known point's ties
    it and must beat its accuracy (the continuous rule would count half of those as faster)."""
    rng = np.random.default_rng(1)
    acc = np.array([70.0, 80.0, 85.0])
    lat = np.array([3.0, 5.0, 8.0])
    mu = np.array([72.0, 78.0, 86.0, 79.5])
    sd = np.array([1.0, 2.0, 0.5, 0.5])
    lat_mu = np.array([3.0, 5.1, 8.0, 5.0])
    p = prob_non_dominated(mu, sd, lat_mu, 0.6, acc, lat, lat_quantum=1.0)
    A = mu + sd * rng.standard_normal((200_000, 4))
    L = np.round(lat_mu + 0.6 * rng.standard_normal((200_000, 4)))
    dominated = np.zeros_like(A, dtype=bool)
    for a, la in zip(acc, lat, strict=True):
        dominated |= (la <= L) & (a >= A)
    np.testing.assert_allclose(p, 1 - dominated.mean(axis=0), atol=0.005)
    continuous = prob_non_dominated(mu, sd, lat_mu, 0.6, acc, lat)
    assert continuous[3] > p[3] + 0.2  # at 5 ms, below (80, 5): a tie, not half faster


def test_latency_quantum_detects_reported_steps_only() -> None:
    assert latency_quantum(np.array([5.0, 6.0, 6.0, 9.0, 12.0, 7.0])) == 1.0
    assert latency_quantum(np.array([0.5, 1.0, 2.5, 1.5])) == 0.5
    assert latency_quantum(np.random.default_rng(0).uniform(1, 30, 300)) == 0.0
    assert latency_quantum(np.array([4.0, 4.0])) == 0.0  # too few distinct values to tell


def test_latency_features_keep_ops_that_survive_dead_code_elimination(data_dir: Path) -> None:
    """Compiled cells drop edges whose result never reaches the output but still compute convs
    fed by zeros; on the Pixel 3 column of the HELP table the 'survives elimination' one-hot
    explains latency better than raw plus effective one-hot (all rows, least squares)."""
    from hsconas.data.tables import load_latency_table

    space = get_space("nb201")
    codec = GeneCodec(space)
    fmap = CellFeatureMap(codec, one_hot_only=True)
    # node 2 cannot reach the output: its two convs are eliminated
    cell = space.from_string(
        "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"
    )
    x = fmap.transform(codec.encode([cell]))[0]
    assert x.shape == (90,)
    survive = x[60:].reshape(6, 5)
    assert survive[:, 0].sum() == 5 and survive[3, 1] == 1  # only 3<-0 skip survives
    # node 1 gets zeros (none), but its conv feeds the output: computed, so it survives
    zeros_in = space.from_string(
        "|none~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    z = fmap.transform(codec.encode([zeros_in]))[0]
    assert z[60:].reshape(6, 5)[2, 3] == 1 and z[30:60].reshape(6, 5)[2, 0] == 1

    table = load_latency_table(data_dir / "nb201" / "latency_help.csv.gz")
    codes = codec.encode(list(table.archs))
    y = table.column("pixel3")
    X = fmap.transform(codes)

    def rmse(cols: np.ndarray) -> float:
        A = np.column_stack([cols, np.ones(len(y))])
        coef, *_ = np.linalg.lstsq(A, y, rcond=None)
        return float(np.sqrt(np.mean((A @ coef - y) ** 2)))

    assert rmse(X) < 0.95 * rmse(X[:, :60])


def test_down_weighted_derived_latency_columns_extrapolate_to_dead_edges(data_dir: Path) -> None:
    """A search queries cells that are mostly alike: fitted on 285 cells without dead edges and
    15 with, a ridge whose effective and surviving columns weigh as much as the raw ops trades
    coefficients between collinear columns and mispredicts the other dead-edge cells of the
    RTX 2080 Ti (batch 256) column, where latency is additive in the ops placed; penalising
    those columns 100x more keeps the additive fit."""
    from hsconas.data.tables import load_latency_table

    codec = GeneCodec(get_space("nb201"))
    table = load_latency_table(data_dir / "nb201" / "latency_help.csv.gz")
    codes = codec.encode(list(table.archs))
    y = table.column("2080ti_256")
    plain = CellFeatureMap(codec, one_hot_only=True)
    weighted = CellFeatureMap(codec, one_hot_only=True, derived_weight=0.1)
    X1, X2 = plain.transform(codes), weighted.transform(codes)
    np.testing.assert_array_equal(X2[:, :30], X1[:, :30])
    np.testing.assert_allclose(X2[:, 30:], 0.1 * X1[:, 30:])
    dead = (X1[:, :30] != X1[:, 60:]).any(axis=1)
    rng = np.random.default_rng(0)
    train = np.r_[rng.choice(np.flatnonzero(~dead), 285, replace=False),
                  rng.choice(np.flatnonzero(dead), 15, replace=False)]  # fmt: skip
    test = np.setdiff1d(np.flatnonzero(dead), train)

    def rmse(X: np.ndarray) -> float:
        model = RidgeEnsemble(alpha=0.1, n_members=1).fit(X[train], y[train])
        return float(np.sqrt(np.mean((model.predict(X[test]).mean - y[test]) ** 2)))

    assert rmse(X2) < 0.3 * rmse(X1)


def test_within_class_noise_pools_spread_of_equal_cells() -> None:
    from hsconas.search.surrogate.models import within_class_noise

    rng = np.random.default_rng(0)
    classes = np.repeat(np.arange(40), 5)
    y = 10.0 * classes + rng.normal(0.0, 0.3, len(classes))  # class means far apart
    s = within_class_noise(classes, y, prior_sd=1.0, prior_n=4)
    assert 0.2 < s < 0.45  # the between-class spread does not leak in; the prior barely counts
    # with no repeated class the prior is all there is
    assert abs(within_class_noise(np.arange(5), np.arange(5.0), prior_sd=0.7) - 0.7) < 1e-12
    # the pooled formula, by hand, with classes of sizes 3, 1 and 2
    cls, vals = np.array([7, 7, 7, 2, 9, 9]), np.array([1.0, 2.0, 4.0, 50.0, 3.0, 5.0])
    ss = (1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2 + 1.0 + 1.0
    expected = np.sqrt((ss + 4 * 0.5**2) / (3 + 4))
    assert within_class_noise(cls, vals, prior_sd=0.5) == pytest.approx(expected, rel=1e-12)


def test_accuracy_features_ignore_dead_edges() -> None:
    space = get_space("nb201")
    codec = GeneCodec(space)
    fmap = CellFeatureMap(codec, effective_only=True)
    a = space.from_string(
        "|skip_connect~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|"
    )
    b = space.from_string(
        "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"
    )
    xa, xb = fmap.transform(codec.encode([a, b]))
    assert np.array_equal(xa, xb)
    assert fmap.classes(codec.encode([a]))[0] == fmap.classes(codec.encode([b]))[0]


def test_gp_posterior_equals_scikit_learn_predict() -> None:
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    from hsconas.search.surrogate.models import gp_posterior

    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, (80, 12)).astype(float)
    y = X @ rng.normal(size=12) + 0.1 * rng.normal(size=80)
    kernel = ConstantKernel(1.0) * RBF(2.0) + WhiteKernel(0.05)
    gp = GaussianProcessRegressor(kernel, random_state=0).fit(X, (y - y.mean()) / y.std())
    Xp = rng.integers(0, 3, (300, 12)).astype(float)
    mean, sd = gp_posterior(gp, Xp)
    ref_mean, ref_sd = gp.predict(Xp, return_std=True)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(sd, ref_sd, rtol=1e-6, atol=1e-9)
    # the training points are predicted with the noise-level uncertainty, not zero
    _, sd_tr = gp_posterior(gp, X[:5])
    assert np.all(sd_tr > 0) and np.all(sd_tr < sd.max())
    normalised_inside = GaussianProcessRegressor(kernel, normalize_y=True).fit(X, y)
    with pytest.raises(ValueError, match="normalize_y=False"):
        gp_posterior(normalised_inside, Xp)


def test_cells_with_equal_accuracy_features_share_a_row_id() -> None:
    space = get_space("nb201")
    codec = GeneCodec(space)
    fmap = CellFeatureMap(codec, effective_only=True)
    codes = codec.encode(list(space.enumerate()))
    ids = fmap.row_ids(codes)
    X = fmap.transform(codes)
    first = {}
    for i, r in enumerate(ids.tolist()):
        j = first.setdefault(r, i)
        if j != i:
            assert np.array_equal(X[i], X[j])
    assert len(first) == len(np.unique(X, axis=0)) < len(codes)


def test_op_count_columns_let_a_few_queries_predict_latency(data_dir: Path) -> None:
    """With op-count columns in front and the per-edge columns scaled down, a ridge learns one
    cost per op before per-edge deviations: fitted on 30 random cells of the Xeon Gold 6240
    column it predicts the other cells far better than on per-edge columns alone."""
    from hsconas.data.tables import load_latency_table

    codec = GeneCodec(get_space("nb201"))
    cell = get_space("nb201").from_string(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    )
    per_edge = CellFeatureMap(codec, one_hot_only=True, derived_weight=0.1)
    counted = CellFeatureMap(codec, one_hot_only=True, derived_weight=0.1, edge_weight=0.1)
    x, z = per_edge.transform(codec.encode([cell]))[0], counted.transform(codec.encode([cell]))[0]
    # op counts in NB201_OPS order: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3
    assert z[:5].tolist() == [1, 1, 1, 3, 0]
    np.testing.assert_allclose(z[5:], 0.1 * x)
    with pytest.raises(ValueError, match="one_hot_only"):
        CellFeatureMap(codec, edge_weight=0.1)

    table = load_latency_table(data_dir / "nb201" / "latency_help.csv.gz")
    codes = codec.encode(list(table.archs))
    y = table.column("gold_6240")
    A, B = per_edge.transform(codes), counted.transform(codes)
    errors = {"per_edge": [], "counted": []}
    for seed in range(3):
        train = np.random.default_rng(seed).choice(len(y), 30, replace=False)
        test = np.setdiff1d(np.arange(len(y)), train)
        for name, X in (("per_edge", A), ("counted", B)):
            model = RidgeEnsemble(alpha=0.1, n_members=1).fit(X[train], y[train])
            errors[name].append(np.sqrt(np.mean((model.predict(X[test]).mean - y[test]) ** 2)))
    assert np.mean(errors["counted"]) < 0.7 * np.mean(errors["per_edge"])


def test_loo_residuals_equal_refitting_without_each_row() -> None:
    rng = np.random.default_rng(0)
    for n, d in ((30, 8), (12, 40)):  # primal and dual form
        X, y = rng.random((n, d)), rng.random(n)
        refit = [
            y[i]
            - RidgeEnsemble(alpha=0.3, n_members=1)
            .fit(np.delete(X, i, axis=0), np.delete(y, i))
            .predict(X[i : i + 1])
            .mean[0]
            for i in range(n)
        ]
        model = RidgeEnsemble(alpha=0.3, n_members=1).fit(X, y)
        np.testing.assert_allclose(loo_residuals(model, X, y), refit, atol=1e-10)
    with pytest.raises(ValueError, match="n_members=1"):
        loo_residuals(RidgeEnsemble(alpha=0.3, n_members=3).fit(X, y), X, y)


def test_loo_residuals_estimate_the_error_on_new_cells(data_dir: Path) -> None:
    """On the latency features a search uses (95 columns, most held down by the penalty), fitted
    on 60 random cells of the Xeon Gold 6240 column: the leave-one-out residuals' robust sd is
    within 30% of the model's error on the other 15565 cells, where inflating the in-sample
    residuals by the column count overstates it more than three times."""
    from hsconas.data.tables import load_latency_table

    codec = GeneCodec(get_space("nb201"))
    features = CellFeatureMap(codec, one_hot_only=True, derived_weight=0.1, edge_weight=0.1)
    table = load_latency_table(data_dir / "nb201" / "latency_help.csv.gz")
    X = features.transform(codec.encode(list(table.archs)))
    y = table.column("gold_6240")
    ratios = {"loo": [], "inflated": []}
    for seed in range(3):
        train = np.random.default_rng(seed).choice(len(y), 60, replace=False)
        test = np.setdiff1d(np.arange(len(y)), train)
        model = RidgeEnsemble(alpha=0.1, n_members=1).fit(X[train], y[train])
        true_sd = robust_sd(y[test] - model.predict(X[test]).mean)
        ratios["loo"].append(robust_sd(loo_residuals(model, X[train], y[train])) / true_sd)
        ratios["inflated"].append(
            robust_sd(inflated_residuals(model, X[train], y[train])) / true_sd
        )
    assert 0.7 < np.mean(ratios["loo"]) < 1.3
    assert np.mean(ratios["inflated"]) > 3.0
