"""Accuracy predictors fitted on a table of architectures and measured accuracies (no torch).

An :class:`AccuracyPredictor` maps an architecture of one space to its predicted top-1 accuracy
(percent) and a standard deviation. Features (:class:`AccuracyFeatures`) are the space's own feature
vector (:meth:`SearchSpace.features <hsconas.space.SearchSpace.features>`: one-hot of the active
genes, plus resolution and unit depths on the MobileNet spaces) followed by log MACs and log
parameters in millions (:func:`hsconas.accuracy.costs.arch_cost`, equal to the counts of
:mod:`hsconas.nn.counting`). Model kinds:

* ``macs``: the MACs-only baseline; a quadratic in log MACs (its ranking is the MACs ranking).
* ``ridge``: ridge regression on the standardised features, penalty by generalised
  cross-validation; a bootstrap bag of ridges gives the spread.
* ``gbdt``: a small bag of gradient-boosted regression trees (trees stored as arrays, evaluated
  with numpy: :func:`hsconas.latency.predictors_trees.dump_tree`).
* ``ridge+gbdt``: the mean of the two.

:func:`fit_accuracy_model` cross-validates every requested kind by K folds *grouped by distinct
architecture* (a network measured twice never sits on both sides of a split), picks the kind with
the lowest cross-validated RMSE and refits it on every row. The standard deviation of a prediction
is ``sqrt(cv_rmse**2 + spread**2)``: the chosen kind's cross-validated error plus the disagreement of
its members.

A model file is JSON (``format`` ``hsconas-accuracy-model``, ``format_version``, space, kind, the
feature spec, every fitted number, the cross-validation table); never a pickle.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from hsconas import __version__
from hsconas.accuracy.predictor_features import (
    LOG_PROXIES,
    SUPERNET_INPUT,
    AccuracyFeatures,
    MissingInputError,
)
from hsconas.accuracy.predictor_models import (
    KINDS,
    AccuracyModelError,
    IncompatibleAccuracyModelError,
    fit_kind,
    fit_macs,
    predict_kind,
    predict_macs,
)
from hsconas.errors import DataNotFoundError, UnknownSpaceError
from hsconas.space import Architecture, SearchSpace, get_space

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "KINDS",
    "LOG_PROXIES",
    "SUPERNET_INPUT",
    "AccuracyFeatures",
    "AccuracyModelError",
    "AccuracyPredictor",
    "CVRow",
    "IncompatibleAccuracyModelError",
    "MissingInputError",
    "cross_validate",
    "fit_accuracy_model",
    "load_accuracy_model",
]

FORMAT = "hsconas-accuracy-model"
FORMAT_VERSION = 2
"""Version 2 added extra inputs (proxies, a supernet's accuracy); a model without them is still
written as version 1, readable by older releases."""


# ---------------------------------------------------------------------- cross-validation
@dataclass(frozen=True)
class CVRow:
    """Cross-validated figures of one model kind (means and sds over the folds).

    Attributes:
        kind: the model kind.
        kendall: mean Kendall tau-b of predicted vs measured accuracy over the held-out folds.
        kendall_sd: its standard deviation over the folds.
        spearman: mean Spearman rho over the folds.
        rmse: mean root mean squared error over the folds, accuracy points (top-1 %).
        rmse_sd: its standard deviation over the folds.
        folds_beating_macs: folds where both tau and RMSE beat the MACs-only baseline.
        n_folds: number of folds.
    """

    kind: str
    kendall: float
    kendall_sd: float
    spearman: float
    rmse: float
    rmse_sd: float
    folds_beating_macs: int
    n_folds: int

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return dict(self.__dict__)


def _group_folds(groups: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """Fold index of each row: distinct groups shuffled and dealt round-robin into ``folds``."""
    uniq, inv = np.unique(np.asarray(groups), return_inverse=True)
    if len(uniq) < folds:
        raise AccuracyModelError(
            f"{len(uniq)} distinct architectures cannot be split into {folds} folds"
        )
    perm = np.random.default_rng(seed).permutation(len(uniq))
    return np.asarray(perm[inv] % folds, dtype=np.int64)


def _kendall(a: np.ndarray, b: np.ndarray) -> float:
    return float(stats.kendalltau(a, b).statistic)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(stats.spearmanr(a, b).statistic)


def cross_validate(
    X: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str],
    *,
    kinds: Sequence[str] = KINDS,
    folds: int = 10,
    seed: int = 0,
) -> tuple[list[CVRow], dict[str, np.ndarray]]:
    """K-fold cross-validation grouped by architecture of every kind (``macs`` always included).

    The MACs baseline's Kendall tau and Spearman rho are those of the MACs ranking itself (a
    monotone fit ranks like MACs); its RMSE is that of the quadratic in log MACs.

    Args:
        X: feature matrix (:class:`AccuracyFeatures`), shape (n, d).
        y: measured accuracy, percent.
        groups: the canonical string of each row's architecture (rows of one group stay together).
        kinds: model kinds to evaluate.
        folds: number of folds.
        seed: seed of the fold assignment and the models.

    Returns:
        One :class:`CVRow` per kind (``macs`` first) and the out-of-fold predictions per kind.
    """
    fold = _group_folds(groups, folds, seed)
    kinds = ["macs", *(k for k in kinds if k != "macs")]
    base_kinds = {k for k in kinds if k in ("ridge", "gbdt")}
    if "ridge+gbdt" in kinds:
        base_kinds |= {"ridge", "gbdt"}
    oof = {k: np.zeros(len(y)) for k in ["macs", *sorted(base_kinds)]}
    for f in range(folds):
        tr, te = fold != f, fold == f
        oof["macs"][te] = predict_macs(fit_macs(X[tr], y[tr]), X[te])[:, 0]
        for k in base_kinds:
            comp = fit_kind(k, X[tr], y[tr], seed)
            oof[k][te] = predict_kind(comp, X[te])[0]
    if "ridge+gbdt" in kinds:
        oof["ridge+gbdt"] = (oof["ridge"] + oof["gbdt"]) / 2
    macs_col = X[:, -2]
    per_fold: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for k in kinds:
        rank_by = macs_col if k == "macs" else oof[k]
        taus, rhos, rmses = [], [], []
        for f in range(folds):
            te = fold == f
            taus.append(_kendall(rank_by[te], y[te]))
            rhos.append(_spearman(rank_by[te], y[te]))
            rmses.append(float(np.sqrt(np.mean((oof[k][te] - y[te]) ** 2))))
        per_fold[k] = (np.array(taus), np.array(rhos), np.array(rmses))
    rows = []
    mt, _, mr = per_fold["macs"]
    for k in kinds:
        t, r, e = per_fold[k]
        beats = int(np.sum((t > mt) & (e < mr))) if k != "macs" else 0
        rows.append(
            CVRow(
                kind=k,
                kendall=float(t.mean()),
                kendall_sd=float(t.std(ddof=1)),
                spearman=float(r.mean()),
                rmse=float(e.mean()),
                rmse_sd=float(e.std(ddof=1)),
                folds_beating_macs=beats,
                n_folds=folds,
            )
        )
    return rows, {k: oof[k] for k in kinds}


# ---------------------------------------------------------------------- the predictor
class AccuracyPredictor:
    """A fitted accuracy model of one space: top-1 accuracy (percent) and its sd.

    Args:
        space: the space name.
        kind: the model kind (one of :data:`KINDS`).
        components: the fitted parameters of the kind.
        cv_rmse: the kind's cross-validated RMSE (accuracy points): the floor of every sd.
        cv: the cross-validation table (:class:`CVRow` dicts), stored in the file.
        meta: training metadata (table, column, rows, seed, ...).
        features: the features it was fitted on (default: the space's, no extra inputs).
    """

    def __init__(
        self,
        space: str,
        kind: str,
        components: Mapping[str, Any],
        *,
        cv_rmse: float,
        cv: Sequence[Mapping[str, Any]] = (),
        meta: Mapping[str, Any] | None = None,
        features: AccuracyFeatures | None = None,
    ) -> None:
        self.space = space
        self.kind = kind
        self.components = dict(components)
        self.cv_rmse = float(cv_rmse)
        self.cv = [dict(r) for r in cv]
        self.meta = dict(meta or {})
        self.features = features or AccuracyFeatures(get_space(space))

    @property
    def inputs(self) -> tuple[str, ...]:
        """Extra inputs the model needs besides the architecture (proxy names, ``supernet``)."""
        return self.features.inputs

    def predict(
        self, archs: Sequence[Architecture], inputs: Mapping[str, Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(predicted top-1 accuracy, its standard deviation), both percent, one per arch.

        Args:
            archs: architectures of the model's space.
            inputs: raw values of the extra inputs (:attr:`inputs`), one array per name
                (:class:`~hsconas.accuracy.predictor_inputs.PredictorInputs` computes them).

        Raises:
            IncompatibleAccuracyModelError: an architecture of another space.
            MissingInputError: the model needs inputs that were not given.
        """
        X = self.features.transform(archs, inputs)
        if len(X) == 0:
            return np.zeros(0), np.zeros(0)
        mean, spread = predict_kind(self.components, X)
        return mean, np.sqrt(self.cv_rmse**2 + spread**2)

    @property
    def covered(self) -> dict[str, list[Any]]:
        """Genes whose values the fitting table did not span, with the values it held (the
        resolutions of a table measured at one input size): predictions elsewhere extrapolate."""
        cover = self.meta.get("covered", {})
        return {str(k): list(v) for k, v in cover.items()} if isinstance(cover, dict) else {}

    def accuracy(
        self, archs: Sequence[Architecture], inputs: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """Predicted top-1 accuracy (percent) of each architecture."""
        return self.predict(archs, inputs)[0]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of a model file."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION if self.inputs else 1,
            "hsconas_version": __version__,
            "space": self.space,
            "kind": self.kind,
            "target": "top-1 accuracy, percent",
            "features": self.features.spec(),
            "cv_rmse": self.cv_rmse,
            "cv": self.cv,
            "meta": self.meta,
            "components": self.components,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model file (JSON) and return its path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict()), encoding="utf-8")
        return p

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], *, where: str = "model") -> AccuracyPredictor:
        """Rebuild a predictor from :meth:`to_dict` output.

        Raises:
            AccuracyModelError: not an accuracy model document, a newer format, or malformed.
            IncompatibleAccuracyModelError: its feature spec differs from its space's features.
        """
        if doc.get("format") != FORMAT:
            raise AccuracyModelError(
                f"{where}: not an hsconas accuracy model file (format {doc.get('format')!r}, "
                f"expected {FORMAT!r})"
            )
        version = doc.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
            raise AccuracyModelError(
                f"{where}: accuracy model format_version {version!r}; this hsconas reads "
                f"1..{FORMAT_VERSION}"
            )
        try:
            space = str(doc["space"])
            kind = str(doc["kind"])
            if kind not in KINDS:
                raise AccuracyModelError(f"{where}: unknown model kind {kind!r}")
            try:
                sp = get_space(space)
            except UnknownSpaceError as exc:
                raise IncompatibleAccuracyModelError(f"{where}: {exc}") from None
            features = AccuracyFeatures.from_spec(sp, doc["features"])
            want = features.names
            got = tuple(doc["features"]["names"])
            if got != want or doc["features"].get("space") != space:
                raise IncompatibleAccuracyModelError(
                    f"{where}: its features ({len(got)} columns of space "
                    f"{doc['features'].get('space')!r}) are not those of space {space!r} "
                    f"({len(want)} columns); refit the model"
                )
            model = cls(
                space,
                kind,
                doc["components"],
                cv_rmse=float(doc["cv_rmse"]),
                cv=doc.get("cv", []),
                meta=doc.get("meta", {}),
                features=features,
            )
            # evaluate once: a truncated or edited parameter list fails here, not in a search
            probe = sp.sample(0)
            mean, sd = model.predict([probe], {k: [math.nan] for k in features.inputs})
            if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(sd))):
                raise AccuracyModelError(f"{where}: the model predicts non-finite accuracies")
        except AccuracyModelError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise AccuracyModelError(
                f"{where}: malformed accuracy model file ({type(exc).__name__}: {exc})"
            ) from None
        return model


