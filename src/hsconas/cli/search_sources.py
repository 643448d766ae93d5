"""Where ``hsconas search`` gets accuracy and latency: the option checks, and the sources (tables,
saved models, a supernet, zero-cost proxies) assembled into one evaluator for the search."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hsconas.cli.output import check_output_dir, check_output_file
from hsconas.errors import DataFormatError, HsconasError
from hsconas.space import get_space

__all__ = ["Sources", "check_choice", "load_restrict", "search_sources", "within_coverage"]


def load_restrict(path: Path, space_name: str) -> dict[str, list[Any]]:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise HsconasError(f"--space-restrict file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("restrict"), dict):
        raise DataFormatError(f'{path}: expected {{"space": ..., "restrict": {{gene: [choices]}}}}')
    if doc.get("space", space_name) != space_name:
        raise DataFormatError(f"{path} restricts space {doc['space']!r}, not {space_name!r}")
    return dict(doc["restrict"])


@dataclass
class Sources:
    """The evaluator of a search and what the command reports about it."""

    evaluator: Any
    truth: Any  # TrueFront when both sources are tables (known optimum), else None
    device: str
    accuracy_label: str
    space: Any
    min_latency_ms: float | None  # fastest latency of the space when known (tables)


def check_choice(args: argparse.Namespace) -> None:
    """Option combinations that cannot work, and unwritable outputs, before anything is loaded."""
    get_space(args.space)  # an unknown space is named before anything else
    if args.out is not None:
        check_output_dir("--out", args.out)
    if args.store is not None:
        check_output_file("--store", args.store)
    if args.resume and args.store is None:
        raise HsconasError("--resume needs --store DB (and the same --run-id)")
    given = [
        f for f, v in (("--supernet", args.supernet), ("--accuracy-table", args.accuracy_table),
                       ("--accuracy-model", args.accuracy_model),
                       ("--accuracy", args.accuracy)) if v is not None
    ]  # fmt: skip
    if args.accuracy_model is not None and args.supernet is not None:
        given.remove("--supernet")  # the supernet's accuracy is then an input of the model
    if len(given) > 1:
        raise HsconasError(f"give one accuracy source, not both {given[0]} and {given[1]}")
    if args.latency_model is not None and args.latency_table is not None:
        raise HsconasError("give --latency-model or --latency-table for latency, not both")
    if args.supernet is not None and args.data is None:
        raise HsconasError(
            "--supernet needs --data SPEC (digits | mnist:PATH | cifar10:PATH | folder:PATH) "
            "to recalibrate batch norms and measure accuracy on"
        )
    if (
        args.supernet is None
        and args.accuracy is None
        and args.accuracy_model is None
        and args.data is not None
    ):
        raise HsconasError(
            "--data is only used with --supernet CHECKPOINT, --accuracy proxy:M or an "
            "--accuracy-model with proxy inputs"
        )
    if not given and args.space != "nb201":
        raise HsconasError(
            f"no accuracy source for space {args.space!r}: give --supernet CHECKPOINT --data SPEC, "
            "--accuracy-model MODEL.json or --accuracy proxy:ensemble --data SPEC (accuracy "
            "tables exist for nb201 only)"
        )
    if args.latency_model is None and args.latency_table is None and args.space != "nb201":
        raise HsconasError(
            f"no latency source for space {args.space!r}: give --latency-model MODEL.json or "
            "--latency-table CSV --device COLUMN"
        )
    if args.latency_model is None and args.device is None:
        raise HsconasError("--device COLUMN is required with a latency table")


def supernet_source(args: argparse.Namespace, space_name: str) -> Any:
    """Load the checkpoint and the data; the accuracy source of a supernet."""
    from hsconas.accuracy.checkpoint import CHECKPOINT_NAME, load_trained
    from hsconas.accuracy.evaluate import EvalBatches
    from hsconas.data.datasets import load_dataset
    from hsconas.evaluation import SupernetAccuracy
    from hsconas.latency.base import file_digest
    from hsconas.nn.supernet import Supernet

    model, ckpt = load_trained(args.supernet)
    if not isinstance(model, Supernet):
        raise HsconasError(f"{args.supernet} holds a standalone network, not a supernet")
    if model.space.name != space_name:
        raise HsconasError(
            f"{args.supernet} is a supernet of space {model.space.name!r}, not of --space "
            f"{space_name!r}"
        )
    # the validation split the supernet was trained without: same subset, fraction and seed
    info = dict(ckpt.get("extra", {}).get("data", {}))
    same = info.get("spec") == args.data
    subset = info.get("subset") if same else None
    val_fraction = float(info.get("val_fraction", 0.1)) if same else 0.1
    data_seed = int(info.get("seed", 0)) if same else 0
    data = load_dataset(
        args.data, subset=subset, val_fraction=val_fraction, seed=data_seed, progress=not args.json
    )
    batches = EvalBatches.from_dataset(data, split="val", calib_images=args.calib_images)
    path = args.supernet / CHECKPOINT_NAME if args.supernet.is_dir() else args.supernet
    settings = {
        "kind": "supernet",
        "checkpoint": path.name,
        "sha256": file_digest(path),
        "data": args.data,
        "subset": subset,
        "val_fraction": val_fraction,
        "data_seed": data_seed,
        "split": "val",
        "calib_images": args.calib_images,
    }
    return SupernetAccuracy(model, batches, settings=settings)


def search_sources(args: argparse.Namespace) -> Sources:
    import hsconas.spaces  # noqa: F401  (registers the spaces)
    from hsconas.data.tables import data_dir, load_latency_table, load_nb201_accuracy
    from hsconas.evaluation import (
        ModelLatency,
        TableAccuracy,
        TableLatency,
        TabularEvaluator,
        make_evaluator,
    )
    from hsconas.evaluation.factory import accuracy_model_source
    from hsconas.search.indicators import TrueFront
    from hsconas.space import get_space

    check_choice(args)
    full = get_space(args.space)
    lat_source: Any = None
    if args.latency_model is not None:  # cheap: check it before loading a checkpoint
        lat_source = ModelLatency.from_file(args.latency_model, space=full.name, device=args.device)
    space = full
    acc_source: Any = None
    if args.supernet is not None and args.accuracy_model is None:
        acc_source = supernet_source(args, full.name)
        space = acc_source.space  # a supernet trained on a subspace searches that subspace
    if args.space_restrict is not None:
        space = space.restrict(load_restrict(args.space_restrict, args.space))
    if acc_source is None and args.accuracy_model is not None:
        from hsconas.store import ResultStore

        acc_source = accuracy_model_source(
            args.accuracy_model,
            space=full.name,
            data=args.data,
            store=ResultStore(args.store) if args.store is not None else None,
            supernet=(lambda: supernet_source(args, full.name)) if args.supernet else None,
        )
        space = within_coverage(space, acc_source.covered, args.accuracy_model)
    if acc_source is None and args.accuracy is not None:
        from hsconas.evaluation.proxy import proxy_accuracy_source
        from hsconas.store import ResultStore

        store = ResultStore(args.store) if args.store is not None else None
        acc_source = proxy_accuracy_source(args.accuracy, space=space, data=args.data, store=store)
    if acc_source is None:
        acc_table = load_nb201_accuracy(
            args.accuracy_table or data_dir() / "nb201" / "accuracy.csv"
        )
        acc_source = TableAccuracy(acc_table, args.accuracy_column)
    min_ms = None
    if lat_source is None:
        lat_table = load_latency_table(
            args.latency_table or data_dir() / "nb201" / "latency_help.csv.gz",
            space=args.space,
            devices=[args.device],
        )
        lat_source = TableLatency(lat_table, args.device)
        column = lat_table.column(args.device)
        if space.is_restricted:
            column = column[[i for i, a in enumerate(lat_table.archs) if space.contains(a)]]
        min_ms = float(column.min())
    evaluator = make_evaluator(space, acc_source, lat_source)
    if isinstance(evaluator, TabularEvaluator):  # both tables: the known true front
        return Sources(
            evaluator,
            TrueFront.from_table(evaluator.accuracy, evaluator.latency_ms),
            args.device,
            args.accuracy_column,
            space,
            float(evaluator.latency_ms.min()),
        )
    device = args.device or lat_source.device
    label = "supernet" if args.supernet is not None else args.accuracy_column
    if args.accuracy_model is not None or args.accuracy is not None:
        label = acc_source.name
    return Sources(evaluator, None, device, label, space, min_ms)


def within_coverage(space: Any, covered: dict[str, list[Any]], path: Path) -> Any:
    """``space`` restricted to the gene values an accuracy model's table held (a table measured
    at resolution 224 says nothing about 160), with a note on stderr when that narrows it."""
    narrowed = {
        g: [c for c in space.gene(g).choices if c in values]
        for g, values in covered.items()
        if g in space.gene_names
    }
    for g, kept in narrowed.items():
        if not kept:
            raise HsconasError(
                f"{path}: the accuracy model knows {g} {covered[g]} only, none of which the "
                f"searched space allows"
            )
    changed = {g: v for g, v in narrowed.items() if len(v) < len(space.gene(g).choices)}
    if changed:
        shown = "; ".join(f"{g} in {v}" for g, v in changed.items())
        print(
            f"note: searching {shown} only: the accuracy model's table covers no other values",
            file=sys.stderr,
        )
        space = space.restrict(changed)
    return space
