"""`angioscribe review export|import`: the model-blinded clinician review of drafts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from angioscribe.cli.output import print_records
from angioscribe.cli.reports import (
    JsonOption,
    SeedOption,
    error_display,
    error_display_columns,
)
from angioscribe.errors import InputError
from angioscribe.evaluate.blind_review import export_review, import_review
from angioscribe.evaluate.report_figures import score_histograms
from angioscribe.evaluate.report_tables import error_table
from angioscribe.report.records import read_drafts, read_truths

app = typer.Typer(
    no_args_is_help=True,
    help="Blind review: export drafts for a clinician without model names, import the scores.",
)


@app.command("export")
def export(
    pred: Annotated[list[Path], typer.Option("--pred", help="Draft reports JSONL; repeatable.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the sheet, page and key.")],
    seed: SeedOption = 0,
    truth: Annotated[
        Path | None, typer.Option("--truth", help="Truth JSONL: images and references to show.")
    ] = None,
    images: Annotated[
        Path | None, typer.Option("--images", help="Folder of the truth images.")
    ] = None,
) -> None:
    """Write review_sheet.csv, review.html (send these) and review_key.json (keep this)."""
    try:
        drafts = [d for path in pred for d in read_drafts(path)]
        truths = read_truths(truth, images) if truth else {}
        written = export_review(drafts, out, seed, truths)
    except InputError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"{len(drafts)} drafts blinded; reviewer gets {written['sheet']} and "
        f"{written['page']}; keep {written['key']} apart",
        err=True,
    )


@app.command("import")
def import_(
    sheet: Annotated[Path, typer.Argument(help="The filled review_sheet.csv.")],
    key: Annotated[Path, typer.Option("--key", help="review_key.json written by export.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for table and Figure 6.")
    ] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", min=10, help="Bootstrap resamples.")] = 1000,
    seed: SeedOption = 0,
    as_json: JsonOption = False,
) -> None:
    """Table 4 from the clinician's scores: overall mean/SD and drafts with each error."""
    try:
        scores = import_review(sheet, key)
    except InputError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    table = error_table(scores, n_boot=n_boot, seed=seed)
    if as_json:
        print_records(table, True, ())
    else:
        print_records([error_display(row) for row in table], False, error_display_columns(table))
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "review_table.json").write_text(
            json.dumps(table, indent=2, ensure_ascii=False) + "\n"
        )
        score_histograms(scores, out / "review_scores.png")
        typer.echo(f"wrote {out}/review_table.json and review_scores.png", err=True)
