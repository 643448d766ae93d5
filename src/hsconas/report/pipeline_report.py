"""The HTML report of ``hsconas run``: one self-contained file with embedded PNG plots.

Sections: summary; device and software fingerprint; the latency model's accuracy (predicted vs
measured); block heatmap and insights; supernet training curves; the Pareto front per shrinking
stage and hypervolume over the search; the chosen network's layers, measurements and exports; the
exact configuration. Plot data come from the stage results (pure dicts); renderers are thin.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hsconas.report.pipeline_plots import (
    plot_hv,
    plot_pred_vs_measured,
    plot_stage_fronts,
    plot_training,
)

__all__ = ["render_html", "write_report"]

# ---------------------------------------------------------------------------------- html
_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3} .num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#176f2c;font-weight:bold} .bad{color:#b00020;font-weight:bold}
code,pre{background:#f6f6f6} pre{padding:.8em;overflow-x:auto;font-size:.85em}
img{max-width:100%;border:1px solid #eee} .kpi{display:inline-block;margin:.3em 1.2em .3em 0}
.kpi b{font-size:1.4em;display:block}
.warn{background:#fff4d6;border-left:5px solid #c98a00;padding:.5em .8em;margin:.6em 0}
"""


def _fingerprint_value(value: Any) -> str:
    """A fingerprint field for people: strings bare, missing values said, the rest as JSON."""
    if value is None:
        return "not available on this machine"
    return value if isinstance(value, str) else json.dumps(value)


def model_warning(prof: Mapping[str, Any]) -> str | None:
    """The hardware model's quality warning of a ``hw_model`` stage result (older runs: derived)."""
    from hsconas.latency.metrics import quality_warning

    if "quality_warning" in prof:
        return prof["quality_warning"]
    v = prof["validation"]
    return quality_warning(v["within_10pct"], v["kendall"], v["n"], spread_pct=v["mape_pct"])


def estimator_of(search: Mapping[str, Any]) -> dict[str, Any]:
    """What steered a search (its stage result's ``estimator``; the supernet for runs made
    before the estimator was recorded): ``accuracy``, ``signals``, ``scale``, ``reference``."""
    default = {"accuracy": "supernet", "signals": ["supernet"], "scale": "percent", "reference": 0}
    return {**default, **dict(search.get("estimator") or {})}


def estimator_text(est: Mapping[str, Any]) -> str:
    """One phrase naming a search's accuracy estimate and its scale, for the report."""
    if est["scale"] == "percent":
        return "the supernet (validation accuracy with recalibrated batch norms, percent)"
    signals = [str(s) for s in est["signals"]]
    how = (
        f"each signal's position among its values on a fixed sample of {est['reference']} "
        "architectures, averaged and scaled to a score of 0..100, not a percent"
    )
    if est["accuracy"] == "ensemble":
        return f"the label-free ensemble of {', '.join(signals)} ({how})"
    if len(signals) > 1:
        return f"the zero-cost ensemble of {', '.join(signals)} ({how})"
    return f"the zero-cost proxy {signals[0]} ({how})"


def _e(x: Any) -> str:
    return html.escape(str(x))


def _fmt(x: Any, digits: int = 4) -> str:
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_e(_fmt(c))}</td>'
            if isinstance(c, int | float)
            else f"<td>{_e(c)}</td>"
            for c in r
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{b64}">'


def _metrics_rows(name: str, m: Mapping[str, Any]) -> list[Any]:
    return [
        name,
        m["n"],
        m["rmse_ms"],
        m["mape_pct"],
        100 * m["within_5pct"],
        100 * m["within_10pct"],
        m["kendall"],
        m["spearman"],
    ]


