"""Integer gene codes and the feature maps fitted on them (numpy only).

An architecture is encoded as the index of each gene's value in the *full* choices of its space
(:class:`GeneCodec`); a :class:`CodeFeatures` turns a matrix of codes into the design matrix of a
surrogate model. The generic features are the one-hot encoding of every gene plus, optionally, the
one-hot encoding of every *pair* of genes (:class:`OneHotFeatures`). A space with better knowledge
of its members (NAS-Bench-201's cell canonical form) returns its own features from
:meth:`SearchSpace.surrogate_features <hsconas.space.core.SearchSpace.surrogate_features>`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import numpy as np

from hsconas.errors import InvalidArchitectureError
from hsconas.space.core import Architecture, SearchSpace, _same_value

__all__ = ["CodeFeatures", "FeatureTarget", "GeneCodec", "OneHotFeatures"]

FeatureTarget = Literal["accuracy", "latency"]
"""What a surrogate fitted on the features predicts."""


class GeneCodec:
    """Maps architectures to integer codes (index of each gene's value in the *full* choices).

    Args:
        space: the space (restricted or not; codes always refer to the unrestricted choices).
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.genes = space.full_genes
        self.n_choices = np.array([len(g.choices) for g in self.genes], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.n_choices)[:-1]])
        self._lookup = [{c: k for k, c in enumerate(g.choices)} for g in self.genes]
        self.simple = (
            type(space).active_mask is SearchSpace.active_mask
            and type(space)._check is SearchSpace._check
        )

    def _code(self, gene: int, value: object) -> int:
        table = self._lookup[gene]
        if value in table:
            return table[value]
        for c, k in table.items():
            if _same_value(c, value):
                return k
        raise KeyError(value)

    def encode(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Codes of ``archs``, shape (n, n_genes), int64."""
        out = np.empty((len(archs), len(self.genes)), dtype=np.int64)
        for i, a in enumerate(archs):
            for g, v in enumerate(a.values):
                out[i, g] = self._code(g, v)
        return out

    def decode(self, codes: np.ndarray) -> list[Architecture]:
        """Architectures of codes (canonicalised; no validity check)."""
        name = self.space.name
        choices = [g.choices for g in self.genes]
        out = []
        for row in np.asarray(codes):
            values = tuple(choices[g][int(k)] for g, k in enumerate(row))
            if not self.simple:
                values = self.space._canonical(values)
            out.append(Architecture(name, values))
        return out

    def allowed_mask(self, space: SearchSpace) -> list[np.ndarray]:
        """Per gene, a boolean mask over the full choices of those allowed in ``space``."""
        masks = []
        for g_full, g in zip(self.genes, space.genes, strict=True):
            masks.append(
                np.array([any(_same_value(c, v) for v in g.choices) for c in g_full.choices])
            )
        return masks

    def valid(self, codes: np.ndarray, space: SearchSpace) -> np.ndarray:
        """Which rows of ``codes`` are members of ``space`` (fast for spaces without constraints)."""
        masks = self.allowed_mask(space)
        ok = np.ones(len(codes), dtype=bool)
        for g, m in enumerate(masks):
            ok &= m[codes[:, g]]
        if not self.simple:
            # rows whose genes passed the masks hold allowed values in every gene, active or
            # not, so of ``space.validate`` only the canonical form and the cross-gene check
            # are left to test (the per-value choice matching dominated this on OFA-MBv3)
            if space.name != self.space.name:
                return np.zeros(len(codes), dtype=bool)
            idx = np.flatnonzero(ok)
            for i, arch in zip(idx, self.decode(codes[idx]), strict=True):
                ok[i] = self._rest_valid(space, arch)
        return ok

    @staticmethod
    def _rest_valid(space: SearchSpace, arch: Architecture) -> bool:
        """The rest of ``space.validate`` for a decoded architecture whose every gene holds an
        allowed value: canonical form and cross-gene constraints."""
        if space._canonical(arch.values) != arch.values:
            return False
        try:
            space._check(arch.values)
        except InvalidArchitectureError:
            return False
        return True

    def keys(self, codes: np.ndarray) -> np.ndarray:
        """One integer per row identifying the code vector (mixed-radix), for fast dedupe."""
        radix = np.concatenate([[1], np.cumprod(self.n_choices[::-1])[:-1]])[::-1]
        return np.asarray(codes, dtype=np.int64) @ radix


class CodeFeatures:
    """Features of gene codes: the design matrix of a surrogate model.

    Subclasses set :attr:`codec` and :attr:`n_features` and implement :meth:`transform`. A space
    whose members fall into classes computing the same function (NAS-Bench-201 cells with dead
    edges) overrides :meth:`classes`, and one whose features repeat across members overrides
    :meth:`row_ids`, so a surrogate predicts each distinct vector once.
    """

    codec: GeneCodec
    n_features: int

    def transform(self, codes: np.ndarray) -> np.ndarray:
        """Feature matrix, shape (n, n_features), float64."""
        raise NotImplementedError

    def row_ids(self, codes: np.ndarray) -> np.ndarray | None:
        """Id of each row's feature vector (equal ids: equal features), or ``None`` when the
        features tell every member apart."""
        return None

    def classes(self, codes: np.ndarray) -> np.ndarray | None:
        """Id of each row's equivalence class (members computing the same function; their
        accuracies differ only by training noise), or ``None`` when the space has no such
        classes."""
        return None


class OneHotFeatures(CodeFeatures):
    """One-hot (and optionally pairwise one-hot) features of gene codes.

    Args:
        codec: the gene codec.
        pairwise: add one column per (gene_i=a, gene_j=b) pair, i < j.
    """

    def __init__(self, codec: GeneCodec, *, pairwise: bool = True) -> None:
        self.codec = codec
        self.pairwise = pairwise
        n = codec.n_choices
        self.pairs = list(itertools.combinations(range(len(n)), 2)) if pairwise else []
        offs, start = [], int(n.sum())
        for i, j in self.pairs:
            offs.append(start)
            start += int(n[i] * n[j])
        self.pair_offsets = np.array(offs, dtype=np.int64)
        self.n_features = start

    def transform(self, codes: np.ndarray) -> np.ndarray:
        """Dense 0/1 feature matrix, shape (n, n_features), float64."""
        codes = np.asarray(codes, dtype=np.int64)
        X = np.zeros((len(codes), self.n_features))
        rows = np.arange(len(codes))
        for g in range(codes.shape[1]):
            X[rows, self.codec.offsets[g] + codes[:, g]] = 1.0
        nch = self.codec.n_choices
        for p, (i, j) in enumerate(self.pairs):
            X[rows, self.pair_offsets[p] + codes[:, i] * nch[j] + codes[:, j]] = 1.0
        return X
