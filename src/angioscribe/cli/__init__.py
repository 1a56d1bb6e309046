"""`angioscribe <command>`: thin typer front end; parses, calls the library, prints.

Each command group lives in its own module and is registered here. Every command follows the
error contract in `angioscribe.cli.contract` (error records, exit codes 0/1/2/3, valid JSON).

Keep `angioscribe --help` fast: registering a command imports its module, so a command module
imports only typer, the standard library and light angioscribe modules at the top; torch,
timm, transformers, pandas, matplotlib, pydicom, OpenCV and the modules that pull them in are
imported inside the command function that uses them (tests/test_cli_contract.py checks this).
"""

from __future__ import annotations

from typing import Annotated

import typer

from angioscribe.cli import (
    analyze,
    cines,
    data,
    evaluate,
    export,
    keyframes,
    queue,
    report,
    reports,
    review,
    segment,
    serve,
    sim,
    train,
    video,
)

app = typer.Typer(
    name="angioscribe",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _configure(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also show libraries' warnings and details.")
    ] = False,
) -> None:
    """Coronary angiography AI: key frames, per-segment findings and draft reports.

    Exit codes, the same in every command: 0 every input done; 1 some inputs failed (each
    reported with its `path` and `error`), the rest done; 2 usage error; 3 nothing done.
    """
    from angioscribe.logs import configure_logging

    configure_logging(verbose)


app.command("ingest")(cines.ingest)
app.command("frames")(cines.frames)
app.command("classify")(keyframes.classify)
app.command("keyframes")(keyframes.keyframes)
app.command("analyze")(analyze.analyze)
app.command("export")(export.export)
app.command("parse-report")(reports.parse_report)
app.command("report")(report.report)
app.add_typer(review.app, name="review")
app.add_typer(data.app, name="data")
app.add_typer(evaluate.app, name="evaluate")
app.add_typer(train.app, name="train")
app.command("segment")(segment.segment)
app.add_typer(sim.app, name="sim")
app.command("predict")(video.predict)
app.command("retrieve")(video.retrieve)
app.command("serve")(serve.serve)
app.add_typer(queue.app, name="queue")


def main() -> None:
    app()
