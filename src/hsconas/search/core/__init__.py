"""The small base classes of a search: the problem, the immutable evaluation record, the
evaluator protocol and the ask/tell algorithm base."""

from hsconas.evaluation import TabularEvaluator
from hsconas.search.core.algorithm import SearchAlgorithm, rank_and_crowding, select_best
from hsconas.search.core.problem import (
    BudgetInfeasibleError,
    EvalRecord,
    Evaluator,
    Problem,
    QueryCounter,
    SearchConfigError,
    make_record,
)

__all__ = [
    "BudgetInfeasibleError",
    "EvalRecord",
    "Evaluator",
    "Problem",
    "QueryCounter",
    "SearchAlgorithm",
    "SearchConfigError",
    "TabularEvaluator",
    "make_record",
    "rank_and_crowding",
    "select_best",
]
