"""`angioscribe ingest` and `angioscribe frames`: read cines, report what they hold.

Both read every source under the given paths, one record per source, printed as soon as it is
done, and keep going past sources that fail (the record carries an `error` field instead).
Exit codes follow `angioscribe.cli.contract`: 0 all read, 1 some failed, 3 none read.
Heavy libraries (pydicom, OpenCV, scipy) are imported inside the commands, so `--help` is fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from angioscribe.cli.contract import RecordSink, record_of
from angioscribe.cli.output import JsonOption, progress
from angioscribe.frames import DEFAULT_MIN_GAP

if TYPE_CHECKING:
    from angioscribe.cine import Cine

PathsArgument = Annotated[
    list[Path],
    typer.Argument(
        help="DICOM files, videos, frame-image folders or study folders (searched recursively)."
    ),
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
    "warnings",
    "error",
)
FRAMES_COLUMNS = ("path", "frames", "candidates", "warnings", "error")


def ingest(paths: PathsArgument, as_json: JsonOption = False) -> None:
    """Per cine: frames, size, frame rate, C-arm angles and view, or why it could not be read.

    Exit code 0 when every input was read, 1 when some failed, 3 when none could be read.
    """
    _report_each(paths, "Reading cines", _describe, as_json, INGEST_COLUMNS)


def frames(
    paths: PathsArgument,
    as_json: JsonOption = False,
    min_gap: Annotated[
        int, typer.Option("--min-gap", min=1, help="Fewest frames between two candidates.")
    ] = DEFAULT_MIN_GAP,
) -> None:
    """Per cine: candidate key-frame indices, why each was picked and its opacification score.

    Exit code 0 when every input was read, 1 when some failed, 3 when none could be read.
    """
    _report_each(
        paths, "Selecting frames", lambda cine: _candidates(cine, min_gap), as_json, FRAMES_COLUMNS
    )


def _report_each(
    paths: list[Path],
    description: str,
    describe: Callable[[Cine], dict[str, Any]],
    as_json: bool,
    columns: tuple[str, ...],
) -> None:
    """One record per source, read one at a time (one cine in memory) and printed when done.

    A record carries `warnings` when the reader dropped header values (NaN, out of range).
    """
    from angioscribe.io import find_inputs, read_cine

    def record(cine: Cine) -> dict[str, Any]:
        return {**describe(cine), **({"warnings": cine.warnings} if cine.warnings else {})}

    sources = find_inputs(paths)
    with RecordSink(as_json, columns) as sink:
        for source in progress(sources, description, total=len(sources)):
            sink.emit(record_of(source, lambda source=source: record(read_cine(source))))


def _describe(cine: Cine) -> dict[str, Any]:
    from angioscribe.anatomy import view_from_angles

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
    from angioscribe.frames import candidate_frames

    candidates = candidate_frames(cine.frames, min_gap=min_gap)
    return {
        "frames": cine.n_frames,
        "candidates": [candidate.index for candidate in candidates],
        "kinds": [list(candidate.kinds) for candidate in candidates],
        "opacification": [round(candidate.opacification, 4) for candidate in candidates],
    }
