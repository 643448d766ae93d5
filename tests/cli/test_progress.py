"""Progress reporting: plain, throttled lines when stderr is a log; a rich bar on a terminal."""

from __future__ import annotations

import io
import re

import pytest

from hsconas.cli import progress as progress_mod
from hsconas.cli.progress import progress, track


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(progress_mod.time, "monotonic", fake)
    return fake


def test_log_gets_throttled_plain_lines(clock: _Clock) -> None:
    log = io.StringIO()
    with progress("latency profile nb201", stream=log, every_s=10) as update:
        update(0, 100, "measure")  # a new phase: a line
        for done in range(1, 100):
            clock.now += 1.0  # one item a second: a line every 10 s
            update(done, 100, "measure")
        clock.now += 1.0
        update(100, 100, "measure")  # finished: a line
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert 10 <= len(lines) <= 12, lines
    assert all("hsconas latency profile nb201: measure:" in line for line in lines)
    assert lines[-1].endswith("100/100 (100%), 1m40s elapsed")
    middle = next(line for line in lines if "50/100" in line)
    assert re.search(r"about 50s left$", middle), middle


def test_log_shows_where_work_stopped(clock: _Clock) -> None:
    log = io.StringIO()
    with pytest.raises(RuntimeError), progress("search", stream=log, every_s=60) as update:
        update(0, 10)
        clock.now += 5
        update(3, 10)
        raise RuntimeError("interrupted")
    assert (
        log.getvalue()
        .splitlines()[-1]
        .endswith("hsconas search: 3/10 (30%), 5s elapsed, about 12s left")
    )


def test_phases_each_announced(clock: _Clock) -> None:
    log = io.StringIO()
    with progress("profile", stream=log, every_s=1e9) as update:
        update(0, None, "collect")
        update(5, None, "collect")
        update(0, 3, "e2e")
    text = log.getvalue()
    assert "profile: collect: 0" in text and "profile: e2e: 0/3" in text
    assert "collect: 5" in text  # the last state of an unfinished phase is shown at exit


def test_track_yields_every_item(clock: _Clock) -> None:
    log = io.StringIO()
    assert list(track(range(7), "counting", stream=log)) == list(range(7))
    assert log.getvalue().splitlines()[-1].endswith("7/7 (100%), 0s elapsed")


def test_terminal_gets_a_rich_bar() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    with progress("search nb201", total=4, stream=term) as update:
        for i in range(5):
            update(i, 4)
    assert "search nb201" in term.getvalue() and "4/4" in term.getvalue()


def test_run_reporter_writes_progress_lines_in_a_log(
    clock: _Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    from hsconas.cli.run import PlainReporter

    for periodic, expected in ((True, 4), (False, 2)):
        rep = PlainReporter(periodic=periodic)
        rep.stage_start(1, 6, "hw_model", "profile the device")
        rep.stage_progress(0, 40, "measure blocks")
        clock.now += 30
        rep.stage_progress(20, 40, "measure blocks")
        rep.stage_end("hw_model", skipped=False, elapsed_s=30.0)
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == expected, lines
        assert lines[0].startswith("[1/6] hw_model") and "done in 30.0 s" in lines[-1]
    # periodic lines name the stage, the step and how far it is
    rep = PlainReporter(periodic=True)
    rep.stage_start(1, 6, "hw_model", "profile")
    rep.stage_progress(10, 40, "measure blocks")
    assert "hsconas run: hw_model: measure blocks: 10/40 (25%)" in capsys.readouterr().err
