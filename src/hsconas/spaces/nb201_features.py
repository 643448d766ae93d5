"""Features of NAS-Bench-201 cells for the search's surrogates, from the cell's structure alone.

A cell computes the same function as another when they differ only by dead edges (an edge whose
source receives no signal, or whose result never reaches the output) or by the order of summed
terms: :func:`nb201_canonical` names that function, like NAS-Bench-201's ``unique_str``. The
accuracy features see only what is trained (effective one-hot, path encodings, live op counts);
the latency features see every op placed, and those that survive dead-code elimination.
Tabulated once for the 15625 cells. Numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hsconas.space.codec import CodeFeatures, GeneCodec
from hsconas.spaces.nb201 import NB201_EDGES, NB201_OPS

__all__ = ["CellFeatureMap", "nb201_canonical", "nb201_tables"]

#: op indices of the NB201 genes (their order in ``NB201_OPS``).
_NONE, _SKIP = NB201_OPS.index("none"), NB201_OPS.index("skip_connect")
#: input->output paths of the 4-node cell as gene indices (edge order of the string form).
_NB201_PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))


def _nb201_live_out(ops: Sequence[int]) -> set[int]:
    """Nodes from which signal can reach the output node (3) through non-``none`` edges."""
    live_out = {3}
    for (to, frm), op in reversed(list(zip(NB201_EDGES, ops, strict=True))):
        if op != _NONE and to in live_out:
            live_out.add(frm)
    return live_out


def _nb201_effective(ops: Sequence[int]) -> list[int]:
    """Ops of the effective cell: an edge whose source receives no signal from the input, or whose
    target cannot pass signal to the output, is replaced by ``none``."""
    live_in = {0}
    for (to, frm), op in zip(NB201_EDGES, ops, strict=True):
        if op != _NONE and frm in live_in:
            live_in.add(to)
    live_out = _nb201_live_out(ops)
    return [
        op if op != _NONE and frm in live_in and to in live_out else _NONE
        for (to, frm), op in zip(NB201_EDGES, ops, strict=True)
    ]


def nb201_canonical(ops: Sequence[int]) -> str:
    """Canonical string of the cell's computation (equal for cells computing the same function
    up to the order of summed terms), like NB201's ``unique_str``: skip connections are identity,
    dead edges vanish, the summed terms of a node are sorted."""
    eff = _nb201_effective(ops)
    terms: dict[int, list[str]] = {0: ["0"]}
    for node in (1, 2, 3):
        out: list[str] = []
        for k, (to, frm) in enumerate(NB201_EDGES):
            if to != node or eff[k] == _NONE or not terms[frm]:
                continue
            if eff[k] == _SKIP:
                out.extend(terms[frm])
            else:
                out.append("(" + "+".join(terms[frm]) + ")@" + NB201_OPS[eff[k]])
        terms[node] = sorted(out)
    return "+".join(terms[3]) or "#"


def _nb201_out_live(ops: Sequence[int]) -> list[int]:
    """Ops of the edges whose target node can pass signal to the output (the others are
    ``none``): what survives dead-code elimination when a cell is compiled, since an edge fed by
    a ``none`` (zeros) is still computed but one whose result is never used is not."""
    live_out = _nb201_live_out(ops)
    return [
        op if op != _NONE and to in live_out else _NONE
        for (to, _frm), op in zip(NB201_EDGES, ops, strict=True)
    ]


def _nb201_row(ops: Sequence[int]) -> np.ndarray:
    eff = _nb201_effective(ops)
    n_ops = len(NB201_OPS)
    raw = np.zeros(6 * n_ops)
    effective = np.zeros(6 * n_ops)
    for k in range(6):
        raw[k * n_ops + ops[k]] = 1.0
        effective[k * n_ops + eff[k]] = 1.0
    # path encoding (BANANAS): counts of each op sequence along input->output paths, with the
    # 4 non-none ops (4 + 16 + 64 columns); and the same with skip removed (1 + 3 + 9 + 27).
    paths = np.zeros(4 + 16 + 64)
    compact = np.zeros(1 + 3 + 9 + 27)
    path_off = {1: 0, 2: 4, 3: 20}
    compact_off = {0: 0, 1: 1, 2: 4, 3: 13}
    for path in _NB201_PATHS:
        seq = [eff[k] for k in path]
        if any(op == _NONE for op in seq):
            continue
        idx = 0
        for op in seq:
            idx = idx * 4 + (op - 1)
        paths[path_off[len(seq)] + idx] += 1.0
        conv = [op - 2 for op in seq if op != _SKIP]
        idx = 0
        for op in conv:
            idx = idx * 3 + op
        compact[compact_off[len(conv)] + idx] += 1.0
    counts = np.bincount(np.asarray(eff), minlength=n_ops).astype(np.float64)
    n_paths = paths.sum()
    extra = np.array([float(n_paths == 0), n_paths, counts[2] + counts[3]])
    out_live = np.zeros(6 * n_ops)
    for k, op in enumerate(_nb201_out_live(ops)):
        out_live[k * n_ops + op] = 1.0
    return np.concatenate([raw, effective, paths, compact, counts, extra, out_live])


_NB201_TABLE: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def nb201_tables() -> tuple[np.ndarray, np.ndarray]:
    """Features (15625 x d) and canonical-class ids (15625,) of every NB201 cell, by code key
    (mixed radix, first gene most significant, op indices in ``NB201_OPS`` order)."""
    if "t" not in _NB201_TABLE:
        rows: list[np.ndarray] = []
        classes: list[int] = []
        ids: dict[str, int] = {}
        for key in range(5**6):
            ops = [(key // 5 ** (5 - g)) % 5 for g in range(6)]
            rows.append(_nb201_row(ops))
            classes.append(ids.setdefault(nb201_canonical(ops), len(ids)))
        _NB201_TABLE["t"] = (np.stack(rows), np.asarray(classes, dtype=np.int64))
    return _NB201_TABLE["t"]


class CellFeatureMap(CodeFeatures):
    """Accuracy features of NB201 cells (raw and effective one-hot, path encodings, op counts on
    live paths); computed from the architecture alone, tabulated once for the 15625 cells.

    Args:
        codec: a codec of the NB201 space.
        one_hot_only: keep only one-hot columns, raw, effective and surviving dead-code
            elimination (latency features: an op costs time wherever it sits, but compiled
            cells drop the ops whose result never reaches the output).
        effective_only: drop the raw one-hot columns, so that cells computing the same function
            get the same features (accuracy features: a dead edge changes nothing that is
            trained; the spread of accuracies within such a class is training noise).
        derived_weight: with ``one_hot_only``, the scale of the effective and surviving
            columns. A ridge penalises their coefficients ``1 / derived_weight**2`` times more
            than the raw ops': latency stays additive in the ops actually placed unless the
            data show dead code being dropped. On the few hundred cells a search has queried,
            mostly alike, equal weights let the collinear columns trade coefficients freely
            and the model extrapolates badly to cells with dead edges.
        edge_weight: with ``one_hot_only``, put 5 op-count columns (how many edges carry each op)
            in front and scale every per-edge column by ``edge_weight``. A ridge then learns one
            cost per op, shared by the 6 edges, and per-edge deviations from it only as far as
            the data demand (a hierarchical prior: an op costs about the same on every edge).
            After a few dozen queries that is what the data can support; per-edge columns alone
            need every (edge, op) pair queried often. ``None``: no count columns.
    """

    def __init__(
        self,
        codec: GeneCodec,
        *,
        one_hot_only: bool = False,
        effective_only: bool = False,
        derived_weight: float = 1.0,
        edge_weight: float | None = None,
    ) -> None:
        if codec.space.name != "nb201":
            raise ValueError(f"CellFeatureMap needs the NB201 cell space, not {codec.space.name}")
        if one_hot_only and effective_only:
            raise ValueError("one_hot_only and effective_only exclude each other")
        if edge_weight is not None and not one_hot_only:
            raise ValueError("edge_weight applies to the one_hot_only (latency) features")
        self.codec = codec
        table, classes = nb201_tables()
        # columns: raw one-hot (30), effective one-hot (30), path encodings, op counts, and
        # the one-hot of the edges that survive dead-code elimination (last 30)
        if one_hot_only:
            derived = derived_weight * np.hstack([table[:, 30:60], table[:, -30:]])
            table = np.hstack([table[:, :30], derived])
            if edge_weight is not None:
                counts = table[:, :30].reshape(-1, 6, len(NB201_OPS)).sum(axis=1)
                table = np.hstack([counts, edge_weight * table])
        elif effective_only:
            table = table[:, 30:-30]
        self._table = table
        self._classes = classes
        self._row_ids: np.ndarray | None = None
        self.n_features = self._table.shape[1]

    def transform(self, codes: np.ndarray) -> np.ndarray:
        """Feature matrix, shape (n, n_features), float64."""
        return self._table[self.codec.keys(codes)]

    def row_ids(self, codes: np.ndarray) -> np.ndarray:
        """Id of each row's feature vector (equal ids: equal features, hence equal predictions)."""
        if self._row_ids is None:
            self._row_ids = np.unique(self._table, axis=0, return_inverse=True)[1].reshape(-1)
        return self._row_ids[self.codec.keys(codes)]

    def classes(self, codes: np.ndarray) -> np.ndarray:
        """Canonical-class id of each row (equal ids: the same effective computation)."""
        return self._classes[self.codec.keys(codes)]
