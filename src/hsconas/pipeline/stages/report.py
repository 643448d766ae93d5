"""Stage 6, ``report``: the HTML report."""

from __future__ import annotations

from typing import Any

from hsconas.pipeline.config import config_to_dict
from hsconas.pipeline.runner import StageContext
from hsconas.pipeline.stages.common import (
    config_of,
    relative_path,
)


def stage_report(ctx: StageContext) -> dict[str, Any]:
    """Write ``report.html`` (plots embedded) from every earlier stage's results."""
    from hsconas.report.pipeline_report import write_report

    cfg = config_of(ctx)
    path = write_report(
        ctx.run_dir,
        results=ctx.inputs,
        config=config_to_dict(cfg),
        out=ctx.dir / "report.html",
        progress=lambda d, t: ctx.progress(d, t, "report"),
    )
    return {"report": relative_path(ctx, path)}
