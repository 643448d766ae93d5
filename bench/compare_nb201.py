"""Paired comparison of NB201 search benchmark results (reads result CSVs; runs no search).

For the runs of one algorithm in a results file of ``search_nb201.py`` (the candidate), prints
and writes:

- Pareto mode, at each query count: mean front share / HV ratio per dataset and overall, the runs
  and devices that reach the targets (HV ratio >= 0.995, front share >= 50%) and the worst runs;
- against the baselines of another results file (the same device, dataset, seed and query count):
  their means, and the runs in which the candidate is at least as good as the best of them;
- against a reference (the same algorithm under earlier defaults): paired means, runs better /
  worse, and the Wilcoxon signed-rank p-value of the differences;
- constraint mode: the runs that found the true best under the budget, per percentile and device.

Usage:
    python bench/compare_nb201.py all-devices-10seeds-current \\
        --baselines all-devices-10seeds --reference all-devices-10seeds-b4w01 phones-10seeds-quantum

A file is named by its path or by the suffix of ``results/search_nb201_<machine>_<software>_<suffix>
.csv``. With several reference files, a later file's rows replace the earlier ones' of the same run.
Writes ``results/compare_nb201_<candidate suffix>.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

RESULTS = Path(__file__).resolve().parent / "results"
RUN = ["device", "dataset", "seed", "queries"]
BASELINES = ("random", "re", "nsga2")
HV_TARGET, SHARE_TARGET = 0.995, 0.5


def results_file(name: str) -> Path:
    """The results CSV named by a path or by its suffix."""
    path = Path(name)
    if path.suffix == ".csv" and path.exists():
        return path
    found = sorted(RESULTS.glob(f"search_nb201_*_{name}.csv"))
    if len(found) != 1:
        raise SystemExit(
            f"{name}: expected one results file search_nb201_*_{name}.csv in {RESULTS}, "
            f"found {len(found)}"
        )
    return found[0]


def read(names: list[str]) -> pd.DataFrame:
    """Every row of the files, in order."""
    return pd.concat([pd.read_csv(results_file(n)) for n in names], ignore_index=True)


def pareto_rows(rows: pd.DataFrame, algorithm: str | None = None) -> pd.DataFrame:
    """The Pareto rows (of one algorithm if given); a later row replaces an earlier one of the
    same run."""
    rows = rows[rows["kind"] == "pareto"]
    if algorithm is not None:
        rows = rows[rows["algorithm"] == algorithm]
    return rows.drop_duplicates(subset=[*RUN, "algorithm"], keep="last")


def _mean(rows: pd.DataFrame) -> str:
    return f"{rows['front_share'].mean():.1%} / {rows['hv_ratio'].mean():.4f}"


def pareto_lines(cand: pd.DataFrame, label: str) -> list[str]:
    lines = [
        f"## Pareto mode: {label}, mean front share / HV ratio",
        "",
        "| queries | " + " | ".join(sorted(cand["dataset"].unique()))
        + " | all | runs >= 0.995 HV | devices >= 0.995 HV (mean) | devices >= 50% share |",
        "|---|" + "---|" * (cand["dataset"].nunique() + 4),
    ]  # fmt: skip
    for q, at_q in cand.groupby("queries"):
        per_ds = [_mean(g) for _, g in at_q.groupby("dataset")]
        dev = at_q.groupby("device")[["front_share", "hv_ratio"]].mean()
        lines.append(
            f"| {q} | " + " | ".join(per_ds) + f" | **{_mean(at_q)}** | "
            f"{int((at_q['hv_ratio'] >= HV_TARGET).sum())} / {len(at_q)} | "
            f"{int((dev['hv_ratio'] >= HV_TARGET).sum())} / {len(dev)} | "
            f"{int((dev['front_share'] >= SHARE_TARGET).sum())} / {len(dev)} |"
        )
    top = cand[cand["queries"] == cand["queries"].max()]
    worst = top.nsmallest(6, "hv_ratio")
    lines += [
        "",
        f"Worst runs at {top['queries'].max()} queries (device, dataset, seed: front share / HV): "
        + "; ".join(
            f"{r.device} {r.dataset} {r.seed}: {r.front_share:.1%} / {r.hv_ratio:.4f}"
            for r in worst.itertuples()
        )
        + ".",
        "",
    ]
    return lines


def baseline_lines(cand: pd.DataFrame, base: pd.DataFrame) -> list[str]:
    base = base[base["algorithm"].isin(BASELINES)].merge(cand[RUN].drop_duplicates(), on=RUN)
    if base.empty:
        return []
    wide = base.pivot_table(index=RUN, columns="algorithm", values=["front_share", "hv_ratio"])
    best = pd.DataFrame(
        {
            "best_share": wide["front_share"].max(axis=1),
            "best_hv": wide["hv_ratio"].max(axis=1),
        }
    ).reset_index()
    paired = cand.merge(best, on=RUN)
    algos = [a for a in BASELINES if a in set(base["algorithm"])]
    lines = [
        "## Against the baselines (the same runs)",
        "",
        "| queries | candidate | " + " | ".join(algos) + " | candidate >= best baseline: "
        "front share / HV ratio |",
        "|---|---|" + "---|" * (len(algos) + 1),
    ]
    for q, p in paired.groupby("queries"):
        at_q = base[base["queries"] == q]
        cells = [_mean(at_q[at_q["algorithm"] == a]) for a in algos]
        share_ok = int((p["front_share"] >= p["best_share"]).sum())
        hv_ok = int((p["hv_ratio"] >= p["best_hv"]).sum())
        lines.append(
            f"| {q} | {_mean(p)} | " + " | ".join(cells) + f" | {share_ok} / {hv_ok} of {len(p)} |"
        )
    below = paired[
        (paired["front_share"] < paired["best_share"]) | (paired["hv_ratio"] < paired["best_hv"])
    ]
    if len(below):
        lines += [
            "",
            "Runs below the best baseline in either measure (queries, device, dataset, seed: "
            "candidate / best baseline): "
            + "; ".join(
                f"{r.queries} {r.device} {r.dataset} {r.seed}: {r.front_share:.1%} / "
                f"{r.hv_ratio:.4f} against {r.best_share:.1%} / {r.best_hv:.4f}"
                for r in below.itertuples()
            )
            + ".",
        ]
    return [*lines, ""]


def _p(diff: pd.Series) -> str:
    """Wilcoxon signed-rank p-value of paired differences ('-' when all are zero)."""
    return f"{wilcoxon(diff).pvalue:.2g}" if np.any(diff != 0) else "-"


def reference_lines(cand: pd.DataFrame, ref: pd.DataFrame, label: str) -> list[str]:
    paired = cand.merge(ref, on=RUN, suffixes=("", "_ref"))
    if paired.empty:
        return []
    lines = [
        f"## Against {label} (paired runs)",
        "",
        "| queries | runs | candidate | reference | HV better / worse | HV p | "
        "front share difference | share p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for q, p in paired.groupby("queries"):
        dh = p["hv_ratio"] - p["hv_ratio_ref"]
        dsh = p["front_share"] - p["front_share_ref"]
        ref_mean = f"{p['front_share_ref'].mean():.1%} / {p['hv_ratio_ref'].mean():.4f}"
        lines.append(
            f"| {q} | {len(p)} | {_mean(p)} | {ref_mean} | {int((dh > 0).sum())} / "
            f"{int((dh < 0).sum())} | {_p(dh)} | {100 * dsh.mean():+.1f} points | {_p(dsh)} |"
        )
    return [*lines, ""]


def constraint_lines(rows: pd.DataFrame) -> list[str]:
    rows = rows[rows["kind"] == "constraint"]
    if rows.empty:
        return []
    rows = rows.drop_duplicates(subset=["device", "dataset", "seed", "percentile"], keep="last")
    lines = [
        "## Constraint mode: runs that found the true best under the budget",
        "",
        "| budget percentile | found | mean regret (points) |",
        "|---|---|---|",
    ]
    for pct, g in rows.groupby("percentile"):
        n = int(g["found_best"].sum())
        lines.append(f"| {pct} | {n / len(g):.1%} ({n} / {len(g)}) | {g['regret'].mean():.3f} |")
    n = int(rows["found_best"].sum())
    lines.append(
        f"| all | **{n / len(rows):.1%}** ({n} / {len(rows)}) | {rows['regret'].mean():.3f} |"
    )
    per_dev = rows.groupby("device")["found_best"].agg(["sum", "count"])
    lines += [
        "",
        "Per device (every budget): "
        + "; ".join(f"{d} {int(r['sum'])} / {int(r['count'])}" for d, r in per_dev.iterrows())
        + f". Devices at >= 90%: {int((per_dev['sum'] >= 0.9 * per_dev['count']).sum())} of "
        f"{len(per_dev)}.",
        "",
    ]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("candidate", nargs="+", help="results files of the candidate (suffix or path)")
    ap.add_argument("--algorithm", default="hsconas", help="the candidate's algorithm column")
    ap.add_argument("--baselines", nargs="*", default=[], help="results files with the baselines")
    ap.add_argument(
        "--reference", nargs="*", default=[], help="results files of the same algorithm to pair"
    )
    ap.add_argument("--out", help="name of the written table (default: the first candidate's)")
    args = ap.parse_args()
    cand_rows = read(args.candidate)
    cand = pareto_rows(cand_rows, args.algorithm)
    lines = [
        f"# NB201 search: {args.algorithm} in {', '.join(args.candidate)}",
        "",
        f"{cand[['device', 'dataset', 'seed']].drop_duplicates().shape[0]} runs: "
        f"{cand['device'].nunique()} devices x {cand['dataset'].nunique()} datasets x seeds "
        f"{', '.join(map(str, sorted(cand['seed'].unique())))}.",
        "",
    ]
    if not cand.empty:
        lines += pareto_lines(cand, args.algorithm)
    if args.baselines and not cand.empty:
        lines += baseline_lines(cand, pareto_rows(read(args.baselines)))
    if args.reference and not cand.empty:
        ref = pareto_rows(read(args.reference), args.algorithm)
        lines += reference_lines(
            cand, ref[[*RUN, "front_share", "hv_ratio"]], ", ".join(args.reference)
        )
    lines += constraint_lines(cand_rows)
    text = "\n".join(lines)
    name = args.out or Path(args.candidate[0]).stem.removeprefix("search_nb201_").split("_")[-1]
    (RESULTS / f"compare_nb201_{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
