"""Label-free accuracy estimates of architectures: zero-cost proxies on real images, cached in the
results store, and their combination (``ensemble``).

:class:`ZeroCostScorer` builds each architecture's network freshly initialised under a fixed seed,
draws a few seeded minibatches from the training split of the user's dataset, and computes the
proxies of :mod:`hsconas.accuracy.proxies` (only those asked for; ``snip`` and ``grad_norm``
share one gradient pass). With a :class:`~hsconas.store.ResultStore` every value is stored under
(space, architecture, method, dataset spec, seed, batches, batch size), so a repeat call is free.

:func:`combine` is the ensemble: the mean over signals of each architecture's quantile position
within a reference set of values (by default the scored architectures themselves), ignoring a
missing (NaN) signal; it does not depend on the order of the architectures.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hsconas.accuracy.proxies import PROXIES, Batch
from hsconas.errors import HsconasError
from hsconas.space import Architecture, SearchSpace
from hsconas.store import Measurement, ResultStore

__all__ = [
    "ENSEMBLE_MEMBERS",
    "METHODS",
    "ProxyConfig",
    "UnknownMethodError",
    "ZeroCostScorer",
    "check_device",
    "check_method",
    "combine",
    "load_proxy_batches",
]

#: the proxies the default ``ensemble`` averages: the best combination of 2 to 4 proxies on half of
#: 300 NB201 CIFAR-10 cells (Kendall tau 0.74 there, 0.71 on the other half; naswot+synflow+jacov
#: 0.69; the best single proxy, naswot, 0.63; see ``bench/accuracy_nb201.py``).
ENSEMBLE_MEMBERS: tuple[str, ...] = ("jacov", "params")

#: every method name an estimate can be asked for.
METHODS: tuple[str, ...] = ("ensemble", *PROXIES, "supernet")

#: stored-measurement fields of proxy values (the value itself is in ``extra['value']``).
_KIND, _BACKEND, _VERSION = "proxy", "zero-cost", 1


class UnknownMethodError(HsconasError, ValueError):
    """An accuracy-estimation method that does not exist."""


def check_method(method: str) -> str:
    """``method`` if it is one of :data:`METHODS`, else :class:`UnknownMethodError`."""
    if method not in METHODS:
        raise UnknownMethodError(
            f"unknown accuracy method {method!r}; choose one of: {', '.join(METHODS)}"
        )
    return method


def check_device(device: str) -> None:
    """Raise :class:`HsconasError` unless ``device`` names a torch device usable here."""
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise HsconasError(f"unknown torch device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise HsconasError(f"device {device!r}: no CUDA GPU is available here; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise HsconasError(f"device {device!r}: only {torch.cuda.device_count()} GPU(s) here")


@dataclass(frozen=True)
class ProxyConfig:
    """How proxies are computed.

    Attributes:
        data: dataset spec (``cifar10:PATH``, ``digits``, ``folder:PATH``...).
        seed: seed of the weight initialisation and of the minibatch draw.
        batches: minibatches per proxy.
        batch_size: images per minibatch.
        pool: training images decoded to draw the minibatches from.
        device: torch device the networks run on (``cpu``, ``cuda``).
    """

    data: str
    seed: int = 0
    batches: int = 1
    batch_size: int = 64
    pool: int = 2000
    device: str = "cpu"

    def settings(self) -> dict[str, Any]:
        """JSON-ready identity of the computed values (the device is left out: same values)."""
        return {
            "data": self.data,
            "seed": self.seed,
            "batches": self.batches,
            "batch_size": self.batch_size,
            "pool": self.pool,
            "version": _VERSION,
        }


def load_proxy_batches(config: ProxyConfig, *, progress: bool = False) -> tuple[list[Batch], int]:
    """The seeded minibatches of ``config`` from its dataset's training split, and its classes.

    Raises:
        DataNotFoundError: the dataset is missing.
        DataFormatError: an unknown spec or unreadable files.
    """
    from hsconas.data.datasets import load_dataset

    check_device(config.device)
    data = load_dataset(config.data, subset=config.pool, seed=0, progress=progress)
    loader = data.loader("train", config.batch_size, shuffle=True, augment=False, drop_last=True)
    gen = torch.Generator().manual_seed(config.seed)
    out: list[Batch] = []
    for images, labels in loader.batches(gen):
        out.append((images.to(config.device), labels.to(config.device)))
        if len(out) == config.batches:
            break
    if len(out) < config.batches:
        raise HsconasError(
            f"dataset {config.data!r} has too few training images for {config.batches} batches "
            f"of {config.batch_size}"
        )
    return out, data.num_classes


def combine(
    signals: Mapping[str, Sequence[float] | np.ndarray],
    reference: Mapping[str, Sequence[float] | np.ndarray] | None = None,
) -> np.ndarray:
    """The ensemble score: mean over signals of each value's quantile position in [0, 1].

    A value's position is the share of reference values below it plus half of those equal to it
    (mid-rank), so with the default reference (the values themselves) it is ``(rank - 0.5) / n``.
    NaN marks a missing signal: it neither counts in the reference nor in that architecture's
    mean. An architecture with no signal at all gets NaN.

    Args:
        signals: per signal, one value per architecture (all the same length; higher = better).
        reference: per signal, the values positions are measured against (default: ``signals``).

    Raises:
        ValueError: signals of different lengths, or none at all.
    """
    if not signals:
        raise ValueError("combine needs at least one signal")
    lengths = {len(v) for v in signals.values()}
    if len(lengths) != 1:
        raise ValueError(f"signals of different lengths: {sorted(lengths)}")
    (n,) = lengths
    positions = np.full((len(signals), n), np.nan)
    for row, (name, values) in enumerate(sorted(signals.items())):
        v = np.asarray(values, dtype=np.float64)
        ref = np.asarray(v if reference is None else reference[name], dtype=np.float64)
        ref = np.sort(ref[np.isfinite(ref)])
        if ref.size == 0:
            continue
        ok = np.isfinite(v)
        below = np.searchsorted(ref, v[ok], side="left")
        upto = np.searchsorted(ref, v[ok], side="right")
        positions[row, ok] = (below + upto) / (2.0 * ref.size)
    with np.errstate(all="ignore"):
        counts = np.isfinite(positions).sum(axis=0)
        sums = np.nansum(positions, axis=0)
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


class ZeroCostScorer:
    """Proxy values of architectures of one space, computed once and cached.

    Args:
        space: the space of the architectures (must have a PyTorch builder).
        config: dataset, seed, batches and device.
        store: results store of the values; ``None`` keeps them in memory only.
        batches: pre-loaded minibatches and class count (default: loaded on first use).
    """

    def __init__(
        self,
        space: SearchSpace,
        config: ProxyConfig,
        *,
        store: ResultStore | None = None,
        batches: tuple[list[Batch], int] | None = None,
    ) -> None:
        self.space = space
        self.config = config
        self.store = store
        self._batches = batches
        self._cache: dict[tuple[str, str], float] = {}
        #: CPU seconds each (method, arch key) took when it was computed (also read back)
        self.cpu_seconds: dict[tuple[str, str], float] = {}
        self.n_computed = 0
        self.seconds: dict[str, float] = {m: 0.0 for m in PROXIES}

    def batches(self) -> tuple[list[Batch], int]:
        """The minibatches and the number of classes (loaded on first call)."""
        if self._batches is None:
            self._batches = load_proxy_batches(self.config)
        return self._batches

    def _stored(self, method: str) -> dict[str, float]:
        if self.store is None:
            return {}
        out: dict[str, float] = {}
        for m in self.store.measurements(
            space=self.space.name,
            kind=_KIND,
            device=method,
            backend=_BACKEND,
            settings=self.config.settings(),
        ):
            value = m.extra.get("value")
            out[m.key] = float("nan") if value is None else float(value)
            if "cpu_s" in m.extra:
                self.cpu_seconds[(method, m.key)] = float(m.extra["cpu_s"])
        return out

    def values(self, archs: Sequence[Architecture], method: str) -> np.ndarray:
        """The raw value of proxy ``method`` for each architecture (NaN where it failed)."""
        return self.values_of(archs, (method,))[method]

    def values_of(
        self, archs: Sequence[Architecture], methods: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """The raw values of several proxies (all computed together for a new architecture)."""
        unknown = [m for m in methods if m not in PROXIES]
        if unknown:
            raise UnknownMethodError(
                f"{unknown[0]!r} is not a zero-cost proxy; choose one of: {', '.join(PROXIES)}"
            )
        keys = [self.space.to_string(a) for a in archs]
        for m in methods:
            missing = [k for k in keys if (m, k) not in self._cache]
            if missing and self.store is not None:
                for k, v in self._stored(m).items():
                    self._cache[(m, k)] = v
        todo = {
            k: a
            for a, k in zip(archs, keys, strict=True)
            if any((m, k) not in self._cache for m in methods)
        }
        for key, arch in todo.items():
            need = [m for m in methods if (m, key) not in self._cache]
            before = dict(self.seconds)
            for m, v in self.compute(arch, need).items():
                self._cache[(m, key)] = v
                self.cpu_seconds[(m, key)] = self.seconds[m] - before[m]
                self._save(m, key, v)
        return {m: np.array([self._cache[(m, k)] for k in keys]) for m in methods}

    def _save(self, method: str, key: str, value: float) -> None:
        if self.store is None:
            return
        finite = math.isfinite(value)
        self.store.put_measurement(
            Measurement(
                space=self.space.name,
                kind=_KIND,
                key=key,
                device=method,
                backend=_BACKEND,
                settings=self.config.settings(),
                median_ms=value if finite else 0.0,
                spread_ms=0.0,
                n_runs=1,
                stable=True,
                extra={
                    "value": value if finite else None,
                    "cpu_s": self.cpu_seconds.get((method, key), 0.0),
                },
            )
        )

    def compute(self, arch: Architecture, methods: Sequence[str] | None = None) -> dict[str, float]:
        """Proxies ``methods`` (default all) of ``arch``, no cache; one freshly seeded network per
        proxy (``snip`` and ``grad_norm`` share theirs: the same gradients)."""
        from hsconas.accuracy.proxies import loss_gradient_scores
        from hsconas.nn import build_model

        self.space.validate(arch)
        wanted = [m for m in PROXIES if methods is None or m in methods]
        batches, num_classes = self.batches()
        shape = tuple(int(s) for s in batches[0][0].shape[1:])
        options: dict[str, Any] = {"num_classes": num_classes}
        try:
            want = self.space.input_shape(arch)
        except NotImplementedError:
            want = shape  # type: ignore[assignment]
        if want[0] != shape[0]:
            options["in_channels"] = shape[0]
        if want[1:] != shape[1:]:  # the network's own resolution (ImageNet spaces)
            batches = [
                (torch.nn.functional.interpolate(x, size=want[1:], mode="bilinear"), y)
                for x, y in batches
            ]
        out: dict[str, float] = {}
        for name in wanted:
            if name in out:
                continue
            start = time.process_time()
            torch.manual_seed(self.config.seed)
            try:
                model = build_model(arch, **options)
            except TypeError as exc:
                raise HsconasError(
                    f"space {self.space.name!r} cannot be built for {shape[0]}-channel images "
                    f"with {num_classes} classes: {exc}"
                ) from None
            if name not in ("params", "macs"):  # counted on the CPU
                model.to(self.config.device)
            try:
                if name in ("snip", "grad_norm"):
                    pair = loss_gradient_scores(model, batches)
                    values = {"snip": pair[0], "grad_norm": pair[1]}
                else:
                    values = {name: float(PROXIES[name](model, batches))}
            except (RuntimeError, np.linalg.LinAlgError):
                values = {name: float("nan")}
            spent = (time.process_time() - start) / len(values)
            for k, v in values.items():
                if methods is None or k in methods:
                    out[k] = v if math.isfinite(v) else float("nan")
                    self.seconds[k] += spent
        self.n_computed += 1
        return out

    def scores(
        self,
        archs: Sequence[Architecture],
        method: str,
        *,
        extra: Mapping[str, Sequence[float]] | None = None,
        reference: Mapping[str, Sequence[float]] | None = None,
        members: Sequence[str] = ENSEMBLE_MEMBERS,
    ) -> np.ndarray:
        """Scores of ``archs`` by ``method`` (higher = predicted more accurate).

        Args:
            archs: the architectures.
            method: a proxy name or ``ensemble``.
            extra: further signals for the ensemble, one value per arch (the supernet's accuracy).
            reference: the ensemble's reference values per signal (default: the archs' own).
            members: the proxies the ensemble combines.
        """
        check_method(method)
        if method in PROXIES:
            return self.values(archs, method)
        if method != "ensemble":
            raise UnknownMethodError(f"method {method!r} is not computed from proxies")
        signals: dict[str, Sequence[float] | np.ndarray] = dict(self.values_of(archs, members))
        signals.update(extra or {})
        return combine(signals, reference)
