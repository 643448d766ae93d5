"""The ask/tell interface every search algorithm implements, and shared selection helpers.

An algorithm proposes architectures with :meth:`SearchAlgorithm.ask` and learns their evaluations
through :meth:`SearchAlgorithm.tell`. It owns a ``numpy.random.Generator`` made from its seed and
nothing else random, so the same seed and the same told records give the same proposals; this is
what makes ``--resume`` (replaying stored evaluations) reach the result of an uninterrupted run.
Algorithms never depend on the total query budget: a run of N queries is the first N queries of a
longer run with the same seed.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np

from hsconas.search.core.problem import EvalRecord, Problem
from hsconas.search.indicators import crowding_distance, non_dominated_sort, objectives
from hsconas.space import Architecture


class SearchAlgorithm(abc.ABC):
    """Base class: ask for architectures, tell their evaluations.

    Args:
        problem: the search problem (space, mode, budget).
        seed: seed of the algorithm's own generator.
    """

    name: str = "base"

    def __init__(self, problem: Problem, *, seed: int = 0) -> None:
        self.problem = problem
        self.space = problem.space
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.history: list[EvalRecord] = []
        self._seen: set[Architecture] = set()

    @abc.abstractmethod
    def ask(self) -> list[Architecture]:
        """The next batch of architectures to evaluate (may repeat evaluated ones; they are free)."""

    def tell(self, records: Sequence[EvalRecord]) -> None:
        """Evaluations of (a prefix of) the last batch, in the order asked."""
        for r in records:
            if r.arch not in self._seen:
                self._seen.add(r.arch)
                self.history.append(r)
        self._after_tell(records)

    def _after_tell(self, records: Sequence[EvalRecord]) -> None:
        """Hook for subclasses."""

    def config(self) -> dict[str, Any]:
        """JSON-ready hyper-parameters (stored with the run)."""
        return {"algorithm": self.name, "seed": self.seed}

    def info(self) -> dict[str, Any]:
        """JSON-ready state worth reporting after the run (stages, space sizes, ...)."""
        return {}


def rank_and_crowding(
    accuracy: np.ndarray, latency_ms: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Non-domination rank (0 best) and crowding distance within each front, per point."""
    F = objectives(accuracy, latency_ms)
    rank = np.zeros(len(F), dtype=np.int64)
    crowd = np.zeros(len(F))
    for k, front in enumerate(non_dominated_sort(F)):
        rank[front] = k
        crowd[front] = crowding_distance(F[front])
    return rank, crowd


def select_best(problem: Problem, records: Sequence[EvalRecord], k: int) -> list[int]:
    """Indices of the ``k`` best records under the problem's fitness.

    Pareto mode: by non-domination rank, then crowding distance (NSGA-II environmental selection).
    Other modes: by :meth:`Problem.scalar_fitness`.
    """
    if not records:
        return []
    acc = np.array([r.accuracy for r in records])
    lat = np.array([r.latency_ms for r in records])
    if problem.mode == "pareto":
        rank, crowd = rank_and_crowding(acc, lat)
        order = np.lexsort((-crowd, rank))
    else:
        order = np.argsort(-problem.scalar_fitness(acc, lat), kind="stable")
    return [int(i) for i in order[:k]]
