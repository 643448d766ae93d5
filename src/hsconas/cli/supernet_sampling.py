"""The member-sampling options of ``hsconas supernet train`` (uniform, sandwich, fair,
in-place distillation) and their early check."""

from __future__ import annotations

import argparse


def add_sampling_options(p: argparse.ArgumentParser) -> None:
    """Add ``--sampling``, ``--num-random``, ``--distill`` and ``--distill-weight`` to ``p``."""
    p.add_argument(
        "--sampling",
        choices=("uniform", "sandwich", "fair"),
        default="uniform",
        help="members per step: uniform = one random member (default: the cheapest, one member's "
        "compute per step); sandwich = largest + smallest + --num-random random (2 + N members' "
        "compute per step; `hsconas run` defaults to sandwich, supernet.sampling, because its "
        "supernet's ranking steers the search); fair = FairNAS, as many members as the most "
        "choices of any layer, every choice of every layer once per step (nb201: 5 members' "
        "compute per step, hsconas*: 7; not for the elastic-depth spaces)",
    )
    p.add_argument(
        "--num-random",
        type=int,
        default=2,
        metavar="N",
        help="random members per sandwich step (default 2)",
    )
    p.add_argument(
        "--distill",
        action="store_true",
        help="in-place distillation (sandwich only; no extra compute per step): the largest "
        "member learns from the labels, the others from its predictions (default off)",
    )
    p.add_argument(
        "--distill-weight",
        type=float,
        default=1.0,
        metavar="W",
        help="with --distill, the others' loss is (1 - W) x label loss + W x KL to the largest "
        "member (default 1.0: pure distillation, as in BigNAS)",
    )


def check_sampling(space: str, sampling: str) -> None:
    """Refuse fair sampling of a space that cannot follow it, before any data is loaded.

    Raises:
        UnsupportedSamplingError: naming the spaces fair sampling supports.
    """
    if sampling == "fair":
        from hsconas.accuracy.sampling import check_fair
        from hsconas.space import get_space

        check_fair(get_space(space))
