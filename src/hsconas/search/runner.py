"""Run a search with persistence and resume through the :class:`~hsconas.store.ResultStore`.

Every distinct evaluation is appended to the store the moment it is made (``seq`` = query number).
Resuming replays the stored evaluations in order: the algorithm is rebuilt from its seed and asks the
same architectures again, the stored values answer them without calling the evaluator, and once the
stored evaluations are used up the search continues with fresh queries. The resumed run therefore
reaches exactly the result of an uninterrupted run with the same seed. If the algorithm asks for an
architecture other than the stored one (the configuration or code changed), the resume stops with a
:class:`~hsconas.store.StoreError` rather than mixing two different searches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hsconas.search.algorithms import ALGORITHMS
from hsconas.search.core.algorithm import SearchAlgorithm
from hsconas.search.core.problem import (
    EvalRecord,
    Evaluator,
    Problem,
    QueryCounter,
    SearchConfigError,
    make_record,
)
from hsconas.search.indicators import objectives, pareto_mask
from hsconas.store import ResultStore, StoreError

ALGORITHM_NAMES: tuple[str, ...] = tuple(ALGORITHMS)


def make_algorithm(
    name: str, problem: Problem, *, seed: int, shrinking: bool = True, **options: Any
) -> SearchAlgorithm:
    """Build a search algorithm by name (``hsconas``, ``random``, ``re``, ``nsga2``)."""
    if name == "hsconas":
        options["shrinking"] = shrinking
    if name in ALGORITHMS:
        return ALGORITHMS[name](problem, seed=seed, **options)
    raise SearchConfigError(
        f"unknown algorithm {name!r}; choose one of {', '.join(ALGORITHM_NAMES)}"
    )


@dataclass(frozen=True)
class SearchResult:
    """The outcome of a search.

    Attributes:
        records: every distinct evaluation, in query order.
        front: the non-dominated evaluated architectures, by increasing latency.
        best: the most accurate evaluated architecture within the budget (``None`` without a
            budget or when nothing evaluated meets it).
        budget_ms: the latency budget, ms, if any.
        n_queries: distinct architectures evaluated.
        n_replayed: evaluations taken from the store instead of the evaluator (resume).
        stalled: the algorithm stopped proposing new architectures before the query budget.
        time_s: wall time of the search, seconds.
        info: algorithm-specific report (e.g. shrinking stages).
        config: the run configuration.
    """

    records: tuple[EvalRecord, ...]
    front: tuple[EvalRecord, ...]
    best: EvalRecord | None
    budget_ms: float | None
    n_queries: int
    n_replayed: int
    stalled: bool
    time_s: float
    info: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary: front, best under budget, query counts."""

        def rec(r: EvalRecord) -> dict[str, Any]:
            return {"arch": r.key, "accuracy": r.accuracy, "latency_ms": r.latency_ms}

        return {
            "n_queries": self.n_queries,
            "n_replayed": self.n_replayed,
            "stalled": self.stalled,
            "time_s": round(self.time_s, 3),
            "budget_ms": self.budget_ms,
            "best": rec(self.best) if self.best is not None else None,
            "front": [rec(r) for r in self.front],
            "info": dict(self.info),
        }


def front_of(records: tuple[EvalRecord, ...] | list[EvalRecord]) -> tuple[EvalRecord, ...]:
    """Non-dominated records by increasing latency (ties by decreasing accuracy)."""
    if not records:
        return ()
    F = objectives([r.accuracy for r in records], [r.latency_ms for r in records])
    idx = np.flatnonzero(pareto_mask(F))
    out = [records[i] for i in idx]
    out.sort(key=lambda r: (r.latency_ms, -r.accuracy, r.key))
    return tuple(out)


def stage_ranges(stages: list[Mapping[str, Any]], n_queries: int) -> list[tuple[int, int]]:
    """``(first, end)`` query indices of each shrinking stage (``info()["stages"]`` of the EA, each
    with the query count ``n_queries`` at which it started); the last stage ends at
    ``n_queries``, the search's total. No stages (a baseline): no ranges."""
    starts = [int(stage["n_queries"]) for stage in stages]
    return list(zip(starts, [*starts[1:], n_queries][: len(starts)], strict=True))


