"""Block specifications of a search space: which block is forced at which position.

A *specification* is a (gene, choice) pair of a space, e.g. ``("edge2<-1", "nor_conv_3x3")`` in
NB201 or ``("u3.l2.kernel", 7)`` in OFA-MobileNetV3. Its *position* is the index of the gene in the
space's gene order; the gene name is read as ``unit.layer.attribute`` where the space names genes
that way (``u3.l2.kernel`` -> unit ``u3``, layer ``l2``, block ``kernel=7``) and as a single layer
otherwise (NB201 edge ``edge2<-1``, block ``nor_conv_3x3``). No torch here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hsconas.errors import InvalidArchitectureError
from hsconas.space.core import Architecture, SearchSpace, Value, _same_value

__all__ = [
    "BlockSpec",
    "block_label",
    "enumerate_specs",
    "holds",
    "parse_spec",
]


def _split_gene(gene: str) -> tuple[str, str, str]:
    """(unit, layer, attribute) of a gene name; missing parts are empty strings."""
    parts = gene.split(".")
    if len(parts) >= 3:
        return parts[0], ".".join(parts[1:-1]), parts[-1]
    if len(parts) == 2:
        return parts[0], "", parts[1]
    return "", gene, ""


def block_label(gene: str, choice: Value) -> str:
    """The block name of a choice: ``kernel=7`` for attribute genes, the op name for op genes.

    A numeric choice of a gene without an attribute part is named after the gene
    (``resolution=224``).
    """
    attr = _split_gene(gene)[2]
    if attr:
        return f"{attr}={choice}"
    if isinstance(choice, int | float) and not isinstance(choice, bool):
        return f"{gene}={choice}"
    return str(choice)


@dataclass(frozen=True)
class BlockSpec:
    """One (unit, layer, block) specification: ``choice`` forced on ``gene``.

    Attributes:
        gene: gene (layer choice) name.
        choice: the forced value, one of the gene's choices.
        position: index of the gene in the space's gene order (0-based).
    """

    gene: str
    choice: Value
    position: int

    @property
    def unit(self) -> str:
        return _split_gene(self.gene)[0]

    @property
    def layer(self) -> str:
        unit, layer, _ = _split_gene(self.gene)
        return ".".join(p for p in (unit, layer) if p) or self.gene

    @property
    def block(self) -> str:
        """Block name independent of position (e.g. ``nor_conv_3x3`` or ``kernel=7``)."""
        return block_label(self.gene, self.choice)

    @property
    def key(self) -> str:
        """``gene=choice``: the specification's name in tables and files."""
        return f"{self.gene}={self.choice}"


def holds(space: SearchSpace, arch: Architecture, spec: BlockSpec) -> bool:
    """Whether ``arch`` has ``spec.choice`` on an *active* ``spec.gene``."""
    i = spec.position
    if not space.active_mask(arch.values)[i]:
        return False
    return _same_value(spec.choice, arch.values[i])


def _check_position(space: SearchSpace, position: int) -> None:
    n = len(space.genes)
    if not 0 <= position < n:
        raise InvalidArchitectureError(
            f"{space.name}: position {position} is out of range; positions are 0..{n - 1} "
            f"({space.genes[0].name} .. {space.genes[-1].name})",
            space=space.name,
        )


def _match_choice(space: SearchSpace, position: int, block: object) -> Value | None:
    gene = space.genes[position]
    for c in gene.choices:
        if _same_value(c, block) or str(c) == str(block) or block_label(gene.name, c) == block:
            return c
    return None


def enumerate_specs(
    space: SearchSpace,
    *,
    blocks: Iterable[object] | None = None,
    positions: Iterable[int | str] | None = None,
) -> list[BlockSpec]:
    """Every (gene, choice) specification of ``space`` (genes with one choice are skipped).

    Args:
        space: the (possibly restricted) space.
        blocks: keep only these blocks (choice values, their string form, or ``attr=value``).
        positions: keep only these genes, by index or by name.

    Raises:
        InvalidArchitectureError: a block that no selected gene offers, a position out of range,
            or an unknown gene name; the message lists what is allowed.
    """
    if positions is None:
        pos = list(range(len(space.genes)))
    else:
        pos = []
        for p in positions:
            if isinstance(p, str) and not p.lstrip("-").isdigit():
                if p not in space.gene_names:
                    raise InvalidArchitectureError(
                        f"{space.name}: unknown layer {p!r}; layers are "
                        f"{', '.join(space.gene_names)}",
                        space=space.name,
                        gene=p,
                    )
                pos.append(space.gene_names.index(p))
            else:
                idx = int(p)
                _check_position(space, idx)
                pos.append(idx)
    wanted = list(blocks) if blocks is not None else None
    specs: list[BlockSpec] = []
    for i in pos:
        gene = space.genes[i]
        if len(gene.choices) < 2:
            continue
        if wanted is None:
            chosen: Sequence[Value] = gene.choices
        else:
            chosen = [c for b in wanted if (c := _match_choice(space, i, b)) is not None]
        specs.extend(BlockSpec(gene.name, c, i) for c in chosen)
    if wanted is not None:
        for b in wanted:
            if not any(_match_choice(space, i, b) is not None for i in pos):
                offered = sorted(
                    {
                        block_label(space.genes[i].name, c)
                        for i in pos
                        for c in space.genes[i].choices
                    }
                )
                raise InvalidArchitectureError(
                    f"{space.name}: block {b!r} is not a choice of the selected layers; "
                    f"blocks are {', '.join(offered)}",
                    space=space.name,
                    value=b,
                    allowed=offered,
                )
    if not specs:
        raise InvalidArchitectureError(
            f"{space.name}: no block specification left (every selected layer has one choice)",
            space=space.name,
        )
    return specs


def parse_spec(space: SearchSpace, text: str) -> BlockSpec:
    """A specification from ``GENE=CHOICE`` or ``POSITION=CHOICE`` (e.g. ``3=nor_conv_3x3``).

    Raises:
        InvalidArchitectureError: malformed text, unknown gene, position out of range, or a choice
            the gene does not offer.
    """
    gene_text, sep, choice_text = text.rpartition("=")
    if not sep or not gene_text or not choice_text:
        raise InvalidArchitectureError(
            f"{space.name}: block specification {text!r} must look like GENE=CHOICE or "
            "POSITION=CHOICE",
            space=space.name,
        )
    spec = enumerate_specs(space, positions=[gene_text], blocks=None)
    i = spec[0].position
    c = _match_choice(space, i, choice_text)
    if c is None:
        raise InvalidArchitectureError.bad_choice(
            space.name, space.genes[i].name, choice_text, space.genes[i].choices
        )
    return BlockSpec(space.genes[i].name, c, i)
