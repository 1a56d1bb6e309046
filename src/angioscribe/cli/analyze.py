"""`angioscribe analyze`: the whole chain over a study folder, results as JSON + figures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from angioscribe.cli.contract import finish
from angioscribe.cli.output import print_records, stderr
from angioscribe.cli.refusal import refuse
from angioscribe.errors import AngioscribeError
from angioscribe.frames import DEFAULT_MIN_GAP

if TYPE_CHECKING:
    from collections.abc import Sequence

STUDY_COLUMNS = ("study", "cines", "unreadable", "findings", "dominance", "SYNTAX")


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
    video_model: Annotated[str | None, typer.Option(
        "--video-model", help="Study-level video model (registered name, hf-hub:ORG/REPO or "
        ".safetensors path): adds video_predictions per study (docs/video.md).")] = None,
) -> None:
    """Run every stage that exists on each study; inputs that fail are listed, not fatal.

    analysis.json holds one entry per study: findings per frame read and per segment (%
    diameter stenosis by QCA), coronary dominance, the anatomical SYNTAX score (lesion part,
    with what it could not assess), EN and JA draft reports (also as <out>/<study>/report_en.txt and
    report_ja.txt), with --video-model the video model's per-segment predictions, and the
    models that made them; the inputs that failed are in `errors` (`path`, `error`). It is
    rewritten after every cine, so a batch that dies late keeps what it did. Exit code 0 when
    every input was analysed, 1 when some failed, 3 when none was or the video model cannot
    be loaded.
    """
    from angioscribe.analyze import analyze_paths, write_analysis

    video = None
    if video_model:
        from angioscribe.video.zoo import create_video_model

        try:
            video = create_video_model(video_model)
        except AngioscribeError as error:
            refuse(error, as_json, source=video_model)
    studies = analyze_paths(paths, out, min_gap=min_gap, video_model=video,
                            checkpoint=lambda so_far: write_analysis(so_far, out))
    written = write_analysis(studies, out)
    print_records([study.to_dict() if as_json else {
        "study": study.key, "cines": len(study.cines), "unreadable": len(study.errors),
        "findings": findings_summary(study.study_findings),
        "dominance": study.dominance["value"] if study.dominance else "not read",
        "SYNTAX": syntax_summary(study.syntax_score)}
        for study in studies], as_json, STUDY_COLUMNS)
    stderr.print(f"results: {written}")
    finish(sum(len(study.cines) for study in studies),
           sum(len(study.errors) for study in studies))


def findings_summary(study_findings: Sequence[dict[str, Any]]) -> str:
    """A study's findings in a table cell: "#6 72 %, #12b not measured", or "none"."""
    from angioscribe.findings import percent_text

    return ", ".join(f"#{entry['segment']} {percent_text(entry['stenosis_percent'])}"
                     for entry in study_findings) or "none"


def syntax_summary(score: dict[str, Any] | None) -> str:
    """A study's SYNTAX score in a table cell: "17", "7 (right assumed; 9 if left)" when the
    dominance is unknown, "not scored" when no frame was read."""
    if score is None:
        return "not scored"
    if score["dominance_assumed"]:
        return f"{score['value']:g} (right assumed; {score['if_left_dominant']:g} if left)"
    return f"{score['value']:g}"
