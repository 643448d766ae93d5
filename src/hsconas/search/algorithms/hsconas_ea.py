"""The HSCoNAS evolutionary algorithm: population, parents, mutation, crossover, surrogate-assisted
selection and progressive space shrinking.

One generation:

1. **Population**: the ``population_size`` best evaluated architectures under the problem's fitness
   (Pareto mode: non-domination rank then crowding distance; constraint mode: accuracy within the
   budget; weighted mode: the MnasNet-style reward).
2. **Parents and offspring**: binary tournaments on the population pick parents; offspring are made
   by uniform crossover of two parents and/or mutation of one or two genes, plus a few random
   immigrants. Offspring outside the current (shrunk) space or already evaluated are discarded.
   Many more offspring are bred than are evaluated (``offspring_per_generation``).
3. **Surrogate-assisted selection** (the documented HSCoNAS step): predictors fitted on every
   architecture queried so far score the candidates (the offspring, plus the whole space when it is
   small enough to enumerate); see :mod:`hsconas.search.surrogate.search_models`. Pareto mode picks
   the batch greedily by the probability of not being dominated by the evaluated points under both
   uncertainties (each pick added as a fantasy point before the next); constraint mode by
   P(feasible) x P(improvement), P(feasible) from the latency model's leave-one-out residual
   distribution (some devices run a few cells far faster than an additive model says); weighted
   mode by optimistic predicted fitness. Both probabilities are Gaussian on the accuracy model's
   log-error scale, so a cell predicted far below the front keeps the narrow distribution its model
   gave it. Devices that report latency in steps (whole milliseconds on some phones) are detected
   from the measured values, and both probabilities then count a candidate whose latency rounds to
   a known point's (or to the budget) as tied with it.
4. **Dynamic channel scaling** (optional, off by default: no measured gain yet; constraint and
   weighted modes, spaces with channel genes): a share
   of the fresh offspring is copied and channel-scaled towards the budget from below by
   :class:`~hsconas.search.channel_scaling.CodeScaler` (additive latency and accuracy models
   refitted on the history each generation, moves where the predicted accuracy gain per ms is
   highest); the scaled copies join the pool that the surrogates score, next to the originals.
   Spaces without channel genes (NB201, FBNet) are unaffected.
5. **Progressive space shrinking** (optional): when the number of queries reaches each entry of
   ``shrink_at``, dominated (gene, choice) options are removed (:mod:`hsconas.search.shrinking`)
   by two rules: the additive one (a choice whose estimated marginal effect is worse on both
   accuracy and latency than another choice's by ``shrink_z`` standard errors) and the evidence
   one (a choice held by at least ``shrink_min_count`` evaluated networks, every one of them
   trailing the evaluated front by more than ``shrink_margin`` accuracy points at no lower
   latency). The first rule rarely fires where every larger choice buys accuracy with latency
   (OFA-MobileNetV3); the second does.

Only table reads (or whatever the evaluator does) count as queries; surrogate predictions are free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hsconas.search.channel_scaling import CodeScaler
from hsconas.search.core.algorithm import SearchAlgorithm, select_best
from hsconas.search.core.problem import EvalRecord, Problem, SearchConfigError
from hsconas.search.indicators import non_dominated_sort
from hsconas.search.shrinking import (
    dominated_choices,
    estimate_effects,
    front_dominated_choices,
    merge_drops,
    shrink_space,
)
from hsconas.search.surrogate.acquisition import (
    feasible_improvement_batch,
    feasible_probability,
    hv_improvement_batch,
    latency_quantum,
    non_dominated_batch,
    on_error_log_scale,
)
from hsconas.search.surrogate.search_models import ACCURACY_MODELS, SearchSurrogates
from hsconas.space import Architecture
from hsconas.space.codec import GeneCodec


class HSCoNASEvolution(SearchAlgorithm):
    """Surrogate-assisted evolutionary search with progressive space shrinking.

    Args:
        problem: the search problem.
        seed: seed of the algorithm's generator.
        population_size: number of architectures kept as parents.
        initial_queries: random architectures evaluated before evolution starts.
        batch_size: architectures evaluated per generation.
        offspring_per_generation: offspring bred (and scored by the surrogates) per generation.
        crossover_prob: chance that an offspring comes from crossover (then mutated with 50%).
        immigrant_frac: share of random architectures added to the offspring.
        surrogate: use surrogate-assisted selection; without it the first offspring are evaluated.
        kappa: optimism of the accuracy prediction (std multiples) in weighted mode and for
            ``acquisition="hvi"``.
        alpha: ridge penalty of the ``ridge`` accuracy surrogate.
        n_members: bootstrap ensemble size of the ``ridge`` accuracy surrogate.
        pool: ``"offspring"`` (bred offspring only), or ``"space"``/``"auto"`` (the bred
            offspring plus every architecture of the current space when it has at most 20000
            members, e.g. NB201; then at most 500 offspring are bred).
        acquisition: ``"poi"`` (probability of non-domination) or ``"hvi"`` (hypervolume
            improvement of the optimistic prediction) in Pareto mode.
        model: accuracy surrogate: ``"trees+gp"``, ``"trees"`` or ``"ridge"``
            (:class:`~hsconas.search.surrogate.search_models.SearchSurrogates`).
        n_trees: trees of the extra-trees surrogate.
        shrinking: enable progressive space shrinking.
        shrink_at: query counts after which a shrinking stage ends.
        shrink_z: significance (standard errors) the additive rule needs to call a choice
            dominated.
        shrink_min_count: evaluated networks (holding the choice in an active layer) the
            evidence rule needs before it judges a choice.
        shrink_margin: accuracy points by which every such network must trail the evaluated
            front (at no higher latency) for the evidence rule to drop the choice.
        min_choices: choices every gene keeps.
        channel_scaling: in constraint and weighted modes, add channel-scaled copies of the
            offspring to the pool (spaces with channel genes only). Off by default: on
            OFA-MBv3 (5 seeds, 100 queries) it neither helped nor hurt measurably.
        scaled_offspring: offspring copied and scaled per generation.
    """

    name = "hsconas"

    def __init__(
        self,
        problem: Problem,
        *,
        seed: int = 0,
        population_size: int = 32,
        initial_queries: int = 16,
        batch_size: int = 4,
        offspring_per_generation: int = 2000,
        crossover_prob: float = 0.5,
        immigrant_frac: float = 0.1,
        surrogate: bool = True,
        kappa: float = 1.0,
        alpha: float = 3.0,
        n_members: int = 5,
        pool: str = "auto",
        acquisition: str = "poi",
        model: str = "trees+gp",
        n_trees: int = 50,
        shrinking: bool = True,
        shrink_at: Sequence[int] = (50, 100, 200, 400),
        shrink_z: float = 3.0,
        shrink_min_count: int = 8,
        shrink_margin: float = 0.1,
        min_choices: int = 2,
        channel_scaling: bool = False,
        scaled_offspring: int = 256,
    ) -> None:
        super().__init__(problem, seed=seed)
        if population_size < 2 or initial_queries < 2 or batch_size < 1:
            raise SearchConfigError(
                "population_size and initial_queries must be >= 2, batch_size >= 1"
            )
        if acquisition not in ("poi", "hvi"):
            raise SearchConfigError(f"acquisition must be 'poi' or 'hvi', got {acquisition!r}")
        if model not in ACCURACY_MODELS:
            raise SearchConfigError(
                f"model must be one of {', '.join(ACCURACY_MODELS)}, got {model!r}"
            )
        if pool not in ("offspring", "space", "auto"):
            raise SearchConfigError(f"pool must be 'offspring', 'space' or 'auto', got {pool!r}")
        self.population_size = population_size
        self.initial_queries = initial_queries
        self.batch_size = batch_size
        self.offspring_per_generation = offspring_per_generation
        self.crossover_prob = crossover_prob
        self.immigrant_frac = immigrant_frac
        self.surrogate = surrogate
        self.kappa = kappa
        self.alpha = alpha
        self.n_members = n_members
        self.pool = pool
        self.acquisition = acquisition
        self.model = model
        self.n_trees = n_trees
        self.shrinking = shrinking
        self.shrink_at = tuple(sorted(int(s) for s in shrink_at))
        self.shrink_z = shrink_z
        self.shrink_min_count = int(shrink_min_count)
        self.shrink_margin = float(shrink_margin)
        self.min_choices = min_choices
        self.channel_scaling = channel_scaling
        self.scaled_offspring = int(scaled_offspring)

        self.codec = GeneCodec(self.space)
        self.surrogates = SearchSurrogates(
            self.space, self.codec, model=model, n_trees=n_trees, alpha=alpha, n_members=n_members
        )
        self.current_space = self.space
        self._allowed = self.codec.allowed_mask(self.space)
        self._scaler = CodeScaler(self.space, self.codec)
        self.n_scaled_picked = 0  # evaluated architectures that came from channel scaling
        self._codes: list[np.ndarray] = []
        self._keys: set[int] = set()
        self._stage = 0
        self._space_codes: np.ndarray | None = None
        self.stages: list[dict[str, Any]] = [
            {"stage": 0, "n_queries": 0, "space_size": int(self.space.size()), "dropped": {}}
        ]

    # ------------------------------------------------------------------ bookkeeping
    def config(self) -> dict[str, Any]:
        keys = [
            "population_size",
            "initial_queries",
            "batch_size",
            "offspring_per_generation",
            "crossover_prob",
            "immigrant_frac",
            "surrogate",
            "kappa",
            "alpha",
            "n_members",
            "pool",
            "acquisition",
            "model",
            "n_trees",
            "shrinking",
            "shrink_at",
            "shrink_z",
            "shrink_min_count",
            "shrink_margin",
            "min_choices",
            "channel_scaling",
            "scaled_offspring",
        ]
        cfg = {k: getattr(self, k) for k in keys}
        cfg["shrink_at"] = list(self.shrink_at)
        return {**super().config(), **cfg}

    def info(self) -> dict[str, Any]:
        return {
            "stages": self.stages,
            "space": self.current_space.restriction(),
            "channel_scaled_picks": self.n_scaled_picked,
        }

    def _after_tell(self, records: Sequence[EvalRecord]) -> None:
        while len(self._codes) < len(self.history):
            arch = self.history[len(self._codes)].arch
            code = self.codec.encode([arch])[0]
            self._codes.append(code)
            self._keys.add(int(self.codec.keys(code[None, :])[0]))

    # ------------------------------------------------------------------ operators on codes
    def _random_codes(self, n: int) -> np.ndarray:
        cols = []
        for m in self._allowed:
            choices = np.flatnonzero(m)
            cols.append(choices[self.rng.integers(0, len(choices), n)])
        return np.stack(cols, axis=1) if cols else np.zeros((n, 0), dtype=np.int64)

    def _mutate(self, codes: np.ndarray, n_genes: np.ndarray) -> np.ndarray:
        out = codes.copy()
        n, g = out.shape
        for i in range(n):
            genes = self.rng.choice(g, size=int(min(n_genes[i], g)), replace=False)
            for j in genes:
                choices = np.flatnonzero(self._allowed[j])
                choices = choices[choices != out[i, j]]
                if len(choices):
                    out[i, j] = choices[self.rng.integers(len(choices))]
        return out

    def _offspring(self, parents: np.ndarray, n: int) -> np.ndarray:
        n_imm = round(n * self.immigrant_frac)
        n_breed = n - n_imm
        p = len(parents)
        # binary tournaments: parents are sorted best first, so the smaller index wins
        a = np.minimum(self.rng.integers(0, p, n_breed), self.rng.integers(0, p, n_breed))
        b = np.minimum(self.rng.integers(0, p, n_breed), self.rng.integers(0, p, n_breed))
        cross = self.rng.random(n_breed) < self.crossover_prob
        take_a = self.rng.random(parents[a].shape) < 0.5
        children = np.where(cross[:, None] & ~take_a, parents[b], parents[a])
        mutate_genes = np.where(
            cross, self.rng.integers(0, 2, n_breed), self.rng.integers(1, 3, n_breed)
        )
        to_mutate = mutate_genes > 0
        children[to_mutate] = self._mutate(children[to_mutate], mutate_genes[to_mutate])
        return np.concatenate([children, self._random_codes(n_imm)])

    def _fresh(self, codes: np.ndarray) -> np.ndarray:
        """Unique rows of ``codes`` (first occurrence order) in the space and not yet evaluated."""
        if len(codes) == 0:
            return codes
        codes = codes[self.codec.valid(codes, self.current_space)]
        keys = self.codec.keys(codes)
        _, first = np.unique(keys, return_index=True)
        first = np.sort(first)
        codes, keys = codes[first], keys[first]
        seen = np.fromiter(self._keys, dtype=np.int64, count=len(self._keys))
        return codes[~np.isin(keys, seen)]

    # ------------------------------------------------------------------ shrinking
    def _maybe_shrink(self) -> None:
        n = len(self.history)
        while (
            self.shrinking
            and self._stage < len(self.shrink_at)
            and n >= self.shrink_at[self._stage]
        ):
            self._stage += 1
            codes = np.stack(self._codes)
            acc = np.array([r.accuracy for r in self.history])
            lat = np.array([r.latency_ms for r in self.history])
            effects = estimate_effects(self.space, codes, acc, lat)
            drop = dominated_choices(
                self.current_space, effects, z=self.shrink_z, min_choices=self.min_choices
            )
            active = np.array([self.space.active_mask(r.arch.values) for r in self.history])
            evidence = front_dominated_choices(
                self.current_space,
                codes,
                active,
                acc,
                lat,
                min_count=self.shrink_min_count,
                margin=self.shrink_margin,
                min_choices=self.min_choices,
            )
            drop = merge_drops(self.current_space, drop, evidence, self.min_choices)
            size_before = int(self.current_space.size())
            self.current_space = shrink_space(self.current_space, drop)
            self._allowed = self.codec.allowed_mask(self.current_space)
            self._space_codes = None
            self.stages.append(
                {
                    "stage": self._stage,
                    "n_queries": n,
                    "space_size": int(self.current_space.size()),
                    "space_size_before": size_before,
                    "dropped": {k: [str(v) for v in vs] for k, vs in drop.items()},
                    "n_dropped": int(sum(len(vs) for vs in drop.values())),
                    **self._stage_quality(acc, lat),
                }
            )

    def _stage_quality(self, acc: np.ndarray, lat: np.ndarray) -> dict[str, Any]:
        """Front quality when a stage ends: evaluated front size and, with a budget, the best
        feasible accuracy (percent)."""
        F = np.column_stack([-acc, lat])
        out: dict[str, Any] = {"front_points": len(non_dominated_sort(F)[0])}
        if self.problem.budget_ms is not None:
            feas = acc[lat <= self.problem.budget_ms]
            out["best_feasible_accuracy"] = float(feas.max()) if len(feas) else None
        return out

    def _space_pool(self) -> np.ndarray | None:
        if self.pool == "offspring" or self.current_space.size() > 20_000:
            return None
        if self._space_codes is None:
            archs = list(self.current_space.enumerate())
            self._space_codes = self.codec.encode(archs)
        return self._space_codes

    # ------------------------------------------------------------------ ask
    def ask(self) -> list[Architecture]:
        self._maybe_shrink()
        if len(self.history) < self.initial_queries:
            want = self.initial_queries - len(self.history)
            cand = self._fresh(self._random_codes(max(4 * want, 64)))[:want]
            return self.codec.decode(cand)
        pop_idx = select_best(self.problem, self.history, self.population_size)
        parents = np.stack([self._codes[i] for i in pop_idx])
        space_pool = self._space_pool()
        n_off = self.offspring_per_generation
        if space_pool is not None:  # the whole space is scored anyway: fewer bred offspring
            n_off = min(n_off, 500)
        offspring = self._offspring(parents, n_off)
        if space_pool is not None:  # offspring first (the EA's proposals), then the rest
            offspring = np.concatenate([offspring, space_pool])
        pool = self._fresh(offspring)
        n_plain = len(pool)
        pool = self._with_scaled(pool)
        if len(pool) == 0:
            pool = self._fresh(self._random_codes(1000))
            if len(pool) == 0:
                return []
        if not self.surrogate or len(pool) <= self.batch_size:
            return self.codec.decode(pool[: self.batch_size])
        chosen = self._select(pool)
        self.n_scaled_picked += int(np.sum(chosen >= n_plain))
        return self.codec.decode(pool[chosen])

    # ------------------------------------------------------------------ channel scaling
    def _scaling_on(self) -> bool:
        return (
            self.channel_scaling
            and self._scaler.active
            and self.problem.mode in ("constraint", "weighted")
            and self.problem.budget_ms is not None
            and len(self.history) >= 2
        )

    def _with_scaled(self, pool: np.ndarray) -> np.ndarray:
        """``pool`` followed by the fresh channel-scaled copies of its first offspring."""
        if not self._scaling_on() or len(pool) == 0:
            return pool
        assert self.problem.budget_ms is not None
        hist = np.stack(self._codes)
        self._scaler.fit(
            hist,
            np.array([r.latency_ms for r in self.history]),
            np.array([r.accuracy for r in self.history]),
        )
        self._scaler.set_allowed(self._allowed)
        scaled = self._scaler.scale(pool[: self.scaled_offspring], self.problem.budget_ms)
        keys = set(self.codec.keys(pool).tolist())
        extra = self._fresh(scaled)
        extra = (
            extra[[k not in keys for k in self.codec.keys(extra).tolist()]] if len(extra) else extra
        )
        return np.concatenate([pool, extra]) if len(extra) else pool

    # ------------------------------------------------------------------ surrogate selection
    def _predict(self, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(accuracy mean, accuracy sd, latency mean) of the candidate codes ``pool``."""
        hist = np.stack(self._codes)
        acc = np.array([r.accuracy for r in self.history])
        lat = np.array([r.latency_ms for r in self.history])
        seed = int(self.rng.integers(2**31))
        return self.surrogates.predict(pool, hist, acc, lat, seed)

    @property
    def _lat_quantum(self) -> float:
        """Step in which the evaluated latencies are reported (ms; 0 if continuous)."""
        return latency_quantum(np.array([r.latency_ms for r in self.history]))

    def _p_feasible(self, lat_pred: np.ndarray, budget: float, quantum: float = 0.0) -> np.ndarray:
        """Probability that each candidate's latency is within ``budget`` (ms), from the latency
        model's residual distribution
        (:func:`~hsconas.search.surrogate.acquisition.feasible_probability`)."""
        return feasible_probability(lat_pred, budget, self.surrogates.lat_resid, quantum=quantum)

    def _select(self, pool: np.ndarray) -> np.ndarray:
        mu, sd, lat = self._predict(pool)
        n_exploit = self.batch_size
        ucb = mu + self.kappa * sd
        if self.problem.mode == "pareto" and self.acquisition == "hvi":
            chosen = self._select_hvi(ucb, lat, n_exploit)
        elif self.problem.mode in ("pareto", "constraint"):
            known = np.array([r.accuracy for r in self.history])
            scaled = on_error_log_scale(mu, sd, known)
            if self.problem.mode == "pareto":
                chosen = self._select_poi(*scaled, lat, n_exploit)
            else:
                chosen = self._select_constrained(*scaled, lat, n_exploit)
        else:
            score = self.problem.scalar_fitness(ucb, lat)
            chosen = [int(i) for i in np.argsort(-score, kind="stable")[:n_exploit]]
        return np.asarray(chosen, dtype=np.int64)

    def _select_constrained(
        self, mu: np.ndarray, sd: np.ndarray, known: np.ndarray, lat_pred: np.ndarray, k: int
    ) -> list[int]:
        """Greedy batch by probability of a feasible improvement: P(latency <= budget) x
        P(accuracy > best feasible so far), the picks joining the incumbent as fantasies
        (``known``: the evaluated accuracies, on the scale of ``mu``)."""
        assert self.problem.budget_ms is not None
        budget = self.problem.budget_ms
        p_feas = self._p_feasible(lat_pred, budget, self._lat_quantum)
        lat_known = np.array([r.latency_ms for r in self.history])
        feas = known[lat_known <= budget]
        best = float(feas.max()) if len(feas) else -np.inf
        return feasible_improvement_batch(mu, sd, lat_pred, p_feas, budget, best, k)

    def _select_poi(
        self, mu: np.ndarray, sd: np.ndarray, known: np.ndarray, lat_pred: np.ndarray, k: int
    ) -> list[int]:
        """Greedy batch by probability of being non-dominated by the evaluated points
        (:func:`~hsconas.search.surrogate.acquisition.non_dominated_batch`), the latency uncertainty being
        the latency model's residual noise (``known``: the evaluated accuracies, on the scale of
        ``mu``)."""
        return non_dominated_batch(
            mu,
            sd,
            lat_pred,
            self.surrogates.lat_sd,
            known,
            np.array([r.latency_ms for r in self.history]),
            k,
            lat_quantum=self._lat_quantum,
        )

    def _select_hvi(self, acc_pred: np.ndarray, lat_pred: np.ndarray, k: int) -> list[int]:
        acc = np.array([r.accuracy for r in self.history])
        lat = np.array([r.latency_ms for r in self.history])
        return hv_improvement_batch(acc_pred, lat_pred, acc, lat, k)