def load_accuracy_model(
    path: str | os.PathLike[str], *, space: str | None = None
) -> AccuracyPredictor:
    """Read an accuracy model file.

    Args:
        path: the JSON file written by :meth:`AccuracyPredictor.save`.
        space: the space it must describe (``None``: not checked).

    Raises:
        DataNotFoundError: no such file.
        AccuracyModelError: not a JSON accuracy model file, or a malformed one.
        IncompatibleAccuracyModelError: a model of another space than ``space``.
    """
    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"accuracy model file not found: {p}")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AccuracyModelError(f"{p}: not a JSON accuracy model file ({exc})") from None
    if not isinstance(doc, dict):
        raise AccuracyModelError(f"{p}: not an hsconas accuracy model file (not a JSON object)")
    model = AccuracyPredictor.from_dict(doc, where=str(p))
    if space is not None and model.space != space:
        raise IncompatibleAccuracyModelError(
            f"{p}: an accuracy model of space {model.space!r}, not {space!r}"
        )
    return model


def fit_accuracy_model(
    space: SearchSpace,
    archs: Sequence[Architecture],
    accuracy: Sequence[float] | np.ndarray,
    *,
    kinds: Sequence[str] = ("ridge", "gbdt", "ridge+gbdt"),
    folds: int = 10,
    seed: int = 0,
    meta: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Sequence[float] | np.ndarray] | None = None,
    proxy_settings: Mapping[str, Any] | None = None,
) -> tuple[AccuracyPredictor, list[CVRow]]:
    """Cross-validate ``kinds`` (grouped by architecture), refit the best on every row.

    The best kind is the one with the lowest mean cross-validated RMSE (``macs``, the baseline,
    is always evaluated and is chosen only when it is the only kind asked for).

    Args:
        space: the space of ``archs`` (unrestricted).
        archs: the table's architectures (duplicates allowed: measured twice).
        accuracy: their measured top-1 accuracy, percent.
        kinds: candidate model kinds (:data:`KINDS`).
        folds: cross-validation folds (>= 2).
        seed: seed of folds and models.
        meta: metadata stored in the file (table path, column, ...).
        inputs: extra inputs, one value per row each: zero-cost proxy values by proxy name
            (raw, as :class:`~hsconas.accuracy.zero_cost.ZeroCostScorer` gives them; NaN where a
            proxy failed) and/or :data:`SUPERNET_INPUT`, a supernet's accuracy in percent. The
            model then needs the same inputs to predict.
        proxy_settings: how the proxy values were computed (stored in the file; the dataset
            name under ``dataset``).

    Returns:
        The fitted predictor and the cross-validation table (``macs`` first).

    Raises:
        AccuracyModelError: unknown kinds, too few distinct architectures, non-finite
            accuracies, or an input without a single value.
    """
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise AccuracyModelError(
            f"unknown accuracy model kind(s) {', '.join(bad) or '(none)'}; choose from "
            f"{', '.join(KINDS)}"
        )
    if folds < 2:
        raise AccuracyModelError(f"cross-validation needs at least 2 folds, got {folds}")
    y = np.asarray(accuracy, dtype=np.float64).ravel()
    if len(y) != len(archs):
        raise AccuracyModelError(f"{len(archs)} architectures but {len(y)} accuracies")
    if not np.all(np.isfinite(y)):
        raise AccuracyModelError("accuracies must be finite numbers (percent)")
    given = dict(inputs or {})
    proxies = [k for k in given if k != SUPERNET_INPUT]
    feats = AccuracyFeatures(
        space,
        proxies=proxies,
        supernet=SUPERNET_INPUT in given,
        proxy_settings=proxy_settings if proxies else None,
    )
    feats.fit_reference(archs, given)
    X = feats.transform(archs, given)
    groups = [space.to_string(a) for a in archs]
    rows, _ = cross_validate(X, y, groups, kinds=kinds, folds=folds, seed=seed)
    candidates = [r for r in rows if r.kind in kinds and r.kind != "macs"] or rows[:1]
    best = min(candidates, key=lambda r: (r.rmse, -r.kendall))
    components = fit_kind(best.kind, X, y, seed)
    covered: dict[str, list[Any]] = {}
    if "resolution" in space.gene_names:  # the input sizes the table measured
        i = space.gene_names.index("resolution")
        covered["resolution"] = sorted({a.values[i] for a in archs})
    info = {
        "rows": len(y),
        "covered": covered,
        "distinct_archs": len(set(groups)),
        "folds": folds,
        "seed": seed,
        "selected_by": "lowest mean cross-validated RMSE",
        "accuracy_range": [float(y.min()), float(y.max())],
        **dict(meta or {}),
    }
    model = AccuracyPredictor(
        space.name,
        best.kind,
        components,
        cv_rmse=best.rmse if math.isfinite(best.rmse) else float(np.std(y)),
        cv=[r.as_dict() for r in rows],
        meta=info,
        features=feats,
    )
    return model, rows
