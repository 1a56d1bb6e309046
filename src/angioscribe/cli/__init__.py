"""`angioscribe <command>`: thin typer front end; parses, calls the library, prints.

Each command group lives in its own module and is registered here.
"""

from __future__ import annotations

import typer

from angioscribe.cli import (
    analyze,
    cines,
    data,
    evaluate,
    keyframes,
    report,
    reports,
    review,
    segment,
    sim,
    train,
)

app = typer.Typer(
    name="angioscribe",
    help="Coronary angiography AI: key frames, per-segment findings and draft reports.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("ingest")(cines.ingest)
app.command("frames")(cines.frames)
app.command("classify")(keyframes.classify)
app.command("keyframes")(keyframes.keyframes)
app.command("analyze")(analyze.analyze)
app.command("parse-report")(reports.parse_report)
app.command("report")(report.report)
app.add_typer(review.app, name="review")
app.add_typer(data.app, name="data")
app.add_typer(evaluate.app, name="evaluate")
app.add_typer(train.app, name="train")
app.command("segment")(segment.segment)
app.add_typer(sim.app, name="sim")


def main() -> None:
    app()
