"""`angioscribe classify` and `angioscribe keyframes`: key-frame and laterality classification.

`classify` scores each image, or each candidate frame of each cine, and writes JSON lines;
`keyframes` chooses a study's key frames per side. Both keep going past unreadable inputs,
which become error records, and exit by the contract (0 all done, 1 some failed, 3 none done).

What a folder of images is: the frames of ONE cine when a cine header sits beside them (a
MATLAB `dicominfo` dump or a `header.json` sidecar, as public cine data ships), otherwise a set
of separate images (ARCADE, exported key frames), each scored on its own and keyed by its
file. `classify --folders cine|images` says so explicitly when the guess is wrong.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from angioscribe.cli.contract import ExitCode, RecordSink, error_record, records_of
from angioscribe.cli.output import progress, stderr

if TYPE_CHECKING:
    from angioscribe.io import CineResult
    from angioscribe.keyframes.classify import KeyframeClassifier
    from angioscribe.study import Study

ModelOption = Annotated[
    str,
    typer.Option("--model", help="Registered name, hf-hub:org/repo id or .safetensors path."),
]
KEYFRAME_COLUMNS = ("side", "path", "frame", "score", "note")


class FolderKind(StrEnum):
    """How `classify` reads a folder of images."""

    auto = "auto"
    cine = "cine"
    images = "images"


def _load_classifier(model: str) -> KeyframeClassifier:
    from angioscribe.errors import AngioscribeError
    from angioscribe.keyframes.classify import KeyframeClassifier

    try:
        return KeyframeClassifier.load(model)
    except (AngioscribeError, ValueError) as error:
        stderr.print(f"error: {error}")
        raise typer.Exit(ExitCode.USAGE) from None


def classify(
    paths: Annotated[list[Path], typer.Argument(help="Images, cines (DICOM, video, frame "
                                                     "folders) or folders of them.")],
    out: Annotated[Path, typer.Option("--out", help="JSON-lines file to write.")],
    model: ModelOption = "keyframe-effnetl0",
    folders: Annotated[FolderKind, typer.Option(
        "--folders", help="A folder of images is: 'cine' (its frames), 'images' (separate "
        "images) or 'auto' (a cine when a dicominfo/header.json header is beside them).",
    )] = FolderKind.auto,
) -> None:
    """One line per image (or candidate frame of a cine): laterality, key-frame class, scores.

    Each line is written as soon as its input is done. An input that cannot be read gets a
    line with its `path` and `error`. Exit code 0 when every input was classified, 1 when
    some failed, 3 when none could be.
    """
    from angioscribe.io import find_inputs, read_cine
    from angioscribe.keyframes.classify import classify_cine

    classifier = _load_classifier(model)
    sources = _classify_sources(find_inputs(paths), folders)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle, RecordSink(True, stream=handle) as sink:
        for source in progress(sources, "Classifying", total=len(sources)):
            records = records_of(source, lambda source=source: [
                score.to_record() for score in classify_cine(classifier, read_cine(source))])
            for position, record in enumerate(records):
                sink.emit(record, inputs=int(position == 0))
        stderr.print(f"wrote {out} ({sink.done} of {len(sources)} inputs classified)")


def _classify_sources(sources: list[Path], folders: FolderKind) -> list[Path]:
    """Each folder of separate images replaced by its image files, in natural order."""
    from angioscribe.io.images import frame_files

    expanded: list[Path] = []
    for source in sources:
        images = frame_files(source) if source.is_dir() else []
        if images and not is_cine_folder(source, folders):
            expanded += images
        else:
            expanded.append(source)
    return expanded


def is_cine_folder(folder: Path, folders: FolderKind = FolderKind.auto) -> bool:
    """Whether a folder of images holds the frames of one cine (see the module docstring)."""
    from angioscribe.io.images import DICOMINFO_PATTERN, SIDECAR_NAME

    if folders is not FolderKind.auto:
        return folders is FolderKind.cine
    return (folder / SIDECAR_NAME).is_file() or any(folder.glob(DICOMINFO_PATTERN))


def keyframes(
    study_dir: Annotated[Path, typer.Argument(help="Study folder (cines found recursively).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per study.")] = False,
    per_side: Annotated[int, typer.Option("--per-side", min=1, help="Key frames per side.")] = 1,
    model: ModelOption = "keyframe-effnetl0",
) -> None:
    """The study's key frame(s) per side (LCA, RCA) with their scores; a side with no
    diagnostic frame is reported missing with the reason.

    A cine that cannot be read is an error record (with `--json`, one line before the
    studies), and a side missing from a study with unread cines is reported unknown, not
    absent. Exit code 0 when every cine was read, 1 when some failed, 3 when none was.
    """
    from angioscribe.keyframes.select import missing_with_unread, select_keyframes

    if not study_dir.is_dir():
        stderr.print(f"error: {study_dir}: not a folder")
        raise typer.Exit(ExitCode.USAGE)
    classifier = _load_classifier(model)
    with RecordSink(as_json, KEYFRAME_COLUMNS) as sink:
        studies, unread = _read_study_folder(study_dir)
        for record in unread:
            sink.emit(record)
        for study in progress(studies, "Selecting key frames", total=len(studies)):
            result = select_keyframes(study, classifier, per_side=per_side)
            result.missing = missing_with_unread(result.missing, len(unread))
            if as_json:
                sink.emit(result.to_dict(), inputs=len(study.cines))
                continue
            stderr.print(f"study {result.study}: {len(result.scored)} candidate frames scored")
            for position, row in enumerate(_keyframe_rows(result)):
                sink.emit(row, inputs=len(study.cines) if position == 0 else 0)


def _read_study_folder(folder: Path) -> tuple[list[Study], list[dict[str, Any]]]:
    """The folder's readable cines grouped into studies (`io.read_studies`), and an error
    record for each source that could not be read."""
    from angioscribe.io import read_studies

    unread: list[CineResult] = []
    studies = read_studies(folder, unread)
    return studies, [error_record(result.source, result.error.problem if result.error
                                  else "not read") for result in unread]


def _keyframe_rows(result: Any) -> list[dict[str, Any]]:
    """Table rows: each chosen key frame, then each missing side with its reason."""
    rows = [{"side": side, "path": score.path, "frame": score.frame,
             "score": score.scores[f"{side}_better"], "note": ""}
            for side, chosen in result.chosen.items() for score in chosen]
    return rows + [{"side": side, "note": reason} for side, reason in result.missing.items()]
