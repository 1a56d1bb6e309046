"""`angioscribe analyze`: the whole chain over a study folder, results as JSON + figures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from angioscribe.analyze import analyze_paths, write_analysis
from angioscribe.cli.output import print_records, to_json
from angioscribe.frames import DEFAULT_MIN_GAP


def analyze(
    paths: Annotated[
        list[Path], typer.Argument(help="Study folders, DICOM files or cine folders.")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Folder for analysis.json and figures/.")
    ] = Path("angioscribe-output"),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each study as one JSON line.")
    ] = False,
    min_gap: Annotated[int, typer.Option("--min-gap", min=1)] = DEFAULT_MIN_GAP,
) -> None:
    """Run every stage that exists on each study; unreadable inputs are listed, not fatal.

    Exit code 1 only when no cine at all could be read.
    """
    studies = analyze_paths(paths, out, min_gap=min_gap)
    written = write_analysis(studies, out)
    if as_json:
        for study in studies:
            typer.echo(to_json(study.to_dict()))
    else:
        rows = [
            {"study": s.key, "cines": len(s.cines), "unreadable": len(s.errors)} for s in studies
        ]
        print_records(rows, False, ("study", "cines", "unreadable"))
        typer.echo(f"results: {written}", err=True)
    if not any(study.cines for study in studies):
        raise typer.Exit(code=1)
