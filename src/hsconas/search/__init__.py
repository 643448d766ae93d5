"""Hardware-aware search: problems, evaluators, Pareto tools, the HSCoNAS EA and baselines (no torch)."""

from hsconas.evaluation import TabularEvaluator
from hsconas.search.algorithms import NSGA2Search, RandomSearch, RegularizedEvolution
from hsconas.search.algorithms.hsconas_ea import HSCoNASEvolution
from hsconas.search.core.algorithm import SearchAlgorithm
from hsconas.search.core.problem import (
    BudgetInfeasibleError,
    EvalRecord,
    Evaluator,
    Problem,
    QueryCounter,
    SearchConfigError,
)
from hsconas.search.indicators import TrueFront, crowding_distance, hypervolume, non_dominated_sort
from hsconas.search.runner import ALGORITHM_NAMES, SearchResult, make_algorithm, run_search

__all__ = [
    "ALGORITHM_NAMES",
    "BudgetInfeasibleError",
    "EvalRecord",
    "Evaluator",
    "HSCoNASEvolution",
    "NSGA2Search",
    "Problem",
    "QueryCounter",
    "RandomSearch",
    "RegularizedEvolution",
    "SearchAlgorithm",
    "SearchConfigError",
    "SearchResult",
    "TabularEvaluator",
    "TrueFront",
    "crowding_distance",
    "hypervolume",
    "make_algorithm",
    "non_dominated_sort",
    "run_search",
]
