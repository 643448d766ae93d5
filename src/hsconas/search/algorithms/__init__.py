"""The search algorithms, one per module, registered by name: the HSCoNAS evolution and the
baselines it is compared with in the same ask/tell harness."""

from hsconas.search.algorithms.hsconas_ea import HSCoNASEvolution
from hsconas.search.algorithms.nsga2 import NSGA2Search
from hsconas.search.algorithms.optuna_search import OptunaNSGA2, OptunaTPE
from hsconas.search.algorithms.random_search import RandomSearch
from hsconas.search.algorithms.regularized_evolution import RegularizedEvolution
from hsconas.search.core.algorithm import SearchAlgorithm

ALGORITHMS: dict[str, type[SearchAlgorithm]] = {
    "hsconas": HSCoNASEvolution,
    "random": RandomSearch,
    "re": RegularizedEvolution,
    "nsga2": NSGA2Search,
    "optuna-nsga2": OptunaNSGA2,
    "optuna-tpe": OptunaTPE,
}
"""Algorithm classes by the name ``make_algorithm`` and the CLI take."""

__all__ = [
    "ALGORITHMS",
    "HSCoNASEvolution",
    "NSGA2Search",
    "OptunaNSGA2",
    "OptunaTPE",
    "RandomSearch",
    "RegularizedEvolution",
]
