"""Random search: the baseline every search must beat."""

from __future__ import annotations

from hsconas.search.core.algorithm import SearchAlgorithm
from hsconas.search.core.problem import Problem
from hsconas.space import Architecture


class RandomSearch(SearchAlgorithm):
    """Uniform random sampling of the space (repeats are free and rare).

    Args:
        problem: the search problem.
        seed: seed.
        batch_size: architectures per ask.
    """

    name = "random"

    def __init__(self, problem: Problem, *, seed: int = 0, batch_size: int = 16) -> None:
        super().__init__(problem, seed=seed)
        self.batch_size = batch_size

    def ask(self) -> list[Architecture]:
        return [self.space.sample(self.rng) for _ in range(self.batch_size)]
