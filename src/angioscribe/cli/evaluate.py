"""`angioscribe evaluate ...`: score predictions with the metric their benchmark defines."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from angioscribe.cli.output import print_records
from angioscribe.errors import InputError
from angioscribe.evaluate.arcade_metric import arcade_f1_files

app = typer.Typer(
    no_args_is_help=True,
    help="Evaluation: metrics computed exactly as their benchmarks define them.",
)


class ArcadeTask(StrEnum):
    syntax = "syntax"
    stenosis = "stenosis"


@app.command("arcade")
def arcade(
    gt: Annotated[Path, typer.Argument(help="Ground-truth COCO JSON (ARCADE annotations).")],
    pred: Annotated[
        Path, typer.Argument(help="Predicted COCO JSON (images, categories, annotations).")
    ],
    task: Annotated[ArcadeTask, typer.Option("--task", help="ARCADE task to score.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout, with per-image scores.")
    ] = False,
) -> None:
    """The ARCADE challenge's official F1 of PRED against GT (rules: docs/metrics.md)."""
    try:
        score = arcade_f1_files(gt, pred, task.value)
    except InputError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    if score.unmatched_predictions:
        typer.echo(
            f"warning: {len(score.unmatched_predictions)} prediction images match no ground-truth "
            f"file_name (e.g. {score.unmatched_predictions[0]}) and were ignored",
            err=True,
        )
    if score.unscored:
        typer.echo(
            f"note: {len(score.unscored)} ground-truth images have no annotations and are not "
            f"scored (the official script cannot score them), e.g. {score.unscored[0]}",
            err=True,
        )
    record = {
        "task": task.value,
        "f1": score.f1,
        "images": len(score.per_image),
        "unscored": list(score.unscored),
        "unmatched_predictions": list(score.unmatched_predictions),
        "per_image": score.per_image,
    }
    print_records([record], as_json, ("task", "images", "f1"))
