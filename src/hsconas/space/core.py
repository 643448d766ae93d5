"""Framework-free search-space core: genes, architectures and the :class:`SearchSpace` base.

An architecture is a tuple of gene values (one per layer choice) tagged with the name of its space.
Spaces with elastic depth mark the genes of skipped layers *inactive*; inactive genes always hold
their gene's first choice, so that two architectures that build the same network compare equal and
have the same canonical string. This module imports numpy only.
"""

from __future__ import annotations

import abc
import copy
import itertools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hsconas.errors import ArchitectureFormatError, InvalidArchitectureError

if TYPE_CHECKING:
    from hsconas.space.codec import CodeFeatures, FeatureTarget, GeneCodec

Value = int | float | str
"""A gene value: a kernel size, an expand ratio, a channel factor, an op name, ..."""

SeedLike = int | np.random.Generator | None


def as_generator(seed: SeedLike) -> np.random.Generator:
    """Return ``seed`` if it is a Generator, else a new PCG64 Generator seeded with it."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


@dataclass(frozen=True)
class Gene:
    """One searchable choice of a space (a layer's op, a unit's depth, a channel factor).

    Attributes:
        name: unique name inside the space, e.g. ``"u2.l1.kernel"``.
        choices: the allowed values, in a fixed order (the order of feature columns).
    """

    name: str
    choices: tuple[Value, ...]

    def __post_init__(self) -> None:
        if not self.choices:
            raise ValueError(f"gene {self.name!r} has no choices")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f"gene {self.name!r} has repeated choices: {self.choices}")

    @property
    def default(self) -> Value:
        """The value an inactive gene holds: the first choice."""
        return self.choices[0]


@dataclass(frozen=True, order=True)
class Architecture:
    """An immutable member of a search space.

    Attributes:
        space: the registered name of the space the architecture belongs to.
        values: one value per gene of the space, in the space's gene order.
    """

    space: str
    values: tuple[Value, ...]

    def __str__(self) -> str:
        from hsconas.space.registry import get_space

        return get_space(self.space).to_string(self)


class SearchSpace(abc.ABC):
    """Base class of every search space.

    Subclasses set :attr:`name`, :attr:`genes` and :attr:`description` in ``__init__`` and implement
    the canonical string form (:meth:`_format`, :meth:`_parse`). Spaces with elastic depth override
    :meth:`active_mask`; spaces with constraints beyond per-gene choices override :meth:`_check`.

    A space can be *restricted* (:meth:`restrict`) to a subset of each gene's choices, which is how
    space shrinking and block profiling reduce it. A restricted space keeps the name, string form and
    feature encoding of its parent, so architectures and stored results stay comparable.
    """

    name: str
    description: str = ""
    genes: tuple[Gene, ...]
    #: the genes of the unrestricted space; feature columns and parsing always use these.
    full_genes: tuple[Gene, ...]

    def _init_genes(self, genes: Sequence[Gene]) -> None:
        names = [g.name for g in genes]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate gene names")
        self.genes = tuple(genes)
        self.full_genes = tuple(genes)
        self._index = {g.name: i for i, g in enumerate(genes)}

    # ------------------------------------------------------------------ structure hooks
    def active_mask(self, values: Sequence[Value]) -> tuple[bool, ...]:
        """Which genes matter for these values (all of them unless depth is elastic)."""
        return (True,) * len(values)

    def _check(self, values: tuple[Value, ...]) -> None:
        """Raise :class:`InvalidArchitectureError` if values violate a cross-gene constraint."""

    @abc.abstractmethod
    def _format(self, values: tuple[Value, ...]) -> str:
        """The canonical string of canonical values."""

    @abc.abstractmethod
    def _parse(self, text: str) -> tuple[Value, ...]:
        """Values from a canonical string; raise :class:`ArchitectureFormatError` on bad text."""

    # ------------------------------------------------------------------ basic queries
    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {len(self.genes)} genes, size {self.size():.3g}>"

    @property
    def gene_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.genes)

    def gene(self, name: str) -> Gene:
        """The gene called ``name``; raises KeyError with the known names otherwise."""
        try:
            return self.genes[self._index[name]]
        except KeyError:
            raise KeyError(f"{self.name} has no gene {name!r}") from None

    def as_dict(self, arch: Architecture, *, active_only: bool = False) -> dict[str, Value]:
        """Gene name -> value for ``arch`` (only active genes if ``active_only``)."""
        self._check_space_name(arch)
        mask = self.active_mask(arch.values)
        return {
            g.name: v
            for g, v, on in zip(self.genes, arch.values, mask, strict=True)
            if on or not active_only
        }

    def size(self) -> int:
        """Number of distinct architectures (networks) in the space.

        The default counts every combination of gene values, which is exact when every gene is
        always active; spaces with elastic depth override it.
        """
        return math.prod(len(g.choices) for g in self.genes)

    def enumerate(self, *, limit: int = 10_000_000) -> Iterator[Architecture]:
        """Every architecture of the space once, in a fixed order (refuses spaces over ``limit``)."""
        if self.size() > limit:
            raise ValueError(f"{self.name} has {self.size():.3g} architectures; too many to list")
        seen: set[tuple[Value, ...]] = set()
        for combo in itertools.product(*(g.choices for g in self.genes)):
            values = self._canonical(combo)
            if values in seen:
                continue
            try:
                self._check(values)
            except InvalidArchitectureError:
                continue
            seen.add(values)
            yield Architecture(self.name, values)

    # ------------------------------------------------------------------ construction, validity
    def _canonical(self, values: Sequence[Value]) -> tuple[Value, ...]:
        mask = self.active_mask(values)
        return tuple(
            v if on else g.default for g, v, on in zip(self.full_genes, values, mask, strict=True)
        )

    def _check_space_name(self, arch: Architecture) -> None:
        if not isinstance(arch, Architecture):
            raise TypeError(f"expected an Architecture, got {type(arch).__name__}")
        if arch.space != self.name:
            raise InvalidArchitectureError(
                f"architecture of space {arch.space!r} given to space {self.name!r}",
                space=self.name,
            )

    def make(self, values: Sequence[Value] | Mapping[str, Value]) -> Architecture:
        """Build a validated architecture from values in gene order or a ``{gene: value}`` map.

        Genes missing from a mapping must be inactive; they take their default.
        """
        if isinstance(values, Mapping):
            unknown = set(values) - set(self._index)
            if unknown:
                bad = sorted(unknown)[0]
                raise InvalidArchitectureError(
                    f"{self.name}: unknown layer {bad!r}; layers are {', '.join(self.gene_names)}",
                    space=self.name,
                    gene=bad,
                    allowed=self.gene_names,
                )
            seq = [values.get(g.name, g.default) for g in self.full_genes]
        else:
            seq = list(values)
        if len(seq) != len(self.genes):
            raise InvalidArchitectureError(
                f"{self.name}: expected {len(self.genes)} layer choices, got {len(seq)}",
                space=self.name,
            )
        arch = Architecture(self.name, self._canonical(self._coerce(seq)))
        self.validate(arch)
        return arch

    def _coerce(self, seq: Sequence[Value]) -> tuple[Value, ...]:
        """Map values to the exact objects of the choices (``3.0`` -> ``3`` where 3 is a choice)."""
        out: list[Value] = []
        for gene, value in zip(self.full_genes, seq, strict=True):
            match = next((c for c in gene.choices if _same_value(c, value)), value)
            out.append(match)
        return tuple(out)

    def validate(self, arch: Architecture) -> None:
        """Raise :class:`InvalidArchitectureError` naming the first offending gene, if any."""
        self._check_space_name(arch)
        if len(arch.values) != len(self.genes):
            raise InvalidArchitectureError(
                f"{self.name}: expected {len(self.genes)} layer choices, got {len(arch.values)}",
                space=self.name,
            )
        mask = self.active_mask(arch.values)
        for gene, value, on in zip(self.genes, arch.values, mask, strict=True):
            if not on:
                continue
            if not any(_same_value(c, value) for c in gene.choices):
                raise InvalidArchitectureError.bad_choice(self.name, gene.name, value, gene.choices)
        if self._canonical(arch.values) != arch.values:
            raise InvalidArchitectureError(
                f"{self.name}: inactive layers must hold their default choice", space=self.name
            )
        self._check(arch.values)

    def contains(self, arch: object) -> bool:
        """Whether ``arch`` is a valid member of this (possibly restricted) space."""
        if not isinstance(arch, Architecture):
            return False
        try:
            self.validate(arch)
        except InvalidArchitectureError:
            return False
        return True

    __contains__ = contains

    # ------------------------------------------------------------------ random operators
    def _random_values(self, rng: np.random.Generator) -> tuple[Value, ...]:
        return tuple(g.choices[int(rng.integers(len(g.choices)))] for g in self.genes)

    def _valid_values(self, values: tuple[Value, ...]) -> bool:
        try:
            self._check(values)
        except InvalidArchitectureError:
            return False
        return True

    def sample(self, rng: SeedLike = None) -> Architecture:
        """One architecture drawn uniformly per gene (inactive genes then reset to defaults)."""
        gen = as_generator(rng)
        for _ in range(1000):
            values = self._canonical(self._random_values(gen))
            if self._valid_values(values):
                return Architecture(self.name, values)
        raise RuntimeError(f"{self.name}: could not sample a valid architecture in 1000 tries")

    def sample_many(
        self, n: int, rng: SeedLike = None, *, unique: bool = False
    ) -> list[Architecture]:
        """``n`` samples; with ``unique`` no architecture repeats (fails if the space is smaller)."""
        gen = as_generator(rng)
        if not unique:
            return [self.sample(gen) for _ in range(n)]
        if n > self.size():
            raise ValueError(f"{self.name} has only {self.size()} architectures; asked for {n}")
        out: dict[Architecture, None] = {}
        while len(out) < n:
            out[self.sample(gen)] = None
        return list(out)

    def mutate(
        self, arch: Architecture, rng: SeedLike = None, *, prob: float | None = None
    ) -> Architecture:
        """A different architecture of the space: each active gene is redrawn with ``prob``.

        ``prob`` defaults to one over the number of active genes; at least one gene always changes
        (unless no gene has a second choice). Genes that a mutation activates (a deeper unit) are
        drawn at random rather than left at their defaults.
        """
        self.validate(arch)
        gen = as_generator(rng)
        old = arch.values
        mask = self.active_mask(old)
        mutable = [i for i, g in enumerate(self.genes) if mask[i] and len(g.choices) > 1]
        if not mutable:
            return arch
        p = 1.0 / len(mutable) if prob is None else prob
        for _ in range(100):
            values = list(old)
            hits = [i for i in mutable if gen.random() < p] or [
                mutable[int(gen.integers(len(mutable)))]
            ]
            for i in hits:
                others = [c for c in self.genes[i].choices if not _same_value(c, old[i])]
                values[i] = others[int(gen.integers(len(others)))]
            new_mask = self.active_mask(values)
            for i, g in enumerate(self.genes):
                if new_mask[i] and not mask[i]:
                    values[i] = g.choices[int(gen.integers(len(g.choices)))]
            canon = self._canonical(values)
            if canon != old and self._valid_values(canon):
                return Architecture(self.name, canon)
        return arch

    def crossover(self, a: Architecture, b: Architecture, rng: SeedLike = None) -> Architecture:
        """A child taking each gene from ``a`` or ``b`` with equal chance (a valid member)."""
        self.validate(a)
        self.validate(b)
        gen = as_generator(rng)
        for _ in range(100):
            take_a = gen.random(len(self.genes)) < 0.5
            # a gene inactive in the chosen parent but active in the child comes from the other
            values = [va if t else vb for va, vb, t in zip(a.values, b.values, take_a, strict=True)]
            mask = self.active_mask(values)
            mask_a, mask_b = self.active_mask(a.values), self.active_mask(b.values)
            for i in range(len(values)):
                if mask[i]:
                    if take_a[i] and not mask_a[i] and mask_b[i]:
                        values[i] = b.values[i]
                    elif not take_a[i] and not mask_b[i] and mask_a[i]:
                        values[i] = a.values[i]
            canon = self._canonical(values)
            if self._valid_values(canon):
                return Architecture(self.name, canon)
        return a

    # ------------------------------------------------------------------ codecs
    def to_string(self, arch: Architecture) -> str:
        """The canonical readable string; equal networks have equal strings."""
        self._check_space_name(arch)
        return self._format(arch.values)

    def from_string(self, text: str) -> Architecture:
        """Parse a canonical string and validate it against this space."""
        values = self._parse(text.strip())
        return self.make(values)

    def to_json(self, arch: Architecture) -> dict[str, Any]:
        """A JSON-ready dict: space name, canonical string and the active genes by name."""
        return {
            "space": self.name,
            "arch": self.to_string(arch),
            "genes": self.as_dict(arch, active_only=True),
        }

    def from_json(self, doc: Mapping[str, Any] | str) -> Architecture:
        """Inverse of :meth:`to_json`; also accepts the JSON text, or a dict with only ``arch``."""
        if isinstance(doc, str):
            try:
                doc = json.loads(doc)
            except json.JSONDecodeError as exc:
                raise ArchitectureFormatError(
                    f"{self.name}: architecture JSON is malformed: {exc}", space=self.name
                ) from None
        if not isinstance(doc, Mapping):
            raise ArchitectureFormatError(
                f"{self.name}: architecture JSON must be an object with 'genes' or 'arch'",
                space=self.name,
            )
        space = doc.get("space", self.name)
        if space != self.name:
            raise InvalidArchitectureError(
                f"architecture JSON is for space {space!r}, not {self.name!r}", space=self.name
            )
        if "genes" in doc:
            genes = doc["genes"]
            if not isinstance(genes, Mapping):
                raise ArchitectureFormatError(
                    f"{self.name}: 'genes' must be an object of layer -> choice", space=self.name
                )
            arch = self.make(genes)
            if "arch" in doc and self.to_string(arch) != doc["arch"]:
                raise ArchitectureFormatError(
                    f"{self.name}: 'arch' string and 'genes' disagree", space=self.name
                )
            return arch
        if "arch" in doc:
            return self.from_string(str(doc["arch"]))
        raise ArchitectureFormatError(
            f"{self.name}: architecture JSON needs 'genes' or 'arch'", space=self.name
        )

    # ------------------------------------------------------------------ features
    @property
    def feature_names(self) -> tuple[str, ...]:
        """Column names of :meth:`features`: one one-hot column per (gene, choice)."""
        return tuple(f"{g.name}={c}" for g in self.full_genes for c in g.choices)

    def features(self, arch: Architecture) -> np.ndarray:
        """One-hot encoding of the active genes (inactive genes give all-zero blocks), float64."""
        self._check_space_name(arch)
        mask = self.active_mask(arch.values)
        cols: list[float] = []
        for g, v, on in zip(self.full_genes, arch.values, mask, strict=True):
            cols.extend(1.0 if on and _same_value(c, v) else 0.0 for c in g.choices)
        return np.asarray(cols, dtype=np.float64)

    def feature_matrix(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Stacked :meth:`features` of many architectures, shape (n, n_features)."""
        if not archs:
            return np.zeros((0, len(self.feature_names)))
        return np.stack([self.features(a) for a in archs])

    def surrogate_features(self, codec: GeneCodec, target: FeatureTarget) -> CodeFeatures:
        """Features of gene codes for a surrogate predicting ``target`` (the search's hook): by
        default one-hot plus pairwise columns for accuracy (layers interact), one-hot alone for
        latency (nearly additive in the blocks). A space that knows more overrides this."""
        from hsconas.space.codec import OneHotFeatures

        return OneHotFeatures(codec, pairwise=target == "accuracy")

    # ------------------------------------------------------------------ restriction
    def restrict(self, allowed: Mapping[str, Sequence[Value]]) -> SearchSpace:
        """A copy of the space whose genes may take only the listed choices.

        Genes not named keep all their current choices. Raises if a listed value is not a choice
        or a gene would be left with none.
        """
        genes = list(self.genes)
        for name, subset in allowed.items():
            i = self._index.get(name)
            if i is None:
                raise InvalidArchitectureError(
                    f"{self.name}: unknown layer {name!r} in restriction",
                    space=self.name,
                    gene=name,
                )
            full = self.full_genes[i].choices
            kept = []
            for v in subset:
                match = next((c for c in full if _same_value(c, v)), None)
                if match is None:
                    raise InvalidArchitectureError.bad_choice(self.name, name, v, full)
                kept.append(match)
            if not kept:
                raise InvalidArchitectureError(
                    f"{self.name}: restriction leaves layer {name!r} with no choice",
                    space=self.name,
                    gene=name,
                )
            ordered = tuple(c for c in full if c in kept)
            genes[i] = Gene(name, ordered)
        new = copy.copy(self)
        new.genes = tuple(genes)
        return new

    def at_resolution(self, resolution: int | None) -> SearchSpace:
        """The space with its ``resolution`` gene (if any) restricted to ``resolution`` pixels
        (unchanged for ``None`` or a space without such a gene)."""
        if resolution is None or "resolution" not in self.gene_names:
            return self
        return self.restrict({"resolution": [resolution]})

    @property
    def is_restricted(self) -> bool:
        return self.genes != self.full_genes

    def restriction(self) -> dict[str, list[Value]]:
        """The genes whose choices are restricted, with their remaining choices."""
        return {
            g.name: list(g.choices)
            for g, f in zip(self.genes, self.full_genes, strict=True)
            if g.choices != f.choices
        }

    def input_shape(self, arch: Architecture) -> tuple[int, int, int]:
        """(channels, height, width) of one input image of the network ``arch`` builds."""
        raise NotImplementedError(f"{self.name} does not define an input shape")

    def describe(self) -> list[dict[str, Any]]:
        """Per gene: name and choices; used by ``hsconas spaces show``."""
        return [{"gene": g.name, "choices": list(g.choices)} for g in self.genes]


def _same_value(a: Value, b: object) -> bool:
    """Equality of gene values that tells ``"3"`` from ``3`` but accepts ``3 == 3.0``."""
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(b, bool) or not isinstance(b, int | float):
        return False
    return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9)
