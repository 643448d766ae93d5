"""Exceptions raised by hsconas.

Every error a user can cause derives from :class:`HsconasError`; the CLI turns these into a
one-line message and exit code 2. Messages say what was wrong and how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence


class HsconasError(Exception):
    """Base class of every user-facing hsconas error."""


class UnknownSpaceError(HsconasError, KeyError):
    """A search space name that is not registered."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown search space {self.name!r}; choose one of: {', '.join(self.known)}"


class InvalidArchitectureError(HsconasError, ValueError):
    """An architecture that is not a member of its search space.

    Attributes:
        space: name of the search space.
        gene: name of the offending gene (layer choice), or ``None`` for structural errors.
        value: the offending value.
        allowed: the values the gene accepts.
    """

    def __init__(
        self,
        message: str,
        *,
        space: str,
        gene: str | None = None,
        value: object = None,
        allowed: Sequence[object] = (),
    ) -> None:
        self.space = space
        self.gene = gene
        self.value = value
        self.allowed = tuple(allowed)
        super().__init__(message)

    @classmethod
    def bad_choice(
        cls, space: str, gene: str, value: object, allowed: Sequence[object]
    ) -> InvalidArchitectureError:
        """The error for a gene whose value is not one of its choices."""
        shown = ", ".join(str(a) for a in allowed)
        return cls(
            f"{space}: layer {gene!r} has {value!r}, which is not a choice; allowed: {shown}",
            space=space,
            gene=gene,
            value=value,
            allowed=allowed,
        )


class ArchitectureFormatError(InvalidArchitectureError):
    """A string or JSON document that cannot be parsed as an architecture of the space."""


class ConfigImportError(HsconasError, ValueError):
    """A published network configuration that cannot be mapped onto a search space."""


class DataNotFoundError(HsconasError, FileNotFoundError):
    """A dataset or table file that is missing; the message names the expected path."""


class DataFormatError(HsconasError, ValueError):
    """A dataset or table file that exists but does not have the expected format."""


class CheckpointError(HsconasError):
    """A checkpoint or weight file that is unreadable, or does not match the requested run."""


class UnsupportedSamplingError(HsconasError, ValueError):
    """A supernet training rule that the space or its supernet cannot follow (fair sampling on a
    space with elastic depth, in-place distillation without the sandwich rule)."""
