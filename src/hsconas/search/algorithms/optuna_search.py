"""Optuna's samplers (NSGA-II and TPE) as baselines in the ask/tell harness.

Each gene is one categorical parameter (the index of its choice); a trial's parameters make an
architecture through :meth:`SearchSpace.make <hsconas.space.SearchSpace.make>` (inactive genes are
canonicalised, which Optuna does not know about). Pareto mode maximises accuracy and minimises
latency; constraint mode adds Optuna's constraint ``latency_ms - budget_ms <= 0`` (both samplers
honour it); weighted mode maximises the problem's scalar reward. ``optuna`` is an
optional dependency (``pip install hsconas[optuna]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hsconas.search.core.algorithm import SearchAlgorithm
from hsconas.search.core.problem import EvalRecord, Problem, SearchConfigError
from hsconas.space import Architecture

__all__ = ["OptunaNSGA2", "OptunaSearch", "OptunaTPE"]

_CONSTRAINT = "constraint"


def _constraints(trial: Any) -> Sequence[float]:
    return list(trial.user_attrs.get(_CONSTRAINT, [0.0]))


class OptunaSearch(SearchAlgorithm):
    """An Optuna study driven through ask/tell.

    Args:
        problem: the search problem.
        seed: seed of the sampler.
        batch_size: trials asked per batch (TPE fits on the told trials only).
    """

    name = "optuna"
    sampler_name = ""

    def __init__(self, problem: Problem, *, seed: int = 0, batch_size: int = 4) -> None:
        super().__init__(problem, seed=seed)
        try:
            import optuna
        except ImportError:  # pragma: no cover - optuna is installed with the test extra
            raise SearchConfigError(
                f"--algorithm {self.name} needs optuna: pip install 'hsconas[optuna]'"
            ) from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.batch_size = batch_size
        self._choices = [g.choices for g in self.space.genes]
        # Optuna >= 5 takes constraints from the trial (Trial.set_constraint); older releases
        # from the sampler's constraints_func
        self._trial_constraints = hasattr(optuna.trial.Trial, "set_constraint")
        constraints = (
            _constraints if problem.mode == "constraint" and not self._trial_constraints else None
        )
        sampler = self._sampler(optuna, seed, constraints)
        directions: list[Any] = (
            ["maximize"] if problem.mode == "weighted" else ["maximize", "minimize"]
        )
        self.study = optuna.create_study(directions=directions, sampler=sampler)
        self._pending: list[Any] = []

    def _sampler(self, optuna: Any, seed: int, constraints: Any) -> Any:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {**super().config(), "batch_size": self.batch_size}

    def ask(self) -> list[Architecture]:
        self._pending = [self.study.ask() for _ in range(self.batch_size)]
        out = []
        for trial in self._pending:
            values = [
                choices[trial.suggest_int(f"g{g}", 0, len(choices) - 1)]
                for g, choices in enumerate(self._choices)
            ]
            out.append(self.space.make(values))
        return out

    def tell(self, records: Sequence[EvalRecord]) -> None:
        super().tell(records)
        import optuna

        for trial, r in zip(self._pending, records, strict=False):
            if self.problem.mode == "weighted":
                import numpy as np

                value = float(
                    self.problem.scalar_fitness(np.array([r.accuracy]), np.array([r.latency_ms]))[0]
                )
                values: float | list[float] = value
            else:
                values = [float(r.accuracy), float(r.latency_ms)]
            if self.problem.mode == "constraint":
                assert self.problem.budget_ms is not None
                excess = float(r.latency_ms - self.problem.budget_ms)
                if self._trial_constraints:
                    trial.set_constraint("latency_ms", excess)
                else:
                    trial.set_user_attr(_CONSTRAINT, [excess])
            self.study.tell(trial, values, state=optuna.trial.TrialState.COMPLETE)
        self._pending = []


class OptunaNSGA2(OptunaSearch):
    """Optuna's NSGA-II sampler (population 40, its default operators)."""

    name = "optuna-nsga2"

    def _sampler(self, optuna: Any, seed: int, constraints: Any) -> Any:
        return optuna.samplers.NSGAIISampler(
            population_size=40, seed=seed, constraints_func=constraints
        )


class OptunaTPE(OptunaSearch):
    """Optuna's (multi-objective) TPE sampler, 16 random start-up trials like the HSCoNAS EA."""

    name = "optuna-tpe"

    def _sampler(self, optuna: Any, seed: int, constraints: Any) -> Any:
        return optuna.samplers.TPESampler(
            n_startup_trials=16, seed=seed, constraints_func=constraints, multivariate=True
        )
