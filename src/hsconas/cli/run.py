"""``hsconas run``: the whole pipeline on one device, resumable stage by stage."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from hsconas.cli.output import check_outputs
from hsconas.cli.progress import PLAIN_EVERY_S, PlainLines
from hsconas.pipeline.stages import STAGE_NAMES

_RAW = argparse.RawDescriptionHelpFormatter
_STAGES = STAGE_NAMES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` command."""
    p = subparsers.add_parser(
        "run",
        help="run the whole pipeline (profile, blocks, supernet, search, final, report)",
        description="Profile the device and fit the hardware model, profile blocks, train the "
        "supernet, search under the latency budget, measure and export the chosen network and "
        "write an HTML report. Each finished stage leaves a marker in the run folder; running "
        "the same command again resumes after the last finished stage (a stage whose config "
        "slice or inputs changed reruns, with every stage after it). Without --config the "
        "embedded demo configuration runs (this CPU, ONNX Runtime, hsconas-digits on digits).",
        epilog="examples:\n"
        "  hsconas run                               # the demo, into runs/demo\n"
        "  hsconas run --config configs/cifar10.yaml\n"
        "  hsconas run --config my.toml --rerun search   # redo the search and what follows\n"
        "  hsconas run --print-config > my.yaml          # start a config from the default",
        formatter_class=_RAW,
    )
    p.add_argument("--config", type=Path, help="YAML or TOML config (default: the embedded demo)")
    p.add_argument("--run-dir", help="override run_dir of the config")
    p.add_argument(
        "--rerun",
        action="append",
        default=[],
        choices=_STAGES,
        metavar="STAGE",
        help=f"rerun this stage (and those after it) even if fresh; one of {', '.join(_STAGES)}",
    )
    p.add_argument(
        "--print-config", action="store_true", help="print the full config as YAML and exit"
    )
    p.add_argument("--no-progress", action="store_true", help="plain log lines, no progress bars")
    p.set_defaults(func=cmd_run)


class RichReporter:
    """One rich progress display: the overall stage bar and the running stage's own bar."""

    def __init__(self, n_stages: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.overall = self.progress.add_task("stages", total=n_stages)
        self.task: Any = None
        self.name = ""

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def stage_start(self, index: int, total: int, name: str, title: str) -> None:
        self.name = name
        self.progress.update(self.overall, description=f"stage {index}/{total}: {name}")
        self.task = self.progress.add_task(f"  {name}: {title}", total=None)

    def stage_progress(self, done: float, total: float, what: str) -> None:
        if self.task is not None:
            self.progress.update(
                self.task, completed=done, total=max(total, 1), description=f"  {self.name}: {what}"
            )

    def stage_end(self, name: str, *, skipped: bool, elapsed_s: float) -> None:
        if self.task is not None:
            desc = f"  {name}: up to date (skipped)" if skipped else f"  {name}: done"
            self.progress.update(self.task, total=1, completed=1, description=desc)
        self.progress.advance(self.overall)
        self.task = None


class PlainReporter:
    """One line per stage on stderr, and with ``periodic`` a progress line every 10 s within a
    stage (output not a terminal: a log); ``--no-progress`` gives the stage lines only."""

    def __init__(self, *, periodic: bool = False) -> None:
        self.periodic = periodic
        self.lines: PlainLines | None = None

    def stage_start(self, index: int, total: int, name: str, title: str) -> None:
        print(f"[{index}/{total}] {name}: {title} ...", file=sys.stderr, flush=True)
        if self.periodic:
            self.lines = PlainLines(f"run: {name}", sys.stderr, PLAIN_EVERY_S)

    def stage_progress(self, done: float, total: float, what: str) -> None:
        if self.lines is not None:
            self.lines(int(done), int(total) if total else None, what)

    def stage_end(self, name: str, *, skipped: bool, elapsed_s: float) -> None:
        self.lines = None
        state = "up to date (skipped)" if skipped else f"done in {elapsed_s:.1f} s"
        print(f"      {name}: {state}", file=sys.stderr, flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    import dataclasses

    import yaml

    from hsconas.pipeline import config_to_dict, load_config, run_pipeline

    cfg = load_config(args.config)
    if args.run_dir:
        cfg = dataclasses.replace(cfg, run_dir=args.run_dir)
    if args.print_config:
        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
        return 0
    from hsconas.accuracy.devices import resolve_device

    check_outputs(dirs={"run_dir": Path(cfg.run_dir)})  # an unwritable folder fails now
    resolve_device(cfg.supernet.device)  # a missing GPU fails now, not after profiling
    if not cfg.device.backend.startswith("remote:"):
        from hsconas.hardware.backends import BackendUnavailableError, get_backend

        reason = get_backend(cfg.device.backend).unavailable_reason()
        if reason is not None:  # nor a measurement backend this machine cannot run
            raise BackendUnavailableError(
                f"config field 'device.backend' is {cfg.device.backend!r}, which cannot run "
                f"here: {reason}"
            )
    t0 = time.perf_counter()
    if args.no_progress or not sys.stderr.isatty():
        reporter = PlainReporter(periodic=not args.no_progress)
        outcomes = run_pipeline(cfg, reporter=reporter, force=args.rerun)
    else:
        with RichReporter(len(_STAGES)) as rep:
            outcomes = run_pipeline(cfg, reporter=rep, force=args.rerun)
    elapsed = time.perf_counter() - t0
    res = {o.name: o.result for o in outcomes}
    final, report = res["final"], res["report"]
    ran = [o.name for o in outcomes if o.ran]
    report_path = (cfg.run_path / report["report"]).resolve()
    scratch = final.get("scratch") or {}
    lines = [
        f"report: {report_path}",
        f"chosen network: {final['arch']}",
        f"  accuracy (test, inherited supernet weights): {final['accuracy_test_inherited']:.2f}%"
        + (f"; trained from scratch: {scratch['test_accuracy']:.2f}%" if scratch else ""),
        f"  measured latency: {final['measured_ms']:.4g} ms on {cfg.device.name} "
        f"({cfg.device.backend}); budget {final['budget_ms']:.4g} ms: "
        + ("within budget" if final["within_budget"] else "OVER BUDGET")
        + f"; model predicted {final['predicted_ms']:.4g} ms "
        f"({final['prediction_error_pct']:+.1f}%)",
        f"stages run: {', '.join(ran) if ran else 'none (all up to date)'}; {elapsed:.1f} s",
    ]
    print("\n".join(lines))
    return 0