def best_under(
    records: tuple[EvalRecord, ...] | list[EvalRecord], budget_ms: float | None
) -> EvalRecord | None:
    """Most accurate record with latency <= budget (ties: lower latency, then string)."""
    if budget_ms is None:
        return None
    ok = [r for r in records if r.latency_ms <= budget_ms]
    if not ok:
        return None
    return min(ok, key=lambda r: (-r.accuracy, r.latency_ms, r.key))


def run_search(
    problem: Problem,
    algorithm: SearchAlgorithm,
    evaluator: Evaluator,
    n_queries: int,
    *,
    store: ResultStore | None = None,
    run_id: str | None = None,
    resume: bool = False,
    run_config: Mapping[str, Any] | None = None,
    max_stall: int = 200,
    on_batch: Callable[[int], None] | None = None,
) -> SearchResult:
    """Run ``algorithm`` until ``n_queries`` distinct architectures have been evaluated.

    Args:
        problem: the search problem (the algorithm's).
        algorithm: a freshly built algorithm (its seed determines the run).
        evaluator: answers queries.
        n_queries: distinct architectures to evaluate.
        store: where evaluations are appended; with ``run_id``.
        run_id: the run's id in the store.
        resume: replay the run's stored evaluations and continue.
        run_config: extra JSON-ready configuration stored with the run (it identifies the run;
            the query count is not part of it, so a resumed run may ask for more queries).
        max_stall: stop after this many consecutive batches without a new architecture.
        on_batch: called with the query count after each batch (progress display).

    Raises:
        SearchConfigError: bad query count, or a stored run exists and ``resume`` is off.
        StoreError: the stored run has another configuration or diverges from this one.
    """
    if n_queries < 1:
        raise SearchConfigError(f"the number of queries must be >= 1, got {n_queries}")
    if (store is None) != (run_id is None):
        raise SearchConfigError("give both a store and a run id, or neither")
    space = problem.space
    config = {
        "space": space.name,
        "restrict": {k: [str(v) for v in vs] for k, vs in space.restriction().items()},
        "mode": problem.mode,
        "budget_ms": problem.budget_ms,
        "weight": problem.weight,
        "evaluator": dict(evaluator.settings),
        "algorithm": algorithm.config(),
        **dict(run_config or {}),
    }
    stored: list[Any] = []
    if store is not None and run_id is not None:
        existing = store.get_run(run_id)
        if existing is not None:
            stored = store.evaluations(run_id)
            if stored and not resume:
                raise SearchConfigError(
                    f"run {run_id!r} already has {len(stored)} evaluations in {store.path}; "
                    "pass --resume to continue it or choose another --run-id"
                )
        store.create_run(run_id, "search", config)
    counter = QueryCounter(evaluator, space)
    pos = 0
    stall = 0
    stalled = False
    t0 = time.perf_counter()
    while counter.n_queries < n_queries:
        batch = algorithm.ask()
        told: list[EvalRecord] = []
        new = 0
        for arch in batch:
            if counter.n_queries >= n_queries:
                break
            rec = counter.get(arch)
            if rec is None:
                if pos < len(stored):
                    ev = stored[pos]
                    key = space.to_string(arch)
                    if ev.arch != key:
                        raise StoreError(
                            f"cannot resume run {run_id!r}: query {ev.seq} was {ev.arch} but the "
                            f"search now asks {key}; the configuration or code changed"
                        )
                    rec = make_record(space, arch, ev.values)
                    counter.preload(rec)
                    pos += 1
                else:
                    rec, _ = counter.evaluate(arch)
                    if store is not None and run_id is not None:
                        store.add_evaluation(run_id, counter.n_queries - 1, rec.key, rec.values())
                new += 1
            told.append(rec)
        algorithm.tell(told)
        if on_batch is not None:
            on_batch(counter.n_queries)
        stall = 0 if new else stall + 1
        if not batch or stall >= max_stall:
            stalled = True
            break
    elapsed = time.perf_counter() - t0
    records = tuple(counter.records)
    result = SearchResult(
        records=records,
        front=front_of(records),
        best=best_under(records, problem.budget_ms),
        budget_ms=problem.budget_ms,
        n_queries=counter.n_queries,
        n_replayed=pos,
        stalled=stalled,
        time_s=elapsed,
        info=algorithm.info(),
        config=config,
    )
    if store is not None and run_id is not None:
        summary = result.summary()
        summary.pop("front")
        summary["front_size"] = len(result.front)
        store.finish_run(run_id, summary)
        for stage in result.info.get("stages", []):
            store.log_metric(run_id, int(stage["stage"]), "space_size", float(stage["space_size"]))
    return result
