"""``hsconas latency measure | profile | eval``: real latency on this machine and the HSCoNAS model."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hsconas.argtypes import positive_float
from hsconas.cli.latency_group import get_latency_subparsers
from hsconas.cli.output import check_outputs, positive_int, print_json_line, print_table
from hsconas.cli.progress import progress, track

_RAW = argparse.RawDescriptionHelpFormatter
_BACKEND_HELP = (
    "measurement backend: torch, onnxruntime, openvino, cuda, remote:http(s)://HOST:PORT (a "
    "device agent, `hsconas device serve`), or with --executor ray ray:RESOURCE:BACKEND (the Ray "
    "nodes started with the custom resource RESOURCE, timing with their local BACKEND, e.g. "
    "ray:device:pi5:onnxruntime). Repeat it with --executor ray to spread the measurements over "
    "several units of the SAME device model (e.g. two identical boards): their results form one "
    "model, and units whose CPUs or runtimes differ are refused (default: torch)"
)


def _reference_flag(p: argparse.ArgumentParser, *, default: bool) -> None:
    p.add_argument(
        "--reference",
        action=argparse.BooleanOptionalAction,
        default=default,
        help="pair every timed run with a run of the space's middle network and report "
        "target / reference x the reference's calibrated latency: cancels the machine's speed "
        "drift (1.6-5x smaller repeat spread on a 2-core VM) at about twice the measuring time "
        f"(default: {'on' if default else 'off'})",
    )


def _executor_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="local: measure here, one network at a time on one backend (default); ray: spread "
        "the measurements over the --backend units through Ray (one actor per agent or node, "
        "each timing one network at a time), every result stored as it arrives "
        "(needs pip install hsconas[ray])",
    )
    p.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="with --executor ray: the Ray cluster to join, HOST:6379 (default: $RAY_ADDRESS, "
        "else a new local Ray instance on this machine)",
    )


def _common(p: argparse.ArgumentParser, *, backend: bool = True) -> None:
    if backend:
        p.add_argument("--backend", action="append", metavar="B", help=_BACKEND_HELP)
        p.add_argument(
            "--threads", type=positive_int, default=1, metavar="T", help="intra-op threads (1)"
        )
        p.add_argument(
            "--clock",
            default="wall",
            choices=["wall", "thread_cpu"],
            help="wall: elapsed time (default); thread_cpu (with --threads 1): CPU time of the "
            "measuring thread, which ignores time lost to other processes on a shared machine",
        )
        p.add_argument(
            "--token-file",
            type=Path,
            metavar="FILE",
            help="remote backends: file holding the agent's token (default: $HSCONAS_DEVICE_TOKEN)",
        )
    p.add_argument(
        "--max-time",
        type=positive_float,
        default=1.5,
        metavar="S",
        help="cap on the timed runs of one network, seconds (1.5)",
    )
    p.add_argument(
        "--device",
        default="local-cpu",
        metavar="NAME",
        help="device name results are filed under (local-cpu)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``measure``, ``profile`` and ``eval`` to the ``latency`` command group."""
    sub = get_latency_subparsers(subparsers)

    p = sub.add_parser(
        "measure",
        help="measure end-to-end latency of architectures on this machine",
        description="Build each architecture and time it (batch 1): warm-up, then runs until the "
        "95% confidence interval of the median is within 1% of it or --max-time is reached. "
        "Results that did not reach that precision are marked unstable.",
        epilog="examples:\n  hsconas latency measure 'ofa-mbv3:r160|k3e4-k5e6|k3e3-k3e3|"
        "k5e4-k3e3|k7e6-k5e3|k3e6-k5e4' --backend onnxruntime --threads 1\n"
        "  hsconas spaces sample proxylessnas -n 3 --json > a.jsonl && "
        "hsconas latency measure a.jsonl --json\n"
        "output: name, backend, median ms, spread ms (half the IQR), spread %, runs, stable.",
        formatter_class=_RAW,
    )
    p.add_argument("source", metavar="SOURCE", help="SPACE:ARCH_STRING or an architecture file")
    _common(p)
    _executor_options(p)
    _reference_flag(p, default=False)
    p.add_argument("--store", type=Path, metavar="DB", help="results store to reuse and fill")
    p.add_argument("--json", action="store_true", help="JSON Lines output")
    p.set_defaults(func=cmd_measure)

    p = sub.add_parser(
        "profile",
        help="build the block LUT of a space and fit the HSCoNAS latency model",
        description="Collect the distinct blocks of SPACE at --resolution, time each block in "
        "isolation (the lookup table), time --samples sampled networks end to end, and fit the "
        "HSCoNAS model (LUT sum + learned correction). Every measurement goes into the store as "
        "it is made, so an interrupted profile resumes where it stopped.",
        epilog="examples:\n  hsconas latency profile ofa-mbv3 --backend torch --resolution 160 "
        "--out cpu_ofa.json\n  hsconas latency profile proxylessnas --backend onnxruntime "
        "--samples 30 --store lat.db --out cpu_proxyless_ort.json",
        formatter_class=_RAW,
    )
    p.add_argument("space", metavar="SPACE", help="search space name")
    _common(p)
    _executor_options(p)
    _reference_flag(p, default=True)
    p.add_argument("--resolution", type=positive_int, metavar="R", help="input size, pixels")
    p.add_argument(
        "--samples", type=positive_int, default=30, metavar="N", help="e2e networks (30)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of block collection and samples")
    p.add_argument("--store", type=Path, metavar="DB", help="results store (default: user store)")
    p.add_argument("--out", type=Path, required=True, metavar="MODEL.json", help="model file")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser(
        "eval",
        help="evaluate a latency model on freshly measured held-out architectures",
        description="Sample --n architectures of the model's space (seeded, at the model's "
        "resolution), measure them on the model's backend and settings, and compare with the "
        "model and the plain LUT sum: RMSE, MAPE, share within 5% / 10%, Kendall, Spearman.",
        epilog="examples:\n  hsconas latency eval cpu_ofa.json --n 100 --plot ofa_eval.png",
        formatter_class=_RAW,
    )
    p.add_argument("model", type=Path, metavar="MODEL", help="model file from `latency profile`")
    _common(p, backend=False)
    p.add_argument(
        "--backend",
        metavar="B",
        help="a model profiled through a device agent: remote:http(s)://HOST:PORT of the agent "
        "(default: the model's own backend)",
    )
    p.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="remote backends: file holding the agent's token (default: $HSCONAS_DEVICE_TOKEN)",
    )
    p.add_argument("--n", type=positive_int, default=100, help="held-out networks (100)")
    p.add_argument("--seed", type=int, default=12345, help="seed of the held-out sample")
    p.add_argument("--store", type=Path, metavar="DB", help="results store to reuse and fill")
    p.add_argument("--plot", type=Path, metavar="OUT.png", help="predicted-vs-measured plot")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_eval)


