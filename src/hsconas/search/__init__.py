"""Hardware-aware search: problems, evaluators, Pareto tools, the HSCoNAS EA and baselines (no torch)."""

from hsconas.search.algorithm import SearchAlgorithm
from hsconas.search.baselines import NSGA2Search, RandomSearch, RegularizedEvolution
from hsconas.search.ea import HSCoNASEvolution
from hsconas.search.pareto import TrueFront, crowding_distance, hypervolume, non_dominated_sort
from hsconas.search.problem import (
    BudgetInfeasibleError,
    EvalRecord,
    Evaluator,
    Problem,
    QueryCounter,
    SearchConfigError,
    TabularEvaluator,
)
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
