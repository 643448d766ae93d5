"""Progress of long commands on stderr: a rich bar in a terminal, plain periodic lines in a log.

Every command that can run longer than a few seconds reports through :func:`progress` (or
:func:`track` for a loop over items). On an interactive terminal it draws a rich progress bar; when
stderr is a file or a pipe (a log, CI, ``nohup``) it writes one plain line when a phase starts,
then at most one every ``every_s`` seconds, and one when the work is done, so a redirected log
shows that the command is alive and how far it is, without carriage-return clutter.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TextIO, TypeVar

T = TypeVar("T")

PLAIN_EVERY_S = 10.0
"""Seconds between two plain progress lines of the same phase."""


class Update(Protocol):
    """``update(done, total=None, phase=None)``: ``done`` of ``total`` items of ``phase``."""

    def __call__(self, done: int, total: int | None = None, phase: str | None = None) -> None: ...


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, s = divmod(seconds, 60)
    hours, m = divmod(minutes, 60)
    if hours:
        return f"{hours}h{m:02d}m"
    return f"{m}m{s:02d}s" if m else f"{s}s"


class PlainLines:
    """The non-terminal reporter: timestamped lines, throttled per phase (call it as ``update``)."""

    def __init__(self, description: str, stream: TextIO, every_s: float) -> None:
        self.description = description
        self.stream = stream
        self.every_s = every_s
        self.start = time.monotonic()
        self.phase: str | None = None
        self.phase_start = self.start
        self.last_line = -float("inf")
        self.last: tuple[int, int | None] | None = None
        self.printed: tuple[str | None, int, int | None] | None = None

    def __call__(self, done: int, total: int | None = None, phase: str | None = None) -> None:
        now = time.monotonic()
        new_phase = phase != self.phase
        if new_phase:
            self._flush(now)  # where the previous phase ended
            self.phase, self.phase_start = phase, now
        self.last = (done, total)
        finished = total is not None and done >= total
        if new_phase or finished or now - self.last_line >= self.every_s:
            self._line(now)

    def _line(self, now: float) -> None:
        assert self.last is not None
        done, total = self.last
        self.last_line, self.printed = now, (self.phase, done, total)
        what = self.description + (f": {self.phase}" if self.phase else "")
        text = f"{done}/{total}" if total else f"{done}"
        if total:
            text += f" ({100 * done / total:.0f}%)"
        text += f", {_duration(now - self.start)} elapsed"
        elapsed = now - self.phase_start
        if total and 0 < done < total and elapsed > 0:
            text += f", about {_duration(elapsed * (total - done) / done)} left"
        stamp = time.strftime("%H:%M:%S")
        print(f"[{stamp}] hsconas {what}: {text}", file=self.stream, flush=True)

    def _flush(self, now: float) -> None:
        if self.last is not None and self.printed != (self.phase, *self.last):
            self._line(now)

    def close(self) -> None:
        """Show the last state if it was not shown (where the work stopped)."""
        self._flush(time.monotonic())


@contextmanager
def progress(
    description: str,
    *,
    total: int | None = None,
    stream: TextIO | None = None,
    every_s: float = PLAIN_EVERY_S,
    transient: bool = False,
) -> Iterator[Update]:
    """Report the progress of a long piece of work; yields ``update(done, total=None, phase=None)``.

    Args:
        description: what is being done (``latency profile proxylessnas``).
        total: number of items when known; each ``update`` may give another.
        stream: where to report (default ``sys.stderr``).
        every_s: on a non-terminal stream, seconds between two lines of one phase.
        transient: on a terminal, remove the bar when done.
    """
    out = sys.stderr if stream is None else stream
    expected = total
    if not out.isatty():
        plain = PlainLines(description, out, every_s)
        try:
            yield plain
        finally:
            plain.close()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=out),
        transient=transient,
    ) as bar:
        tasks: dict[str | None, Any] = {}

        def update(done: int, total: int | None = None, phase: str | None = None) -> None:
            if phase not in tasks:
                label = description + (f": {phase}" if phase else "")
                tasks[phase] = bar.add_task(label, total=total or expected)
            bar.update(tasks[phase], completed=done, total=total or expected)

        yield update


def track(
    items: Iterable[T],
    description: str,
    *,
    total: int | None = None,
    stream: TextIO | None = None,
    every_s: float = PLAIN_EVERY_S,
) -> Iterator[T]:
    """Iterate over ``items`` while reporting progress (see :func:`progress`)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress(description, total=total, stream=stream, every_s=every_s) as update:
        update(0, total)
        for i, item in enumerate(items, 1):
            yield item
            update(i, total)


def callback(update: Update, phase: str | None = None) -> Callable[[int, int], None]:
    """``update`` as the ``(done, total)`` callback the library's long functions accept."""
    return lambda done, total: update(done, total, phase)
