"""`angioscribe review export|import`: the model-blinded clinician review of drafts.

Both commands make one thing from all their inputs (a blinded review set, Table 4), so a bad
input stops them with an error naming it and exit code 3 (`angioscribe.cli.refusal`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from angioscribe.cli.output import JsonOption, print_records
from angioscribe.cli.refusal import refuse
from angioscribe.cli.reports import (
    SeedOption,
    error_display,
    error_display_columns,
    json_document,
)
from angioscribe.errors import InputError

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
    """Write review_sheet.csv, review.html (send these) and review_key.json (keep this).

    Exit code 0 when the review set was written, 2 on a usage error, 3 when a --pred or
    --truth file is unreadable, empty or has a bad line (the error names it).
    """
    from angioscribe.evaluate.blind_review import export_review
    from angioscribe.report.records import read_drafts, read_truths

    try:
        drafts = [d for path in pred for d in read_drafts(path)]
        truths = read_truths(truth, images) if truth else {}
        written = export_review(drafts, out, seed, truths)
    except InputError as error:
        refuse(error)
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
    """Table 4 from the clinician's scores: overall mean/SD and drafts with each error.

    Exit code 0 when every draft of the key was scored and tabled, 2 on a usage error, 3 when
    the sheet or key cannot be used (unreadable, a bad cell, a draft left unscored: the error
    names the file and line).
    """
    from angioscribe.evaluate.blind_review import import_review
    from angioscribe.evaluate.report_figures import score_histograms
    from angioscribe.evaluate.report_tables import error_table

    try:
        scores = import_review(sheet, key)
    except InputError as error:
        refuse(error, as_json)
    table = error_table(scores, n_boot=n_boot, seed=seed)
    if as_json:
        print_records(table, True, ())
    else:
        print_records([error_display(row) for row in table], False, error_display_columns(table))
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "review_table.json").write_text(json_document(table))
        score_histograms(scores, out / "review_scores.png")
        typer.echo(f"wrote {out}/review_table.json and review_scores.png", err=True)
