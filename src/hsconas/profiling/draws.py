"""Drawing the architectures block profiling measures: uniformly, or with one block forced at one
position (from a table's rows when the source can only measure those)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from hsconas.evaluation.base import ArchPool
from hsconas.profiling.specs import BlockSpec, holds
from hsconas.space.core import Architecture, SearchSpace

__all__ = ["draw_forced", "draw_random"]


def draw_forced(
    space: SearchSpace,
    spec: BlockSpec,
    n: int,
    rng: np.random.Generator,
    *,
    pool: ArchPool | None = None,
    exclude: Iterable[Architecture] = (),
    max_tries: int = 10_000,
) -> list[Architecture]:
    """Up to ``n`` distinct architectures holding ``spec``, none of them in ``exclude``.

    With a pool (a table), the rows holding the block are drawn uniformly without replacement
    (fewer than ``n`` if the table has fewer). Without one, architectures are sampled from the space
    with the gene set to the block (genes it needs active, such as a unit's depth, are resampled
    until it is active), rejecting duplicates.
    """
    excluded = set(exclude)
    if pool is not None:
        idx = np.flatnonzero(pool.mask_of(spec.position, spec.choice))
        cand = [pool.archs[i] for i in idx if pool.archs[i] not in excluded]
        if len(cand) <= n:
            return cand
        pick = rng.choice(len(cand), size=n, replace=False)
        return [cand[i] for i in sorted(pick)]
    out: dict[Architecture, None] = {}
    tries = 0
    while len(out) < n and tries < max_tries:
        tries += 1
        values = list(space._random_values(rng))
        values[spec.position] = spec.choice
        canon = space._canonical(values)
        if not space._valid_values(canon):
            continue
        arch = Architecture(space.name, canon)
        if arch in excluded or arch in out or not holds(space, arch, spec):
            continue
        out[arch] = None
    return list(out)


def draw_random(
    space: SearchSpace,
    n: int,
    rng: np.random.Generator,
    *,
    pool: ArchPool | None = None,
) -> list[Architecture]:
    """``n`` distinct architectures drawn uniformly (table rows without replacement, or samples)."""
    if pool is not None:
        if n >= len(pool):
            return list(pool.archs)
        pick = rng.choice(len(pool), size=n, replace=False)
        return [pool.archs[i] for i in sorted(pick)]
    out: dict[Architecture, None] = {}
    tries = 0
    while len(out) < min(n, space.size()) and tries < 100 * max(n, 1):
        tries += 1
        out[space.sample(rng)] = None
    return list(out)
