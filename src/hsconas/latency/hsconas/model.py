"""The HSCoNAS hardware performance model: LUT sum plus a learned correction.

Latency of an architecture = the sum of the isolated latencies of its blocks from a lookup table
measured on the device, corrected by a term learned from a few (~30) end-to-end measurements,
because the sum of isolated blocks misses data movement between blocks, operator fusion across
block boundaries, and framework overhead.

Three corrections compete, and the one with the smallest leave-one-out relative error is kept
(all closed form):

* ``none``: the plain LUT sum (where isolated blocks already add up to the network).
* ``ridge``: a ridge regression of the *residual* ``measured - LUT sum`` on standardised
  features of the network: the LUT sum itself, the number of blocks, the MACs (millions) and
  the LUT sums per input resolution of the blocks (a stand-in for the stages of the network).
  The penalty pulls the correction to a constant offset, i.e. towards the plain LUT sum; it is
  fitted with weights ``1 / measured**2`` so that it minimises relative error.
* ``share``: a ridge regression of ``measured / LUT sum - 1`` on the same features plus each
  block's share of the LUT sum (one feature per LUT entry seen in training). A share's
  coefficient is that block's relative correction (``measured = sum of LUT entry x (1 + w)``
  when only shares matter): a block whose isolated time over- or understates its cost inside
  the network (cache state, framework overhead, fusion with its neighbours) gets its own factor,
  and the penalty pulls every factor towards the common one. It needs precise measurements: on
  reference-normalised timings of this machine's CPU it cut the held-out error of
  OFA-MobileNetV3 on PyTorch from 1.48% to 0.95% (100 training networks); on timings 2-3x
  noisier it gained nothing.

Each penalty is chosen by leave-one-out error; ``share`` competes from
:data:`MIN_SHARE_TRAIN` training networks on. The predictive uncertainty is the leave-one-out
relative residual standard deviation times the prediction.

Models save to JSON with their LUT, so a saved file predicts on its own (it still needs the
space's PyTorch builder to decompose new architectures into blocks).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hsconas.latency.hsconas.lut import LookupTable, decompose, meta_build
from hsconas.latency.model_file import IncompatibleModelError
from hsconas.space import Architecture, get_space

__all__ = [
    "CORRECTIONS",
    "FORMAT_VERSION",
    "HSCoNASModel",
    "IncompatibleModelError",
    "NetworkFeatures",
    "Prediction",
    "network_features",
]

FORMAT_VERSION = 2
_ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 25))
_SHARE_ALPHAS = tuple(float(a) for a in np.logspace(-5, 3, 33))
CORRECTIONS = ("none", "ridge", "share")
MIN_SHARE_TRAIN = 20
"""Fewest end-to-end measurements with which the ``share`` correction competes."""


@dataclass(frozen=True)
class NetworkFeatures:
    """What the model knows about one network.

    Attributes:
        block_keys: LUT keys of its block calls, in order.
        block_heights: input height of each block call (pixels), same order.
        macs_m: conv + linear multiply-accumulates, millions.
    """

    block_keys: tuple[str, ...]
    block_heights: tuple[int, ...]
    macs_m: float


@dataclass(frozen=True)
class Prediction:
    """A latency prediction.

    Attributes:
        latency_ms: predicted latency, milliseconds.
        std_ms: one standard deviation of its error (leave-one-out estimate), milliseconds.
        lut_sum_ms: the plain LUT sum, milliseconds.
    """

    latency_ms: float
    std_ms: float
    lut_sum_ms: float


def network_features(arch: Architecture, resolution: int | None = None) -> NetworkFeatures:
    """Decompose ``arch`` into its blocks (on the meta device) and count its MACs."""
    space = get_space(arch.space)
    c, h, w = space.input_shape(arch)
    if resolution is not None and "resolution" not in space.gene_names:
        h = w = resolution
    model = meta_build(arch)
    with _count_macs(model) as macs:
        calls = decompose(model, (c, h, w))
    heights = tuple(int(call.input_shape[1]) if len(call.input_shape) >= 2 else 1 for call in calls)
    return NetworkFeatures(tuple(call.key for call in calls), heights, macs[0] / 1e6)


@contextmanager
def _count_macs(model: nn.Module) -> Iterator[list[int]]:
    """Count conv + linear MACs (``count_macs`` convention) of the forward passes in the body."""
    total = [0]

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total[0] += output.numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            total[0] += output.numel() * module.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    try:
        yield total
    finally:
        for hd in handles:
            hd.remove()


def _design(
    feats: Sequence[NetworkFeatures], lats: Sequence[np.ndarray], heights: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """(LUT sums, feature matrix) of networks whose blocks take ``lats`` (ms, from the LUT);
    columns: LUT sum, n blocks, MACs, per-height sums."""
    sums = np.array([float(lat.sum()) for lat in lats])
    rows = []
    for f, lat, total in zip(feats, lats, sums, strict=True):
        per_h = [float(lat[np.asarray(f.block_heights) == hh].sum()) for hh in heights]
        rows.append([total, float(len(f.block_keys)), f.macs_m, *per_h])
    return sums, np.asarray(rows, dtype=float)


def _shares(
    feats: Sequence[NetworkFeatures], lats: Sequence[np.ndarray], keys: Sequence[str]
) -> np.ndarray:
    """Each network's LUT-sum share of every block key in ``keys`` (rows sum to <= 1)."""
    col = {k: j for j, k in enumerate(keys)}
    out = np.zeros((len(feats), len(keys)))
    for i, (f, lat) in enumerate(zip(feats, lats, strict=True)):
        for k, v in zip(f.block_keys, lat, strict=True):
            j = col.get(k)
            if j is not None:
                out[i, j] += v
        out[i] /= max(float(lat.sum()), 1e-12)
    return out


