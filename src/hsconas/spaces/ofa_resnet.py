"""Once-for-All ResNet50 space (``OFAResNets``): elastic stem, depth, expand ratio and width.

The macro network (``nn.builders.resnet`` builds it) is OFA's ResNet50-D style network:

- input stem of 3x3 convolutions: ``conv(3 -> s0, stride 2)``, an optional residual
  ``conv(s0 -> s0)`` (skipped when ``stem.depth`` is 0), ``conv(s0 -> s1)``; then a 3x3 max pool
  with stride 2. ``s1 = make_divisible(64 * stem.w1, 8)``, ``s0 = make_divisible(s1' // 2, 8)`` where
  ``s1'`` is the stem width at ``stem.w0`` (OFA's ``mid_input_channel``);
- 4 units of bottleneck blocks with base output widths 256/512/1024/2048 and strides 1/2/2/2; unit
  ``i`` has ``u{i}.depth`` blocks (2..4, 2..4, 4..6, 2..4), output width
  ``make_divisible(base * u{i}.width, 8)`` and per block a middle width
  ``make_divisible(round(out * u{i}.b{j}.expand), 8)``;
- global average pool and a linear classifier.

Genes (values, not indices): ``resolution`` (128..224 step 4), ``stem.depth`` {0, 2},
``stem.w0`` / ``stem.w1`` and ``u{i}.width`` in {0.65, 0.8, 1.0}, ``u{i}.depth``,
``u{i}.b{j}.expand`` in {0.2, 0.25, 0.35} (inactive past the unit's depth).

Canonical string::

    r224|stem:d2,w1.0,1.0|u1:w1.0,e0.25,0.25,0.25|u2:w1.0,e...|u3:...|u4:...

one ``e`` value per block, so a unit's depth is the length of its list.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from hsconas.errors import ArchitectureFormatError, InvalidArchitectureError
from hsconas.space.channels import make_divisible, parse_number
from hsconas.space.core import Architecture, Gene, SearchSpace, Value
from hsconas.space.registry import register_space

RESNET_BASE_WIDTHS: tuple[int, ...] = (256, 512, 1024, 2048)
RESNET_STRIDES: tuple[int, ...] = (1, 2, 2, 2)
RESNET_MIN_DEPTHS: tuple[int, ...] = (2, 2, 4, 2)
RESNET_MAX_DEPTHS: tuple[int, ...] = (4, 4, 6, 4)
RESNET_EXPANDS: tuple[float, ...] = (0.2, 0.25, 0.35)
RESNET_WIDTH_MULTS: tuple[float, ...] = (0.65, 0.8, 1.0)
RESNET_STEM_DEPTHS: tuple[int, ...] = (0, 2)
RESNET_RESOLUTIONS: tuple[int, ...] = tuple(range(128, 225, 4))
RESNET_STEM_BASE = 64


_STEM_RE = re.compile(r"^stem:d(\d+),w([0-9.]+),([0-9.]+)$")
_UNIT_RE = re.compile(r"^u(\d+):w([0-9.]+),e([0-9.,]+)$")


class OFAResNetSpace(SearchSpace):
    """The OFA ResNet50 space: elastic stem depth, unit depth, expand ratio and width."""

    def __init__(self, *, name: str = "ofa-resnet50", num_classes: int = 1000) -> None:
        self.name = name
        self.description = (
            "OFA ResNet50: stem depth {0,2}, unit depths 2-4/2-4/4-6/2-4, bottleneck expand "
            "{0.2,0.25,0.35}, width {0.65,0.8,1.0}, resolution 128..224"
        )
        self.num_classes = num_classes
        genes = [
            Gene("resolution", RESNET_RESOLUTIONS),
            Gene("stem.depth", RESNET_STEM_DEPTHS),
            Gene("stem.w0", RESNET_WIDTH_MULTS),
            Gene("stem.w1", RESNET_WIDTH_MULTS),
        ]
        for u, (lo, hi) in enumerate(zip(RESNET_MIN_DEPTHS, RESNET_MAX_DEPTHS, strict=True), 1):
            genes.append(Gene(f"u{u}.depth", tuple(range(lo, hi + 1))))
            genes.append(Gene(f"u{u}.width", RESNET_WIDTH_MULTS))
            genes.extend(Gene(f"u{u}.b{j}.expand", RESNET_EXPANDS) for j in range(1, hi + 1))
        self._init_genes(genes)

    # ------------------------------------------------------------------ structure
    def active_mask(self, values: Sequence[Value]) -> tuple[bool, ...]:
        """Block expand genes past their unit's depth are inactive."""
        mask = [True] * len(values)
        for u in range(1, len(RESNET_BASE_WIDTHS) + 1):
            depth = values[self._index[f"u{u}.depth"]]
            for j in range(1, RESNET_MAX_DEPTHS[u - 1] + 1):
                if isinstance(depth, int | float) and j > depth:
                    mask[self._index[f"u{u}.b{j}.expand"]] = False
        return tuple(mask)

    def size(self) -> int:
        """Distinct networks: stem and resolution choices times, per unit, widths x expand lists."""
        g = {gene.name: gene for gene in self.genes}
        total = len(g["resolution"].choices) * len(g["stem.depth"].choices)
        total *= len(g["stem.w0"].choices) * len(g["stem.w1"].choices)
        for u in range(1, len(RESNET_BASE_WIDTHS) + 1):
            per_depth = 0
            for d in g[f"u{u}.depth"].choices:
                per_depth += math.prod(
                    len(g[f"u{u}.b{j}.expand"].choices) for j in range(1, int(d) + 1)
                )
            total *= len(g[f"u{u}.width"].choices) * per_depth
        return total

    def input_shape(self, arch: Architecture) -> tuple[int, int, int]:
        """RGB images at the architecture's resolution."""
        r = int(arch.values[self._index["resolution"]])
        return (3, r, r)

    # ------------------------------------------------------------------ channel plan
    def stem_channels(self, arch: Architecture) -> tuple[int, int]:
        """(middle, output) channels of the input stem, as OFA computes them."""
        d = self.as_dict(arch)
        mid = make_divisible(make_divisible(RESNET_STEM_BASE * float(d["stem.w0"]), 8) // 2, 8)
        out = make_divisible(RESNET_STEM_BASE * float(d["stem.w1"]), 8)
        return mid, out

    def block_plan(self, arch: Architecture) -> list[tuple[int, int, int, int]]:
        """Per active bottleneck block: (in_channels, mid_channels, out_channels, stride)."""
        d = self.as_dict(arch)
        _, channels = self.stem_channels(arch)
        plan: list[tuple[int, int, int, int]] = []
        for u, (base, stride) in enumerate(zip(RESNET_BASE_WIDTHS, RESNET_STRIDES, strict=True), 1):
            out = make_divisible(base * float(d[f"u{u}.width"]), 8)
            for j in range(1, int(d[f"u{u}.depth"]) + 1):
                mid = make_divisible(round(out * float(d[f"u{u}.b{j}.expand"])), 8)
                plan.append((channels, mid, out, stride if j == 1 else 1))
                channels = out
        return plan

    def block_cover(self) -> list[Architecture]:
        """Architectures that together hold every distinct block of the (maybe restricted)
        space, at each allowed resolution: every (input width, output width, expand) of a
        unit's first bottleneck, every (width, expand) of its later ones, every stem (depth,
        w0, w1) and head width; 27 networks per resolution for the full space.

        A unit's first block takes the previous unit's width, so it has 3 x 3 x 3 variants,
        each in a random network with probability 1/27: a lookup table built by sampling
        alone misses some of them, and the networks it later meets fail
        (:func:`hsconas.latency.hsconas.lut.collect_blocks` decomposes these first). Built by
        alternating width indices ``p, q, p, q, ...`` along stem, u1..u4 over all ``(p, q)``,
        which gives every ordered pair of neighbouring widths, with one expand index ``r`` for
        every block (and the stem depth) at the units' deepest setting.
        """
        ch = {g.name: g.choices for g in self.genes}

        def pick(gene: str, i: int) -> Value:
            return ch[gene][i % len(ch[gene])]

        units = range(1, len(RESNET_BASE_WIDTHS) + 1)
        widths = ["stem.w1", *(f"u{u}.width" for u in units)]
        k = max(len(ch[g]) for g in [*widths, "stem.w0"])
        expands = [g for g in self.gene_names if g.endswith(".expand")]
        m = max(len(ch["stem.depth"]), *(len(ch[g]) for g in expands))
        out: dict[Architecture, None] = {}
        for res in ch["resolution"]:
            for p in range(k):
                for q in range(k):
                    for r in range(m):
                        v: dict[str, Value] = {
                            "resolution": res,
                            "stem.depth": pick("stem.depth", r),
                            "stem.w0": pick("stem.w0", q),
                        }
                        for i, g in enumerate(widths):
                            v[g] = pick(g, p if i % 2 == 0 else q)
                        for u in units:
                            depth = int(max(ch[f"u{u}.depth"]))
                            v[f"u{u}.depth"] = depth
                            for j in range(1, depth + 1):
                                v[f"u{u}.b{j}.expand"] = pick(f"u{u}.b{j}.expand", r)
                        out[self.make(v)] = None
        return list(out)

    # ------------------------------------------------------------------ codec
    def _format(self, values: tuple[Value, ...]) -> str:
        d = dict(zip(self.gene_names, values, strict=True))
        parts = [
            f"r{int(d['resolution'])}",
            f"stem:d{int(d['stem.depth'])},w{float(d['stem.w0'])},{float(d['stem.w1'])}",
        ]
        for u in range(1, len(RESNET_BASE_WIDTHS) + 1):
            depth = int(d[f"u{u}.depth"])
            es = ",".join(str(float(d[f"u{u}.b{j}.expand"])) for j in range(1, depth + 1))
            parts.append(f"u{u}:w{float(d[f'u{u}.width'])},e{es}")
        return "|".join(parts)

    def _parse(self, text: str) -> tuple[Value, ...]:
        expected = "r224|stem:d2,w1.0,1.0|u1:w1.0,e0.25,0.25|...|u4:w1.0,e0.25,0.25"
        parts = text.split("|")
        n_units = len(RESNET_BASE_WIDTHS)
        if len(parts) != 2 + n_units or not re.fullmatch(r"r\d+", parts[0]):
            raise ArchitectureFormatError(
                f"{self.name}: cannot parse {text!r}; expected {expected}", space=self.name
            )
        stem = _STEM_RE.match(parts[1])
        if stem is None:
            raise ArchitectureFormatError(
                f"{self.name}: bad stem part {parts[1]!r}; expected like 'stem:d2,w1.0,1.0'",
                space=self.name,
            )
        genes: dict[str, Value] = {
            "resolution": int(parts[0][1:]),
            "stem.depth": int(stem.group(1)),
            "stem.w0": parse_number(self.name, "stem.w0", stem.group(2)),
            "stem.w1": parse_number(self.name, "stem.w1", stem.group(3)),
        }
        for u, part in enumerate(parts[2:], 1):
            m = _UNIT_RE.match(part)
            if m is None or int(m.group(1)) != u:
                raise ArchitectureFormatError(
                    f"{self.name}: bad unit part {part!r}; expected like 'u{u}:w1.0,e0.25,0.25'",
                    space=self.name,
                )
            expands = [e for e in m.group(3).split(",") if e]
            depth_gene = self.full_genes[self._index[f"u{u}.depth"]]
            if len(expands) not in depth_gene.choices:
                raise InvalidArchitectureError.bad_choice(
                    self.name, depth_gene.name, len(expands), depth_gene.choices
                )
            genes[f"u{u}.depth"] = len(expands)
            genes[f"u{u}.width"] = parse_number(self.name, f"u{u}.width", m.group(2))
            for j, e in enumerate(expands, 1):
                genes[f"u{u}.b{j}.expand"] = parse_number(self.name, f"u{u}.b{j}.expand", e)
        return tuple(genes.get(g.name, g.default) for g in self.full_genes)


@register_space("ofa-resnet50")
def _ofa_resnet50() -> SearchSpace:
    return OFAResNetSpace()
