"""Block and design-space profiling (after Mills et al., CIKM 2021). No torch here.

Specifications (:mod:`.specs`), measurement sources (:mod:`.sources`), the profiling method
(:mod:`.profile`), per-device friendliness (:mod:`.friendliness`), insights in words
(:mod:`.insights`) and per-device space reduction (:mod:`.reduce`).
"""

from hsconas.profiling.profile import (
    BlockProfile,
    ProfileError,
    Regression,
    fit_block_regression,
    load_profile,
    profile_blocks,
)
from hsconas.profiling.sources import (
    ArchPool,
    BackendSource,
    CallableAccuracy,
    ModelSource,
    SourceError,
    TableAccuracy,
    TableSource,
    draw_forced,
    draw_random,
    parse_source,
)
from hsconas.profiling.specs import BlockSpec, enumerate_specs, holds, parse_spec

__all__ = [
    "ArchPool",
    "BackendSource",
    "BlockProfile",
    "BlockSpec",
    "CallableAccuracy",
    "ModelSource",
    "ProfileError",
    "Regression",
    "SourceError",
    "TableAccuracy",
    "TableSource",
    "draw_forced",
    "draw_random",
    "enumerate_specs",
    "fit_block_regression",
    "holds",
    "load_profile",
    "parse_source",
    "parse_spec",
    "profile_blocks",
]