def render_html(
    run_dir: Path,
    results: Mapping[str, Mapping[str, Any]],
    config: Mapping[str, Any],
    progress: Callable[[int, int], None] | None = None,
) -> str:
    """The report as an HTML string (plots embedded as base64 PNGs)."""
    import yaml

    def tick(i: int) -> None:
        if progress is not None:
            progress(i, 7)

    prof, blocks, sup = results["hw_model"], results["blocks"], results["supernet"]
    search, final = results["search"], results["final"]
    budget = float(prof["budget_ms"])
    parts: list[str] = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>hsconas run: {_e(config['space']['name'])} on {_e(config['device']['name'])}"
        "</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>hsconas run: {_e(config['space']['name'])} on {_e(config['device']['name'])} "
        f"({_e(config['device']['backend'])})</h1>",
    ]
    # summary
    ok = final["within_budget"]
    acc = final.get("scratch") or {}
    parts.append("<h2>Summary</h2>")
    kpis = [
        ("chosen network accuracy (inherited weights, test)",
         f"{final['accuracy_test_inherited']:.2f}%"),
        ("measured latency", f"{final['measured_ms']:.4g} ms"),
        ("latency budget", f"{budget:.4g} ms"),
        ("model prediction", f"{final['predicted_ms']:.4g} ms "
         f"({final['prediction_error_pct']:+.1f}%)"),
    ]  # fmt: skip
    val = prof["validation"]
    kpis.append(
        (f"latency model on {val['n']} held-out networks (within +/-10%, Kendall tau)",
         f"{100 * val['within_10pct']:.0f}%, {val['kendall']:.2f}")
    )  # fmt: skip
    if acc:
        kpis.insert(1, ("accuracy trained from scratch (test)", f"{acc['test_accuracy']:.2f}%"))
    kpis.append(("search steered by", estimator_of(search)["accuracy"]))
    parts.append("".join(f'<div class="kpi"><b>{_e(v)}</b>{_e(k)}</div>' for k, v in kpis))
    if model_warning(prof):
        parts.append(
            '<div class="warn"><b>Warning:</b> the latency model is weak on held-out networks; '
            "the predicted latencies below are less certain than they look (see "
            "<i>Hardware performance model</i>).</div>"
        )
    status = (
        f'<span class="ok">within budget</span> by {final["budget_margin_pct"]:.1f}%'
        if ok
        else f'<span class="bad">over budget</span> by {-final["budget_margin_pct"]:.1f}%'
    )
    parts.append(
        f"<p>Chosen network <code>{_e(final['arch'])}</code>: measured "
        f"{final['measured_ms']:.4g} ms against a budget of {budget:.4g} ms ({_e(prof['budget_source'])}): "
        f"{status}. The hardware model predicted {final['predicted_ms']:.4g} ms, "
        f"{abs(final['prediction_error_pct']):.1f}% "
        f"{'above' if final['prediction_error_pct'] > 0 else 'below'} the measurement.</p>"
    )
    # fingerprint
    parts.append("<h2>Device and software fingerprint</h2>")
    fp = dict(prof["fingerprint"])
    parts.append(
        _table(["field", "value"], [[k, _fingerprint_value(v)] for k, v in sorted(fp.items())])
    )
    # latency model
    tick(1)
    samples = json.loads((run_dir / "hw_model" / "samples.json").read_text(encoding="utf-8"))
    parts.append("<h2>Hardware performance model</h2>")
    parts.append(
        f"<p>LUT of {prof['n_blocks']} distinct blocks plus a learned correction fitted on "
        f"{prof['n_fit']} end-to-end measurements; validated on {prof['n_validate']} further "
        f"networks measured end to end (not used in the fit). Measured latencies span "
        f"{prof['measured_range_ms'][0]:.4g}-{prof['measured_range_ms'][1]:.4g} ms. Profiling "
        f"took {sum(prof['time_s'].values()):.0f} s.</p>"
    )
    parts.append(
        _table(
            [
                "predictor (held-out)",
                "n",
                "RMSE ms",
                "MAPE %",
                "within 5 %",
                "within 10 %",
                "Kendall tau",
                "Spearman rho",
            ],
            [
                _metrics_rows("LUT + learned correction", prof["validation"]),
                _metrics_rows("LUT sum only", prof["validation_lut_sum"]),
            ],
        )
    )
    warning = model_warning(prof)
    if warning:
        parts.append(f'<div class="warn"><b>Warning:</b> {_e(warning)}.</div>')
    parts.append(_img(plot_pred_vs_measured(samples), "predicted vs measured latency"))
    # blocks
    tick(2)
    from hsconas.profiling import load_profile
    from hsconas.report.profile_report import render_heatmap

    bprof = load_profile(run_dir / str(blocks["profile_dir"]))
    parts.append("<h2>Block profiling and insights</h2>")
    by_model = blocks["source"] == "model"
    src = "the hardware model (predicted, not measured)" if by_model else "end-to-end measurement"
    parts.append(
        f"<p>Every op forced at every layer ({blocks['n_specs']} block-position "
        f"specifications, {blocks['n_networks']} distinct networks, latency from {src}); effects "
        f"against an average choice, from a block-position regression (R2 = "
        f"{blocks['r2_latency']:.2f}). Random baseline mean {blocks['baseline_mean_ms']:.4g} ms."
        "</p>"
    )
    buf = io.BytesIO()
    render_heatmap(bprof, buf, value="lat_effect_pct")
    parts.append(_img(base64.b64encode(buf.getvalue()).decode(), "block heatmap"))
    buf = io.BytesIO()
    render_heatmap(bprof, buf, value="lat_delta_pct")
    parts.append(_img(base64.b64encode(buf.getvalue()).decode(), "block heatmap vs baseline"))
    insights = [
        s.replace("measured networks", "networks (latency predicted)") if by_model else s
        for s in blocks["insights"]
    ]
    parts.append("<ul>" + "".join(f"<li>{_e(s)}</li>" for s in insights) + "</ul>")
    # supernet
    tick(3)
    parts.append("<h2>Supernet training</h2>")
    parts.append(
        f"<p>{sup['epochs']} epochs on {_e(sup['dataset'])} ({sup['n_train']} training, "
        f"{sup['n_val']} validation and {sup['n_test']} test images); validation accuracy of "
        "the largest and smallest members with recalibrated batch norms.</p>"
    )
    parts.append(_img(plot_training(sup["history"], "supernet"), "supernet training curves"))
    # search
    tick(4)
    parts.append("<h2>Search</h2>")
    best = search.get("best") or {}
    est = estimator_of(search)
    percent = est["scale"] == "percent"
    unit = "%" if percent else " (score)"
    acc_col = "acc %" if percent else "score"
    parts.append(
        f"<p>{search['n_queries']} distinct architectures evaluated (latency from the hardware "
        f"model, accuracy from {_e(estimator_text(est))}) in {search['time_s']:.0f} s; "
        f"{search['n_replayed']} replayed from the store."
        + (
            f" Best within budget as predicted: <code>{_e(best['arch'])}</code> "
            f"({best['accuracy']:.2f}{unit}, {best['latency_ms']:.4g} ms predicted; its "
            "measured latency, and the network finally chosen, are under <i>The chosen "
            "network</i>).</p>"
            if best
            else "</p>"
        )
    )
    # the chosen network on the search's own accuracy scale (the supernet's, or the estimate)
    searched = {c["arch"]: c["accuracy"] for c in search.get("candidates", [])}
    searched.update({s["arch"]: s["accuracy"] for s in search.get("scaled", []) if "arch" in s})
    y_chosen = final["accuracy_val_inherited"] if percent else searched.get(final.get("arch"))
    chosen = (
        None
        if y_chosen is None
        else {
            "predicted_ms": final["predicted_ms"],
            "measured_ms": final["measured_ms"],
            "accuracy": y_chosen,
        }
    )
    y_label = "supernet accuracy (%)" if percent else f"{est['accuracy']} score (0..100)"
    parts.append(
        _img(
            plot_stage_fronts(search["stages"], budget, chosen, y_label=y_label),
            "Pareto front per stage",
        )
    )
    parts.append(
        _table(
            ["stage", "queries", "space size", "front size", "normalised HV", "choices dropped"],
            [
                [
                    s["stage"],
                    f"{s['queries'][0]}-{s['queries'][1]}",
                    f"{s['space_size']:.3g}",
                    len(s["front"]),
                    s["hv"],
                    "; ".join(f"{g}: {', '.join(v)}" for g, v in s["dropped"].items()) or "-",
                ]
                for s in search["stages"]
            ],
        )
    )
    hvc = search["hv_curve"]
    ends = [s["queries"][1] for s in search["stages"]]
    parts.append(_img(plot_hv(hvc["queries"], hvc["hv"], ends), "hypervolume over the search"))
    if search["scaled"]:
        parts.append("<h3>Dynamic channel scaling of the best candidates</h3>")
        parts.append(
            _table(
                ["from", acc_col, "pred ms", "scaled to", acc_col, "pred ms", "moves"],
                [
                    [
                        s["from"],
                        s.get("from_accuracy", ""),
                        s.get("from_latency_ms", ""),
                        s.get("arch", s.get("error", "")),
                        s.get("accuracy", ""),
                        s.get("latency_ms", ""),
                        s.get("n_steps", ""),
                    ]
                    for s in search["scaled"]
                ],
            )
        )
    # final
    tick(5)
    parts.append("<h2>The chosen network</h2>")
    parts.append(
        "<p>Candidates are measured on the device, most accurate first, until one meets the "
        "budget. A candidate over budget is re-scaled with a budget corrected by its "
        "measured/predicted ratio; if no candidate fits, the most accurate evaluated networks whose "
        "prediction times the median measured/predicted ratio fits are measured next, then "
        "channel-scaled versions of the fastest one.</p>"
    )
    parts.append(
        _table(
            ["candidate", "why", "measured ms", "+/- ms", "predicted ms", "error %", "fits"],
            [
                [
                    a["arch"],
                    a["why"],
                    a["measured_ms"],
                    a["spread_ms"],
                    a["predicted_ms"],
                    100 * (a["predicted_ms"] - a["measured_ms"]) / a["measured_ms"],
                    "yes" if a["within_budget"] else "no",
                ]
                for a in final["attempts"]
            ],
        )
    )
    parts.append(
        f"<p>{final['params']:,} parameters, {final['macs'] / 1e6:.3g} M MACs. Validation "
        f"accuracy with inherited weights {final['accuracy_val_inherited']:.2f}%, test "
        f"{final['accuracy_test_inherited']:.2f}%"
        + (
            f"; trained from scratch for {acc['epochs']} epochs: test {acc['test_accuracy']:.2f}%"
            if acc
            else ""
        )
        + f". ONNX export agrees with PyTorch to {final['onnx_max_rel_diff']:.1e} (relative).</p>"
    )
    parts.append(
        _table(
            ["layer", "op", "in", "mid", "out", "kernel", "stride", "input size"],
            [
                [
                    lp["name"],
                    lp["op"],
                    lp["in_channels"],
                    lp["mid_channels"],
                    lp["out_channels"],
                    lp["kernel"],
                    lp["stride"],
                    lp["input_size"],
                ]
                for lp in final["layers"]
            ],
        )
    )
    parts.append(
        "<p>Exports (in the run folder): "
        + ", ".join(f"<code>{_e(v)}</code>" for v in final["exports"].values())
        + (f", <code>{_e(acc['onnx'])}</code>" if acc else "")
        + ".</p>"
    )
    if acc:
        parts.append(_img(plot_training(acc["history"], "chosen network from scratch"), "scratch"))
    # config
    tick(6)
    parts.append("<h2>Configuration (to reproduce this run)</h2>")
    parts.append(
        "<p>Save as <code>run.yaml</code> and run <code>hsconas run --config run.yaml</code>.</p>"
    )
    parts.append(f"<pre>{_e(yaml.safe_dump(dict(config), sort_keys=False))}</pre>")
    parts.append("</body></html>")
    tick(7)
    return "\n".join(parts)


def write_report(
    run_dir: str | Path,
    *,
    results: Mapping[str, Mapping[str, Any]],
    config: Mapping[str, Any],
    out: str | Path,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write the report to ``out`` (atomically); returns the path."""
    import os

    text = render_html(Path(run_dir), results, config, progress)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    return out
