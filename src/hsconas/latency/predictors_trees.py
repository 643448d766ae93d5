"""The ``gbdt`` latency predictor: a bag of gradient-boosted tree ensembles stored as arrays.

scikit-learn fits the trees; :func:`_dump_tree` writes each as JSON arrays and :class:`_Tree`
evaluates them with plain numpy, so saved models need no pickles (no torch).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hsconas.latency.predictors_base import FloatArray, LatencyPredictor


def _dump_tree(tree: Any) -> dict[str, list[float] | list[int]]:
    """Arrays of a fitted sklearn ``Tree`` (public attributes): children, split, leaf value."""
    return {
        "left": tree.children_left.astype(int).tolist(),
        "right": tree.children_right.astype(int).tolist(),
        "feature": tree.feature.astype(int).tolist(),
        "threshold": tree.threshold.astype(float).tolist(),
        "value": tree.value.reshape(-1).astype(float).tolist(),
    }


class _Tree:
    """A regression tree as arrays; leaves have ``left == -1``."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.left = np.asarray(d["left"], dtype=np.int64)
        self.right = np.asarray(d["right"], dtype=np.int64)
        self.feature = np.asarray(d["feature"], dtype=np.int64)
        self.threshold = np.asarray(d["threshold"], dtype=np.float64)
        self.value = np.asarray(d["value"], dtype=np.float64)

    def predict(self, Z: FloatArray) -> FloatArray:
        node = np.zeros(Z.shape[0], dtype=np.int64)
        rows = np.arange(Z.shape[0])
        while True:
            inner = self.left[node] >= 0
            if not inner.any():
                return self.value[node]
            idx = rows[inner]
            n = node[idx]
            go_left = Z[idx, self.feature[n]] <= self.threshold[n]
            node[idx] = np.where(go_left, self.left[n], self.right[n])


dump_tree = _dump_tree
"""Public name of the tree dump (other predictors store their trees the same way)."""
ArrayTree = _Tree
"""Public name of the array tree evaluator (reads what :func:`dump_tree` wrote)."""


class GBDTPredictor(LatencyPredictor):
    """A bag of gradient-boosted regression-tree ensembles on log-latency.

    Each member is a :class:`sklearn.ensemble.GradientBoostingRegressor` with row subsampling and
    its own seed; the prediction is the members' mean, the uncertainty their spread (plus the
    members' mean training residual variance, so it is never zero).

    Args:
        n_members: bag size (>= 2 for a spread).
        n_estimators: trees per member.
        learning_rate: shrinkage per tree.
        max_depth: depth of every tree.
        subsample: row fraction per tree (0, 1].
        seed: base random seed.
    """

    kind = "gbdt"

    def __init__(
        self,
        *,
        n_members: int = 4,
        n_estimators: int = 200,
        learning_rate: float = 0.08,
        max_depth: int = 4,
        subsample: float = 0.7,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if n_members < 1 or n_estimators < 1 or max_depth < 1:
            raise ValueError("n_members, n_estimators and max_depth must be >= 1")
        if not 0 < subsample <= 1 or not 0 < learning_rate <= 1:
            raise ValueError("subsample and learning_rate must be in (0, 1]")
        self.n_members = n_members
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.subsample = subsample
        self.seed = seed
        self.members: list[tuple[float, list[_Tree]]] = []
        self.resid_var = 0.0

    def config(self) -> dict[str, Any]:
        return {
            "n_members": self.n_members,
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "max_depth": self.max_depth,
            "subsample": self.subsample,
            "seed": self.seed,
        }

    def _fit_log(self, Z: FloatArray, ly: FloatArray) -> None:
        from sklearn.ensemble import GradientBoostingRegressor

        self.members = []
        dumped: list[dict[str, Any]] = []
        for k in range(self.n_members):
            m = GradientBoostingRegressor(
                n_estimators=self.n_estimators,
                learning_rate=self.learning_rate,
                max_depth=self.max_depth,
                subsample=self.subsample if ly.size >= 20 else 1.0,
                min_samples_leaf=min(3, max(1, ly.size // 10)),
                random_state=self.seed + k,
            ).fit(Z, ly)
            init = float(np.asarray(m.init_.constant_).ravel()[0])
            trees = [_dump_tree(est[0].tree_) for est in m.estimators_]
            dumped.append({"init": init, "trees": trees})
        self._load_params({"members": dumped, "learning_rate": self.learning_rate})
        pred = np.stack([self._member_predict(i, Z) for i in range(len(self.members))])
        self.resid_var = float(np.mean((pred.mean(axis=0) - ly) ** 2))
        self._dumped = dumped

    def _member_predict(self, i: int, Z: FloatArray) -> FloatArray:
        init, trees = self.members[i]
        out = np.full(Z.shape[0], init)
        for t in trees:
            out += self.learning_rate * t.predict(Z)
        return out

    def _predict_log(self, Z: FloatArray) -> tuple[FloatArray, FloatArray]:
        pred = np.stack([self._member_predict(i, Z) for i in range(len(self.members))])
        var = pred.var(axis=0, ddof=1) if len(self.members) > 1 else np.zeros(Z.shape[0])
        return pred.mean(axis=0), var + self.resid_var

    def _params(self) -> dict[str, Any]:
        return {"members": self._dumped, "resid_var": self.resid_var}

    def _load_params(self, p: dict[str, Any]) -> None:
        self._dumped = p["members"]
        self.members = [(float(m["init"]), [_Tree(t) for t in m["trees"]]) for m in p["members"]]
        self.resid_var = float(p.get("resid_var", 0.0))
