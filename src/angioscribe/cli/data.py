"""`angioscribe data ...`: bring datasets into the catalog."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from angioscribe.cli.output import print_records, progress
from angioscribe.data.arcade import ArcadeSplit, arcade_splits, find_arcade_root, load_arcade
from angioscribe.data.catalog import (
    SplitLeakError,
    catalog_from_arcade,
    check_no_leakage,
    write_catalog,
)
from angioscribe.errors import InputError

app = typer.Typer(
    no_args_is_help=True,
    help="Datasets: import ARCADE into a catalog of images with leak-free grouping.",
)

SUMMARY_COLUMNS = ("task", "split", "images", "annotations", "LCA", "RCA", "unknown")


@app.command("import-arcade")
def import_arcade(
    root: Annotated[
        Path,
        typer.Argument(
            help="ARCADE root, or a folder holding it as arcade/ (e.g. ../shared/data)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Catalog file to write (.parquet or .csv).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line on stdout instead of a table.")
    ] = False,
) -> None:
    """Import every ARCADE task/split under ROOT into a catalog; summarise each split.

    Images that look alike (same picture, frames of one cine) share a patient_id in the catalog.
    The official splits are kept; a warning names look-alike groups they put on both sides.
    """
    try:
        dataset_root = find_arcade_root(root)
        found = arcade_splits(dataset_root)
        splits = [
            load_arcade(dataset_root, task, split)
            for task, split in progress(found, "Reading ARCADE", total=len(found))
        ]
        catalog = catalog_from_arcade(splits)
        write_catalog(catalog, out)
    except InputError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    try:
        check_no_leakage(catalog)
    except SplitLeakError as leak:
        typer.echo(
            f"warning: the official ARCADE splits share {len(leak.leaking)} look-alike groups "
            f"(same picture or same cine) between splits, e.g. {next(iter(leak.leaking))}; "
            "use angioscribe.data.catalog.assign_splits for leak-free splits (docs/data.md).",
            err=True,
        )
    print_records([_summary(split) for split in splits], as_json, SUMMARY_COLUMNS)


def _summary(split: ArcadeSplit) -> dict[str, Any]:
    sides = Counter(image.laterality or "unknown" for image in split.images)
    return {
        "task": split.task,
        "split": split.split,
        "images": len(split.images),
        "annotations": split.n_annotations,
        "LCA": sides["LCA"],
        "RCA": sides["RCA"],
        "unknown": sides["unknown"],
    }
