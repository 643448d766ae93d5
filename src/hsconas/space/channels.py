"""Torch-free helpers shared by the space definitions: channel rounding and number parsing."""

from __future__ import annotations

from hsconas.errors import ArchitectureFormatError


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` without losing more than 10%.

    This is the channel rounding of MobileNetV2/V3 and Once-for-All: ``make_divisible(19.2) == 24``
    (16 would drop more than 10% of 19.2), ``make_divisible(134.4) == 136``.

    Args:
        value: the unrounded channel count.
        divisor: the multiple to round to.
        min_value: the smallest result allowed; defaults to ``divisor``.
    """
    if divisor <= 0:
        raise ValueError(f"divisor must be positive, got {divisor}")
    floor = divisor if min_value is None else min_value
    new_value = max(floor, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return int(new_value)


def parse_number(space: str, gene: str, text: str) -> float:
    """``text`` as a float, or an :class:`ArchitectureFormatError` naming the space and gene."""
    try:
        return float(text)
    except ValueError:
        raise ArchitectureFormatError(
            f"{space}: layer {gene!r} has {text!r}, which is not a number", space=space, gene=gene
        ) from None