def _timing(args: argparse.Namespace) -> Any:
    from hsconas.hardware.timing import TimingConfig

    return TimingConfig(max_time_s=args.max_time)


def _use_token(args: argparse.Namespace) -> str | None:
    """A remote backend's token from --token-file (checked before any work); the token."""
    names = args.backend if isinstance(args.backend, list) else [args.backend]
    if any(n.startswith("remote:") for n in names):
        from hsconas.hardware.remote import resolve_token, use_token_file

        use_token_file(args.token_file)
        return resolve_token()
    return None


def _backends(args: argparse.Namespace) -> list[str]:
    """The --backend values (default torch); several or ray:... only with --executor ray."""
    from hsconas.hardware.fanout import FanoutError
    from hsconas.hardware.fanout_ray import import_ray, parse_worker

    args.backend = args.backend or ["torch"]
    if args.executor == "ray":
        for name in args.backend:
            parse_worker(name)  # before Ray starts
        import_ray()  # not installed: one line naming the extra, before any work
    elif len(args.backend) > 1 or args.backend[0].startswith("ray:"):
        what = f"{len(args.backend)} --backend" if len(args.backend) > 1 else args.backend[0]
        raise FanoutError(f"{what}: spreading measurements over devices needs --executor ray")
    return list(args.backend)


@contextmanager
def _executor(
    args: argparse.Namespace, token: str | None, reference: tuple[str, int | None] | None
) -> Iterator[Any]:
    """The --executor over the --backend units (within a Ray session for ``ray``)."""
    from hsconas.hardware.backends import BackendUnavailableError
    from hsconas.hardware.fanout import make_executor
    from hsconas.hardware.fanout_ray import ray_session

    names = list(args.backend)
    if args.executor == "local":
        ex = make_executor(
            "local", names, threads=args.threads, clock=args.clock, reference=reference
        )
        reason = ex.backend.unavailable_reason()  # type: ignore[attr-defined]
        if reason is not None:
            raise BackendUnavailableError(f"backend {ex.name!r} is unavailable: {reason}")
        yield ex
        return
    with (
        ray_session(args.ray_address),
        make_executor(
            "ray", names, threads=args.threads, clock=args.clock, reference=reference, token=token
        ) as ex,
    ):
        yield ex


