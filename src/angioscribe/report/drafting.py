"""Draft reports of analysed studies: the chain's key frames and findings -> drafter -> records.

`analyze.analyze_paths` finds each study's key frames and the lesions on them; this module turns
one `StudyAnalysis` into the drafter's `DraftRequest` (key frames with their views, the
study's findings as clues, the clinical text) and runs a drafter on it, so the `report` command
and `analyze` write drafts the same way.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from angioscribe.errors import InputError
from angioscribe.io import try_read_cine
from angioscribe.io.images import is_image_file
from angioscribe.report.draft import Drafter, DraftRequest, KeyFrameImage, Language
from angioscribe.report.records import Draft

if TYPE_CHECKING:  # annotations only: the analysis module loads the image models
    from angioscribe.analyze import StudyAnalysis


def key_frames_of(study: StudyAnalysis) -> list[KeyFrameImage]:
    """The study's key frames, LCA first, each with the view of its cine (pixels not loaded).

    A frame's side is the one its SYNTAX segments show when they show one, else the key-frame
    classifier's: where the two differ (`side_conflict`), the segments were right on ARCADE val
    (docs/segmentation.md), and the lesions are named after them, so the draft's injection
    sentence then agrees with its findings.
    """
    views = {cine.source: cine.view for cine in study.cines}
    segment_sides = {(f["path"], f["frame"]): f.get("laterality") for f in study.findings}
    chosen = study.keyframes.get("keyframes", {})
    return [
        KeyFrameImage(str(record["path"]), int(record["frame"]),
                      segment_sides.get((record["path"], record["frame"])) or side,
                      views.get(record["path"]))
        for side in ("LCA", "RCA")
        for record in chosen.get(side, [])
    ]


def findings_of(study: StudyAnalysis) -> list[dict[str, Any]]:
    """The study's per-segment findings (`study_findings`: one per segment, QCA-measured in
    the view the stenosis model is surest of, every view that shows it listed), as clues."""
    return [dict(entry) for entry in study.study_findings]


def draft_request(study: StudyAnalysis, lang: Language, clinical_text: str | None = None,
                  study_id: str | None = None) -> DraftRequest:
    """What a drafter reads for one analysed study; an InputError when no key frame was found
    (a draft of nothing would read as a normal study)."""
    frames = key_frames_of(study)
    if not frames:
        reasons = "; ".join(study.keyframes.get("missing", {}).values()) or "no cine was read"
        raise InputError(study.key, f"no key frame to draft from ({reasons})")
    return DraftRequest(study_id or study.key, lang, frames, findings_of(study), clinical_text)


def with_pixels(request: DraftRequest) -> DraftRequest:
    """Fill in every key frame's pixels from its cine, in place (each cine read once)."""
    cines: dict[str, Any] = {}
    for frame in request.key_frames:
        if frame.pixels is None:
            if frame.path not in cines:
                result = try_read_cine(frame.path)
                if result.cine is None:
                    raise result.error or InputError(frame.path, "cannot read the key frame")
                cines[frame.path] = result.cine.frames
            frame.pixels = cines[frame.path][frame.frame]
    return request


def write_draft(drafter: Drafter, request: DraftRequest, path: str | Path,
                study_key: str) -> Draft:
    """The drafter's draft of one request, stamped with the input it came from (`path`) and
    the study key. Drafters that declare `reads_images = False` (the template) are spared
    reading the key frames' pixels."""
    if getattr(drafter, "reads_images", True):
        request = with_pixels(request)
    draft = drafter.draft(request)
    draft.path = str(path)
    draft.study = study_key
    return draft


def draft_paths(
    paths: Iterable[str | Path],
    drafters: Mapping[Language, Drafter],
    clinical_text: str | None = None,
) -> Iterator[tuple[Path, Draft | InputError]]:
    """(input, draft) for every study under each input and every language, or (input, error)
    for a study or input that cannot be drafted; the batch goes on.

    Each input is analysed on its own (`analyze.analyze_paths`, models loaded once, drafting
    left to the drafters given here), so every draft names the input it came from. An image
    file is a one-frame study whose id is the file's name; other studies go by their key
    (`io.study_key`).
    """
    from angioscribe.analyze import Segmenters, analyze_paths
    from angioscribe.keyframes.classify import KeyframeClassifier

    classifier, segmenters = KeyframeClassifier.load(), Segmenters.load()
    for path in map(Path, paths):
        with tempfile.TemporaryDirectory(prefix="angioscribe-report-") as figures:
            studies = analyze_paths([path], Path(figures), classifier=classifier,
                                    segmenters=segmenters, drafters={})
        for study in studies:
            if not study.cines:
                problems = "; ".join(error["error"] for error in study.errors)
                yield path, InputError(path, problems or "no cine found")
                continue
            study_id = path.name if is_image_file(path) else study.key
            try:
                request = draft_request(study, next(iter(drafters)), clinical_text, study_id)
                for lang, drafter in drafters.items():
                    yield path, write_draft(drafter, replace(request, lang=lang), path, study.key)
            except InputError as error:
                yield path, error
