"""Block and design-space profiling (after Mills et al., CIKM 2021). No torch here.

Specifications (:mod:`.specs`), forced draws (:mod:`.draws`; the sources they are measured on are
:mod:`hsconas.evaluation`'s), the profiling method
(:mod:`.profile`), per-device friendliness (:mod:`.friendliness`), insights in words
(:mod:`.insights`) and per-device space reduction (:mod:`.reduce`).
"""

from hsconas.profiling.draws import draw_forced, draw_random
from hsconas.profiling.profile import (
    BlockProfile,
    ProfileError,
    Regression,
    fit_block_regression,
    load_profile,
    profile_blocks,
)
from hsconas.profiling.specs import BlockSpec, enumerate_specs, holds, parse_spec

__all__ = [
    "BlockProfile",
    "BlockSpec",
    "ProfileError",
    "Regression",
    "draw_forced",
    "draw_random",
    "enumerate_specs",
    "fit_block_regression",
    "holds",
    "load_profile",
    "parse_spec",
    "profile_blocks",
]
