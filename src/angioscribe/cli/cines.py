"""`angioscribe ingest` and `angioscribe frames`: read cines, report what they hold.

Both read every source under the given paths, one record per source, and keep going past
sources that fail (the record carries an `error` field instead). The exit code is 1 only when
every source failed, so a script can tell "nothing usable" from "some files were bad".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from angioscribe.anatomy import view_from_angles
from angioscribe.cine import Cine
from angioscribe.cli.output import print_records, progress
from angioscribe.frames import DEFAULT_MIN_GAP, candidate_frames
from angioscribe.io import CineResult, find_inputs, try_read_cine

PathsArgument = Annotated[
    list[Path],
    typer.Argument(
        help="DICOM files, videos, frame-image folders or study folders (searched recursively)."
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="One JSON object per line on stdout instead of a table.")
]

INGEST_COLUMNS = (
    "path",
    "frames",
    "rows",
    "cols",
    "fps",
    "primary_angle",
    "secondary_angle",
    "view",
    "error",
)
FRAMES_COLUMNS = ("path", "frames", "candidates", "error")


def ingest(paths: PathsArgument, as_json: JsonOption = False) -> None:
    """Per cine: frames, size, frame rate, C-arm angles and view, or why it could not be read.

    Exit code 1 only when every input failed.
    """
    records = [_record(result, _describe) for result in _read_each(paths, "Reading cines")]
    _finish(records, as_json, INGEST_COLUMNS)


def frames(
    paths: PathsArgument,
    as_json: JsonOption = False,
    min_gap: Annotated[
        int, typer.Option("--min-gap", min=1, help="Fewest frames between two candidates.")
    ] = DEFAULT_MIN_GAP,
) -> None:
    """Per cine: candidate key-frame indices, why each was picked and its opacification score.

    Exit code 1 only when every input failed.
    """
    records = [
        _record(result, partial(_candidates, min_gap=min_gap))
        for result in _read_each(paths, "Selecting frames")
    ]
    _finish(records, as_json, FRAMES_COLUMNS)


def _read_each(paths: list[Path], description: str) -> Iterator[CineResult]:
    """Results one at a time under a progress bar, so only one cine is in memory."""
    sources = find_inputs(paths)
    for source in progress(sources, description, total=len(sources)):
        yield try_read_cine(source)


def _record(result: CineResult, describe: Callable[[Cine], dict[str, Any]]) -> dict[str, Any]:
    """The source's path with either the cine's description or the problem that stopped it."""
    if result.cine is None:
        problem = result.error.problem if result.error else "not read"
        return {"path": str(result.source), "error": problem}
    return {"path": str(result.source), **describe(result.cine)}


def _describe(cine: Cine) -> dict[str, Any]:
    return {
        "frames": cine.n_frames,
        "rows": cine.rows,
        "cols": cine.cols,
        "fps": cine.fps,
        "primary_angle": cine.primary_angle,
        "secondary_angle": cine.secondary_angle,
        "view": view_from_angles(cine.primary_angle, cine.secondary_angle),
    }


def _candidates(cine: Cine, min_gap: int) -> dict[str, Any]:
    candidates = candidate_frames(cine.frames, min_gap=min_gap)
    return {
        "frames": cine.n_frames,
        "candidates": [candidate.index for candidate in candidates],
        "kinds": [list(candidate.kinds) for candidate in candidates],
        "opacification": [round(candidate.opacification, 4) for candidate in candidates],
    }


def _finish(records: list[dict[str, Any]], as_json: bool, columns: tuple[str, ...]) -> None:
    print_records(records, as_json, columns)
    if all("error" in record for record in records):
        raise typer.Exit(code=1)
