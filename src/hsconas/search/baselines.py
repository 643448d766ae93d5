"""Baselines in the same ask/tell harness: random search, regularised evolution, NSGA-II (pymoo)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from hsconas.search.algorithm import SearchAlgorithm, rank_and_crowding
from hsconas.search.problem import EvalRecord, Problem, SearchConfigError
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


class NSGA2Search(SearchAlgorithm):
    """NSGA-II from pymoo over integer genes (index of each gene's choice), via ask/tell.

    Objectives are ``[-accuracy, latency_ms]``; constraint mode adds ``latency_ms - budget_ms <= 0``.
    Weighted mode optimises the single reward. Offspring use pymoo's SBX and polynomial mutation
    with rounding repair and duplicate elimination.

    Args:
        problem: the search problem.
        seed: seed (pymoo's own generator is seeded with it).
        pop_size: population and offspring size.
    """

    name = "nsga2"

    def __init__(self, problem: Problem, *, seed: int = 0, pop_size: int = 40) -> None:
        super().__init__(problem, seed=seed)
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.core.problem import Problem as PymooProblem
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.mutation.pm import PM
        from pymoo.operators.repair.rounding import RoundingRepair
        from pymoo.operators.sampling.rnd import IntegerRandomSampling

        self.pop_size = pop_size
        self._choices = [g.choices for g in self.space.genes]
        n_var = len(self._choices)
        n_obj = 1 if problem.mode == "weighted" else 2
        n_ieq = 1 if problem.mode == "constraint" else 0
        self._pproblem = PymooProblem(
            n_var=n_var, n_obj=n_obj, n_ieq_constr=n_ieq, xl=0,
            xu=np.array([len(c) - 1 for c in self._choices]), vtype=int,
        )  # fmt: skip
        self._algo = NSGA2(
            pop_size=pop_size,
            sampling=IntegerRandomSampling(),
            crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
            mutation=PM(eta=20, vtype=float, repair=RoundingRepair()),
            eliminate_duplicates=True,
            seed=self.seed,
        )
        self._algo.setup(self._pproblem, termination=("n_gen", 10**9), verbose=False)
        self._pending: Any = None

    def config(self) -> dict[str, Any]:
        return {**super().config(), "pop_size": self.pop_size}

    def ask(self) -> list[Architecture]:
        self._pending = self._algo.ask()
        X = np.asarray(self._pending.get("X")).round().astype(int)
        out = []
        for row in X:
            values = [
                self._choices[g][int(np.clip(k, 0, len(self._choices[g]) - 1))]
                for g, k in enumerate(row)
            ]
            out.append(self.space.make(values))
        return out

    def tell(self, records: Sequence[EvalRecord]) -> None:
        super().tell(records)
        pop = self._pending
        if pop is None:
            return
        n = len(records)
        if n < len(pop):  # only a prefix was evaluated (the query budget ran out)
            pop = pop[:n]
        if n == 0:
            self._pending = None
            return
        acc = np.array([r.accuracy for r in records])
        lat = np.array([r.latency_ms for r in records])
        if self.problem.mode == "weighted":
            F = -self.problem.scalar_fitness(acc, lat)[:, None]
        else:
            F = np.column_stack([-acc, lat])
        pop.set("F", F)
        if self.problem.mode == "constraint":
            assert self.problem.budget_ms is not None
            pop.set("G", (lat - self.problem.budget_ms)[:, None])
        self._algo.evaluator.n_eval += n
        self._algo.tell(infills=pop)
        self._pending = None


ALGORITHMS: dict[str, type[SearchAlgorithm]] = {
    "random": RandomSearch,
    "re": RegularizedEvolution,
    "nsga2": NSGA2Search,
}
