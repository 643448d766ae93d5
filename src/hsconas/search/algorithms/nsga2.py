"""NSGA-II (pymoo) in the ask/tell harness, over integer gene indices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hsconas.search.core.algorithm import SearchAlgorithm
from hsconas.search.core.problem import EvalRecord, Problem
from hsconas.space import Architecture


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
