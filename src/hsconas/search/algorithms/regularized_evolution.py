"""Regularised (aging) evolution (Real et al., 2019) in the ask/tell harness."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from hsconas.search.core.algorithm import SearchAlgorithm, rank_and_crowding
from hsconas.search.core.problem import EvalRecord, Problem, SearchConfigError
from hsconas.space import Architecture


class RegularizedEvolution(SearchAlgorithm):
    """Regularised (aging) evolution, Real et al. 2019.

    A population of the ``population_size`` most recent members; each step samples ``sample_size``
    members, mutates the best of them and retires the oldest. "Best" is the problem's scalar fitness,
    or in Pareto mode the non-domination rank (then crowding distance) within the population.

    Args:
        problem: the search problem.
        seed: seed.
        population_size: population (also the number of initial random architectures).
        sample_size: tournament size.
    """

    name = "re"

    def __init__(
        self, problem: Problem, *, seed: int = 0, population_size: int = 50, sample_size: int = 10
    ) -> None:
        super().__init__(problem, seed=seed)
        if not 1 <= sample_size <= population_size:
            raise SearchConfigError("sample_size must be between 1 and population_size")
        self.population_size = population_size
        self.sample_size = sample_size
        self.population: deque[EvalRecord] = deque()
        self._n_asked = 0

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "population_size": self.population_size,
            "sample_size": self.sample_size,
        }

    def ask(self) -> list[Architecture]:
        if self._n_asked < self.population_size:
            self._n_asked += 1
            return [self.space.sample(self.rng)]
        members = list(self.population)
        pick = self.rng.choice(len(members), size=self.sample_size, replace=False)
        acc = np.array([members[i].accuracy for i in pick])
        lat = np.array([members[i].latency_ms for i in pick])
        if self.problem.mode == "pareto":
            all_acc = np.array([m.accuracy for m in members])
            all_lat = np.array([m.latency_ms for m in members])
            rank, crowd = rank_and_crowding(all_acc, all_lat)
            best = pick[np.lexsort((-crowd[pick], rank[pick]))[0]]
        else:
            best = pick[int(np.argmax(self.problem.scalar_fitness(acc, lat)))]
        self._n_asked += 1
        return [self.space.mutate(members[int(best)].arch, self.rng)]

    def _after_tell(self, records: Sequence[EvalRecord]) -> None:
        for r in records:
            self.population.append(r)
            if len(self.population) > self.population_size:
                self.population.popleft()
