"""The GP kernel on gene codes equals scikit-learn's RBF on the one-hot features it stands for."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

import hsconas.spaces  # noqa: F401
from hsconas.search.surrogate.gp_kernels import OneHotMatchRBF
from hsconas.search.surrogate.models import gp_posterior
from hsconas.space import get_space
from hsconas.space.codec import GeneCodec, OneHotFeatures


def _codes(space_name: str, n: int, seed: int) -> tuple[GeneCodec, np.ndarray]:
    space = get_space(space_name)
    codec = GeneCodec(space)
    return codec, codec.encode(space.sample_many(n, seed))


@pytest.mark.parametrize("pairwise", [True, False])
def test_kernel_and_gradient_equal_rbf_on_one_hot_features(pairwise: bool) -> None:
    codec, codes = _codes("ofa-mbv3", 40, 1)
    feats = OneHotFeatures(codec, pairwise=pairwise)
    X, F = codes.astype(float), feats.transform(codes)
    ref = RBF(9.0)
    mine = OneHotMatchRBF(9.0, pairwise=pairwise)
    np.testing.assert_allclose(mine(X[:25], X[25:]), ref(F[:25], F[25:]), rtol=1e-12, atol=1e-15)
    k_ref, g_ref = ref(F, eval_gradient=True)
    k, g = mine(X, eval_gradient=True)
    np.testing.assert_allclose(k, k_ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-14)
    assert np.all(np.diag(k) == 1.0)
    with pytest.raises(ValueError, match="Gradient"):
        mine(X[:3], X[3:6], eval_gradient=True)


def test_fitted_gp_on_codes_matches_gp_on_features() -> None:
    """Same hyper-parameter fit and same posterior (through gp_posterior) as the wide features."""
    codec, codes = _codes("proxylessnas", 90, 2)
    feats = OneHotFeatures(codec, pairwise=True)
    rng = np.random.default_rng(0)
    y = feats.transform(codes) @ rng.normal(size=feats.n_features) * 0.05
    y = (y - y.mean()) / y.std()
    _, pool = _codes("proxylessnas", 200, 3)

    def fit(rbf: RBF, X: np.ndarray) -> GaussianProcessRegressor:
        kernel = ConstantKernel(1.0, (0.05, 20.0)) * rbf + WhiteKernel(0.05, (1e-3, 1.0))
        return GaussianProcessRegressor(kernel, random_state=0).fit(X, y)

    gp_ref = fit(RBF(3.0, (0.5, 50.0)), feats.transform(codes))
    gp = fit(OneHotMatchRBF(3.0, (0.5, 50.0), pairwise=True), codes.astype(float))
    assert isinstance(gp.kernel_.k1.k2, OneHotMatchRBF)  # survives the optimiser's clones
    np.testing.assert_allclose(gp.kernel_.theta, gp_ref.kernel_.theta, rtol=1e-5, atol=1e-7)
    mean, sd = gp_posterior(gp, pool.astype(float))
    ref_mean, ref_sd = gp_posterior(gp_ref, feats.transform(pool))
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(sd, ref_sd, rtol=1e-5, atol=1e-7)
    sk_mean, sk_sd = gp.predict(pool.astype(float), return_std=True)
    np.testing.assert_allclose(mean, sk_mean, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(sd, sk_sd, rtol=1e-6, atol=1e-9)