def _ridge_loo(
    x: np.ndarray, r: np.ndarray, wts: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted ridge with an unpenalised intercept column (x[:, 0] == 1); (coef, LOO residuals)."""
    sw = np.sqrt(wts)
    xw, rw = x * sw[:, None], r * sw
    pen = alpha * np.eye(x.shape[1])
    pen[0, 0] = 0.0
    a_inv = np.linalg.pinv(xw.T @ xw + pen)
    coef = a_inv @ xw.T @ rw
    hat = np.einsum("ij,jk,ik->i", xw, a_inv, xw)
    resid = (rw - xw @ coef) / np.maximum(1.0 - hat, 1e-6) / sw
    return coef, resid


@dataclass
class HSCoNASModel:
    """LUT-sum latency model with a learned ridge correction (see the module docstring).

    Build one with :meth:`fit`; predict with :meth:`predict`; persist with :meth:`save` /
    :meth:`load`.

    Attributes:
        lut: the block lookup table (its space, device, backend and settings are the model's).
        heights: input heights (pixels) that get their own per-stage LUT-sum feature.
        mean: feature means used for standardisation.
        scale: feature standard deviations used for standardisation.
        coef: intercept then one coefficient per feature (:attr:`feature_names`): milliseconds
            for the ``ridge`` correction, ratios for ``share``, zeros for ``none``.
        alpha: the chosen ridge penalty.
        rel_std: leave-one-out relative residual standard deviation (0.02 = 2%).
        n_train: number of end-to-end measurements fitted.
        info: free-form provenance (fingerprint, timing, fit diagnostics).
        correction: ``none``, ``ridge`` or ``share`` (see the module docstring).
        share_keys: LUT keys with a share feature (``share`` only).
        share_mean: the training mean of each share, subtracted before the coefficients apply.
    """

    lut: LookupTable
    heights: tuple[int, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    alpha: float
    rel_std: float
    n_train: int
    info: dict[str, Any] = field(default_factory=dict)
    correction: str = "ridge"
    share_keys: tuple[str, ...] = ()
    share_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    _cache: dict[tuple[Architecture, int | None], NetworkFeatures] = field(
        default_factory=dict, repr=False
    )

    # ------------------------------------------------------------------ identity
    @property
    def space(self) -> str:
        """The space this model predicts."""
        return self.lut.space

    @property
    def device(self) -> str:
        """The device this model predicts."""
        return self.lut.device

    @property
    def backend(self) -> str:
        """The backend this model predicts."""
        return self.lut.backend

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the correction's features."""
        return (
            "lut_sum_ms",
            "n_blocks",
            "macs_m",
            *(f"lut_sum_h{h}_ms" for h in self.heights),
            *(f"share:{k}" for k in self.share_keys),
        )

    def check_compatible(
        self, *, space: str | None = None, device: str | None = None, backend: str | None = None
    ) -> None:
        """Raise :class:`IncompatibleModelError` if the model was built for something else."""
        for what, mine, theirs in (
            ("space", self.space, space),
            ("device", self.device, device),
            ("backend", self.backend, backend),
        ):
            if theirs is not None and theirs != mine:
                raise IncompatibleModelError(
                    f"this latency model was profiled for {what} {mine!r}, not {theirs!r}; "
                    f"profile {theirs!r} with `hsconas latency profile` or use a matching model"
                )

    # ------------------------------------------------------------------ features
    def features(self, arch: Architecture) -> NetworkFeatures:
        """Block decomposition and MACs of ``arch`` (cached per architecture)."""
        self.check_compatible(space=arch.space)
        k = (arch, self.lut.resolution)
        if k not in self._cache:
            self._cache[k] = network_features(arch, self.lut.resolution)
        return self._cache[k]

    def lut_sum(self, arch: Architecture) -> float:
        """The plain LUT sum of ``arch``, milliseconds (the baseline without correction)."""
        return self.lut.total_ms(self.features(arch).block_keys)

    # ------------------------------------------------------------------ fit / predict
    @classmethod
    def fit(
        cls,
        lut: LookupTable,
        archs: Sequence[Architecture],
        latency_ms: Sequence[float],
        *,
        alphas: Sequence[float] = _ALPHAS,
        share_alphas: Sequence[float] = _SHARE_ALPHAS,
        corrections: Sequence[str] | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> HSCoNASModel:
        """Fit the correction on end-to-end measurements.

        Args:
            lut: the block lookup table of the device.
            archs: measured architectures (all of ``lut.space``).
            latency_ms: their measured end-to-end latencies, milliseconds.
            alphas: candidate penalties of the ``ridge`` correction.
            share_alphas: candidate penalties of the ``share`` correction.
            corrections: the corrections that may compete (default: all of
                :data:`CORRECTIONS`); the one with the smallest leave-one-out error is kept.
            info: provenance stored in the model file.

        Raises:
            ValueError: with fewer than 3 measurements or non-positive latencies.
            MissingBlockError: if an architecture has a block without LUT entry.
        """
        y = np.asarray(latency_ms, dtype=float)
        if len(archs) != y.size or y.size < 3:
            raise ValueError("fit needs at least 3 architectures with one latency each")
        if not np.all(y > 0):
            raise ValueError("measured latencies must be positive")
        heights = tuple(
            sorted(
                {e.input_shape[1] for e in lut.entries.values() if len(e.input_shape) >= 2},
                reverse=True,
            )
        )
        model = cls(
            lut, heights, np.zeros(0), np.ones(0), np.zeros(0), 0.0, 0.0, 0, dict(info or {})
        )
        feats = [model.features(a) for a in archs]
        lats = [lut.latencies(f.block_keys) for f in feats]
        sums, raw = _design(feats, lats, heights)
        mean, scale = raw.mean(axis=0), raw.std(axis=0)
        scale[scale < 1e-12] = 1.0
        x = np.hstack([np.ones((y.size, 1)), (raw - mean) / scale])
        # candidates: (correction, LOO relative errors, alpha, coef)
        r = y - sums
        # the plain LUT sum: where isolated blocks already add up to the network (e.g. ONNX
        # Runtime fuses inside blocks), a correction fitted on ~30 noisy measurements only
        # adds variance, and leave-one-out error says so
        candidates: list[tuple[str, np.ndarray, float, np.ndarray]] = [
            ("none", -r / y, 0.0, np.zeros(x.shape[1]))
        ]
        for alpha in alphas:
            coef, loo = _ridge_loo(x, r, 1.0 / y**2, alpha)
            candidates.append(("ridge", loo / y, alpha, coef))
        keys = tuple(sorted({k for f in feats for k in f.block_keys}))
        shares = _shares(feats, lats, keys)
        share_mean = shares.mean(axis=0)
        xs = np.hstack([x, shares - share_mean])
        # with a handful of networks, the minimum over many penalties of a model with more
        # features than networks is an optimistic leave-one-out estimate: do not let it compete
        for alpha in share_alphas if y.size >= MIN_SHARE_TRAIN else ():
            coef, loo = _ridge_loo(xs, y / sums - 1.0, np.ones(y.size), alpha)
            candidates.append(("share", -loo * sums / y, alpha, coef))
        if corrections is not None:
            unknown = set(corrections) - set(CORRECTIONS)
            if unknown:
                raise ValueError(f"unknown corrections {sorted(unknown)}; use {CORRECTIONS}")
            candidates = [c for c in candidates if c[0] in corrections]
        correction, rel_loo, alpha, coef = min(candidates, key=lambda c: float(np.mean(c[1] ** 2)))
        model.mean, model.scale, model.coef, model.alpha = mean, scale, coef, alpha
        model.correction = correction
        if correction == "share":
            model.share_keys, model.share_mean = keys, share_mean
        model.rel_std = float(np.sqrt(np.mean(rel_loo**2)))
        model.n_train = int(y.size)
        # each kind's leave-one-out MAPE at the penalty the selection would give it
        best_of: dict[str, float] = {}
        for name in CORRECTIONS:
            errs = [c[1] for c in candidates if c[0] == name]
            if errs:
                chosen = min(errs, key=lambda e: float(np.mean(e**2)))
                best_of[name] = float(100 * np.mean(np.abs(chosen)))
        model.info["fit"] = {
            "loo_mape_pct": float(100 * np.mean(np.abs(rel_loo))),
            "loo_within_10pct": float(np.mean(np.abs(rel_loo) <= 0.10)),
            "loo_rms_pct": float(100 * model.rel_std),
            "lut_sum_mape_pct": float(100 * np.mean(np.abs(sums - y) / y)),
            "alpha": alpha,
            "correction": correction,
            "loo_mape_pct_by_correction": best_of,
        }
        return model

    def predict(self, arch: Architecture) -> Prediction:
        """Predicted latency of ``arch`` with its uncertainty."""
        f = self.features(arch)
        lats = [self.lut.latencies(f.block_keys)]
        sums, raw = _design([f], lats, self.heights)
        x = np.concatenate([[1.0], (raw[0] - self.mean) / self.scale])
        if self.correction == "share":
            sh = _shares([f], lats, self.share_keys)[0] - self.share_mean
            mean = float(sums[0] * (1.0 + np.concatenate([x, sh]) @ self.coef))
        else:
            mean = float(sums[0] + x @ self.coef)
        mean = max(mean, 1e-6)
        return Prediction(mean, self.rel_std * mean, float(sums[0]))

    def predict_ms(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Predicted latencies of ``archs``, milliseconds."""
        return np.array([self.predict(a).latency_ms for a in archs])

    def predict_with_uncertainty(
        self, archs: Sequence[Architecture]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(mean, standard deviation) of the latencies of ``archs``, milliseconds: the
        interface of the learned predictors' :class:`~hsconas.latency.model_io.LatencyModel`."""
        preds = [self.predict(a) for a in archs]
        return np.array([p.latency_ms for p in preds]), np.array([p.std_ms for p in preds])

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict holding everything, LUT included."""
        return {
            "format": "hsconas-hw-model",
            "version": FORMAT_VERSION,
            "space": self.space,
            "device": self.device,
            "backend": self.backend,
            "resolution": self.lut.resolution,
            "heights": list(self.heights),
            "feature_names": list(self.feature_names),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "alpha": self.alpha,
            "rel_std": self.rel_std,
            "n_train": self.n_train,
            "correction": self.correction,
            "share_keys": list(self.share_keys),
            "share_mean": self.share_mean.tolist(),
            "info": self.info,
            "lut": self.lut.to_json(),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> HSCoNASModel:
        """Inverse of :meth:`to_json`.

        Raises:
            IncompatibleModelError: if ``doc`` is not an HSCoNAS model of a known format version.
        """
        if doc.get("format") != "hsconas-hw-model":
            raise IncompatibleModelError(
                "not an HSCoNAS latency model file (expected format 'hsconas-hw-model'; "
                "make one with `hsconas latency profile`)"
            )
        if int(doc.get("version", 0)) > FORMAT_VERSION:
            raise IncompatibleModelError(
                f"latency model format version {doc.get('version')} is newer than this "
                f"hsconas supports ({FORMAT_VERSION}); upgrade hsconas"
            )
        if doc.get("correction", "ridge") not in CORRECTIONS:
            raise IncompatibleModelError(
                f"unknown latency correction {doc.get('correction')!r} in the model file; "
                "upgrade hsconas or profile the device again"
            )
        return cls(
            lut=LookupTable.from_json(doc["lut"]),
            heights=tuple(int(h) for h in doc["heights"]),
            mean=np.asarray(doc["mean"], dtype=float),
            scale=np.asarray(doc["scale"], dtype=float),
            coef=np.asarray(doc["coef"], dtype=float),
            alpha=float(doc["alpha"]),
            rel_std=float(doc["rel_std"]),
            n_train=int(doc["n_train"]),
            info=dict(doc.get("info", {})),
            # version 1 files hold the additive correction ('none' is zero coefficients)
            correction=str(doc.get("correction", "ridge")),
            share_keys=tuple(doc.get("share_keys", ())),
            share_mean=np.asarray(doc.get("share_mean", []), dtype=float),
        )

    def save(self, path: str | Path) -> Path:
        """Write the model as JSON; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> HSCoNASModel:
        """Read a model written by :meth:`save`.

        Raises:
            IncompatibleModelError: if the file is not such a model.
        """
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            from hsconas.errors import DataNotFoundError

            raise DataNotFoundError(f"latency model file not found: {path}") from None
        except json.JSONDecodeError as exc:
            raise IncompatibleModelError(f"{path}: not JSON ({exc.msg})") from None
        if not isinstance(doc, dict):
            raise IncompatibleModelError(f"{path}: not an HSCoNAS latency model file")
        return cls.from_json(doc)