def cmd_measure(args: argparse.Namespace) -> int:
    check_outputs(files={"--store": args.store})
    from hsconas.hardware.fanout import MeasureJob
    from hsconas.spaces.resolve import arch_input_shape, resolve_source
    from hsconas.store import ResultStore

    _backends(args)
    token = _use_token(args)
    store = ResultStore(args.store) if args.store else None
    sources = list(resolve_source(args.source))
    # one reference per (space, resolution): the space's middle network at that size
    groups: dict[tuple[str, int] | None, list[int]] = {}
    for i, src in enumerate(sources):
        ref_key = (src.arch.space, arch_input_shape(src.arch, src.image_size)[1])
        groups.setdefault(ref_key if args.reference else None, []).append(i)
    if not groups:
        groups[None] = []
    measured: dict[int, Any] = {}
    backend_name = ""
    for group, idx in groups.items():
        with _executor(args, token, group) as ex:
            backend_name = ex.name
            jobs = [MeasureJob(sources[i].arch, image_size=sources[i].image_size) for i in idx]
            ms = ex.measure(jobs, timing=_timing(args), store=store, device=args.device)
            measured.update(zip(idx, ms, strict=True))
    rows = []
    for i, src in enumerate(sources):
        m = measured[i]
        doc = {
            "name": src.name,
            "backend": backend_name,
            "threads": args.threads,
            "clock": args.clock,
            "reference": bool(args.reference),
            "median_ms": round(m.median_ms, 4),
            "spread_ms": round(m.spread_ms, 4),
            "spread_pct": round(100 * m.spread_ms / m.median_ms, 2),
            "n_runs": m.n_runs,
            "stable": m.stable,
        }
        if args.json:
            print_json_line({**doc, "device": args.device, "fingerprint": m.fingerprint})
        else:
            rows.append([doc[k] for k in doc])
    if not args.json:
        print_table(
            [
                "name",
                "backend",
                "threads",
                "clock",
                "reference",
                "median ms",
                "spread ms",
                "spread %",
                "runs",
                "stable",
            ],
            rows,
            align_right=[False, False, True, False, False, True, True, True, True, False],
        )
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    check_outputs(files={"--out": args.out, "--store": args.store})
    from hsconas.latency.hsconas.profile import profile_device
    from hsconas.space import get_space
    from hsconas.store import ResultStore

    get_space(args.space)  # unknown space: clear error before any work
    _backends(args)
    token = _use_token(args)
    store = ResultStore(args.store)
    reference = (args.space, args.resolution) if args.reference else None
    with _executor(args, token, reference) as be:
        units = f" ({len(args.backend)} units)" if len(args.backend) > 1 else ""
        with progress(f"latency profile {args.space} on {be.name}{units}") as update:
            result = profile_device(
                args.space, be, resolution=args.resolution, n_e2e=args.samples, seed=args.seed,
                store=store, device=args.device, timing=_timing(args),
                progress=lambda phase, done, total: update(done, total, phase),
            )  # fmt: skip
    path = result.model.save(args.out)
    fit = result.model.info["fit"]
    print(
        f"{path}: {args.space} on {be.name} (threads {args.threads}, device {args.device}); "
        f"LUT {result.n_blocks} blocks, {len(result.train_archs)} e2e networks; leave-one-out "
        f"MAPE {fit['loo_mape_pct']:.2f}% (plain LUT sum {fit['lut_sum_mape_pct']:.2f}%); "
        f"time: blocks {result.collect_s + result.lut_s:.0f} s, e2e {result.e2e_s:.0f} s"
    )
    from hsconas.latency.metrics import quality_warning

    warning = quality_warning(
        fit["loo_within_10pct"], None, len(result.train_archs),
        held_out="networks (leave-one-out)", spread_pct=fit["loo_rms_pct"],
    )  # fmt: skip
    if warning:
        print(f"hsconas: warning: {warning}", file=sys.stderr)
    return 0


def _check_machine(model: Any) -> None:
    from hsconas.hardware.fingerprint import cpu_model
    from hsconas.latency.base import IncompatibleModelError

    fp = model.info.get("fingerprint") or {}
    theirs = fp.get("cpu_model")
    if model.backend != "cuda" and theirs and theirs != cpu_model():
        raise IncompatibleModelError(
            f"this latency model was profiled on CPU {theirs!r}, but this machine has "
            f"{cpu_model()!r}; profile this machine with `hsconas latency profile`"
        )


