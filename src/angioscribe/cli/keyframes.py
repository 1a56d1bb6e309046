"""`angioscribe classify` and `angioscribe keyframes`: key-frame and laterality classification.

`classify` scores each image, or each candidate frame of each cine, and writes JSON lines;
`keyframes` chooses a study's key frames per side. Both keep going past unreadable inputs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from angioscribe.cli.output import print_records, progress, stderr, to_json
from angioscribe.errors import AngioscribeError
from angioscribe.io import find_inputs, read_studies, try_read_cine

ModelOption = Annotated[
    str,
    typer.Option("--model", help="Registered name, hf-hub:org/repo id or .safetensors path."),
]
KEYFRAME_COLUMNS = ("side", "path", "frame", "score", "note")


def _load_classifier(model: str):
    from angioscribe.keyframes.classify import KeyframeClassifier

    try:
        return KeyframeClassifier.load(model)
    except (AngioscribeError, ValueError) as error:
        stderr.print(f"error: {error}")
        raise typer.Exit(2) from None


def classify(
    paths: Annotated[list[Path], typer.Argument(help="Images, cines (DICOM, video, frame "
                                                     "folders) or folders of them.")],
    out: Annotated[Path, typer.Option("--out", help="JSON-lines file to write.")],
    model: ModelOption = "keyframe-effnetl0",
) -> None:
    """One line per image (or candidate frame of a cine): laterality, key-frame class, scores.

    Unreadable inputs get a line with an `error` field; exit code 1 only if all failed.
    """
    from angioscribe.keyframes.classify import classify_cine

    classifier = _load_classifier(model)
    sources = find_inputs(paths)
    failures = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for source in progress(sources, "Classifying", total=len(sources)):
            result = try_read_cine(source)
            if result.cine is None:
                failures += 1
                handle.write(to_json({"path": str(source), "error": str(result.error)}) + "\n")
                continue
            for score in classify_cine(classifier, result.cine):
                handle.write(to_json(score.to_record()) + "\n")
    stderr.print(f"wrote {out} ({len(sources) - failures} of {len(sources)} inputs classified)")
    if sources and failures == len(sources):
        raise typer.Exit(1)


def keyframes(
    study_dir: Annotated[Path, typer.Argument(help="Study folder (cines found recursively).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per study.")] = False,
    per_side: Annotated[int, typer.Option("--per-side", min=1, help="Key frames per side.")] = 1,
    model: ModelOption = "keyframe-effnetl0",
) -> None:
    """The study's key frame(s) per side (LCA, RCA) with their scores; a side with no
    diagnostic frame is reported missing with the reason."""
    from angioscribe.keyframes.select import select_keyframes

    if not study_dir.is_dir():
        stderr.print(f"error: {study_dir}: not a folder")
        raise typer.Exit(2)
    logging.basicConfig(level=logging.WARNING)
    classifier = _load_classifier(model)
    studies = read_studies(study_dir)
    if not studies:
        stderr.print(f"error: {study_dir}: no readable cine found")
        raise typer.Exit(1)
    for study in progress(studies, "Selecting key frames", total=len(studies)):
        result = select_keyframes(study, classifier, per_side=per_side)
        if as_json:
            print(to_json(result.to_dict()))
            continue
        rows = [{"side": side, "path": s.path, "frame": s.frame,
                 "score": s.scores[f"{side}_better"], "note": ""}
                for side, chosen in result.chosen.items() for s in chosen]
        rows += [{"side": side, "note": reason} for side, reason in result.missing.items()]
        stderr.print(f"study {result.study}: {len(result.scored)} candidate frames scored")
        print_records(rows, False, KEYFRAME_COLUMNS)
