"""`angioscribe data ...`: bring datasets into the catalog.

Exit codes follow `angioscribe.cli.contract`: each ARCADE task/split is one input, reported as
soon as it is read; a split that cannot be read gets an error record and is left out of the
catalog. The data libraries (numpy, PIL, pandas) are imported inside the command.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from angioscribe.cli import report_corpus
from angioscribe.cli.contract import RecordSink, error_record
from angioscribe.cli.output import JsonOption, progress
from angioscribe.cli.refusal import refuse
from angioscribe.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from angioscribe.data.arcade import ArcadeSplit

app = typer.Typer(
    no_args_is_help=True,
    help="Datasets: import ARCADE into a catalog of images with leak-free grouping.",
)

SUMMARY_COLUMNS = ("task", "split", "images", "annotations", "LCA", "RCA", "unknown", "error")


@app.command("import-arcade")
def import_arcade(
    root: Annotated[
        Path,
        typer.Argument(
            help="ARCADE root, or a folder holding it as arcade/ (e.g. ../shared/data)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Catalog file to write (.parquet or .csv).")],
    as_json: JsonOption = False,
) -> None:
    """Import every ARCADE task/split under ROOT into a catalog; summarise each split.

    Images that look alike (same picture, frames of one cine) share a patient_id in the catalog.
    The official splits are kept; a warning names look-alike groups they put on both sides.
    Exit code 0 when every split was imported, 1 when some could not be read (their errors
    reported, the catalog holds the rest), 2 on a usage error, 3 when nothing was imported
    (ROOT holds no ARCADE dataset, no split could be read, or OUT cannot be written).
    """
    from angioscribe.data.arcade import arcade_splits, find_arcade_root, load_arcade
    from angioscribe.data.catalog import catalog_from_arcade, write_catalog

    if out.suffix.lower() not in (".parquet", ".csv"):
        raise typer.BadParameter("the catalog file must end in .parquet or .csv",
                                 param_hint="--out")
    try:
        dataset_root = find_arcade_root(root)
    except InputError as error:
        refuse(error, as_json)
    found = arcade_splits(dataset_root)
    splits: list[ArcadeSplit] = []
    with RecordSink(as_json, SUMMARY_COLUMNS) as sink:
        for task, split in progress(found, "Reading ARCADE", total=len(found)):
            try:
                splits.append(load_arcade(dataset_root, task, split))
            except InputError as error:
                sink.emit(error_record(error.source, error.problem, task=task, split=split))
                continue
            sink.emit(_summary(splits[-1]))
        if splits:
            catalog = catalog_from_arcade(splits)
            try:
                write_catalog(catalog, out)
            except (InputError, OSError) as error:
                refuse(error, as_json, source=out)
            _warn_of_leaks(catalog)


def _warn_of_leaks(catalog: pd.DataFrame) -> None:
    """The official splits share look-alike groups: say so, and where the leak-free way is."""
    from angioscribe.data.catalog import SplitLeakError, check_no_leakage

    try:
        check_no_leakage(catalog)
    except SplitLeakError as leak:
        typer.echo(
            f"warning: the official ARCADE splits share {len(leak.leaking)} look-alike groups "
            f"(same picture or same cine) between splits, e.g. {next(iter(leak.leaking))}; "
            "use angioscribe.data.catalog.assign_splits for leak-free splits (docs/data.md).",
            err=True,
        )


def _summary(split: ArcadeSplit) -> dict[str, Any]:
    sides = Counter(image.laterality or "unknown" for image in split.images)
    return {
        "path": str(split.annotations_path),
        "task": split.task,
        "split": split.split,
        "images": len(split.images),
        "annotations": split.n_annotations,
        "LCA": sides["LCA"],
        "RCA": sides["RCA"],
        "unknown": sides["unknown"],
    }


app.command("report-corpus")(report_corpus.report_corpus)