def _eval_backend(model: Any, asked: str | None) -> str:
    """The backend that evaluates ``model``: its own, or the agent named for a remote model."""
    from hsconas.latency.base import IncompatibleModelError

    own = str(model.backend)
    if own == "remote":
        if asked is None or not asked.startswith("remote:"):
            raise IncompatibleModelError(
                "this latency model was profiled through a device agent; name the agent with "
                "--backend remote:http(s)://HOST:PORT"
            )
        return asked
    if asked is not None and asked != own:
        raise IncompatibleModelError(
            f"this latency model was profiled on backend {own!r}; evaluate it on the same backend "
            "(leave out --backend)"
        )
    return own


def _check_agent(model: Any, agent_fp: dict[str, Any]) -> None:
    from hsconas.latency.base import IncompatibleModelError

    theirs = (model.info.get("fingerprint") or {}).get("cpu_model")
    if theirs and agent_fp.get("cpu_model") != theirs:
        raise IncompatibleModelError(
            f"this latency model was profiled on CPU {theirs!r}, but the agent at "
            f"{agent_fp.get('remote')} runs on {agent_fp.get('cpu_model')!r}"
        )


def cmd_eval(args: argparse.Namespace) -> int:
    check_outputs(files={"--store": args.store, "--plot": args.plot})
    import numpy as np

    from hsconas.hardware.backends import get_backend
    from hsconas.hardware.measure import measure_network
    from hsconas.latency.hsconas.model import HSCoNASModel
    from hsconas.latency.hsconas.profile import model_reference, sample_archs
    from hsconas.latency.metrics import evaluate
    from hsconas.store import ResultStore

    model = HSCoNASModel.load(args.model)
    model.check_compatible(device=args.device)
    name = _eval_backend(model, args.backend)
    if name.startswith("remote:"):
        args.backend = name
        _use_token(args)
    else:
        _check_machine(model)
    be = get_backend(
        name,
        threads=model.lut.settings.get("threads"),
        clock=model.lut.settings.get("clock", "wall"),
        reference=model_reference(model),
    )
    if name.startswith("remote:"):
        _check_agent(model, be.device_fingerprint())
    store = ResultStore(args.store) if args.store else None
    archs = sample_archs(model.space, args.n, resolution=model.lut.resolution, seed=args.seed)
    measured = []
    for a in track(archs, f"latency eval {model.space} on {be.name}: measuring"):
        m = measure_network(a, be, store=store, device=args.device, timing=_timing(args))
        measured.append(m.median_ms)
    preds = {
        "HSCoNAS": model.predict_ms(archs),
        "LUT sum": np.array([model.lut_sum(a) for a in archs]),
    }
    metrics = {name: evaluate(p, measured) for name, p in preds.items()}
    from hsconas.latency.metrics import quality_warning

    hs = metrics["HSCoNAS"]
    warning = quality_warning(hs.within_10pct, hs.kendall, hs.n, spread_pct=hs.mape_pct)
    if warning:
        print(f"hsconas: warning: {warning}", file=sys.stderr)
    if args.plot:
        from hsconas.report.latency_plots import plot_predicted_vs_measured

        plot_predicted_vs_measured(
            measured, preds, args.plot, title=f"{model.space} on {be.name} ({args.device})"
        )
    if args.json:
        from hsconas.cli.output import print_json

        print_json(
            {
                "model": str(args.model),
                "space": model.space,
                "backend": be.name,
                "n": len(archs),
                "metrics": {k: v.as_dict() for k, v in metrics.items()},
                "warning": warning,
            }
        )
        return 0
    print_table(
        ["model", "n", "within 10%", "within 5%", "Kendall", "Spearman", "RMSE ms", "MAPE %"],
        [
            [
                name,
                mt.n,
                f"{100 * mt.within_10pct:.1f}%",
                f"{100 * mt.within_5pct:.1f}%",
                f"{mt.kendall:.3f}",
                f"{mt.spearman:.3f}",
                f"{mt.rmse_ms:.3f}",
                f"{mt.mape_pct:.2f}",
            ]
            for name, mt in metrics.items()
        ],
        title=f"{model.space} on {be.name}: {len(archs)} held-out networks",
        align_right=[False, True, True, True, True, True, True, True],
    )
    return 0
