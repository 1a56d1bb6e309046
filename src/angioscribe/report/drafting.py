"""Draft reports of analysed studies: the chain's key frames and findings -> drafter -> records.

`analyze.analyze_paths` finds each study's key frames and the lesions on them; this module turns
one `StudyAnalysis` into the drafter's `DraftRequest` (key frames with their views, the
study's findings as clues, the clinical text) and runs a drafter on it, so the `report` command
and `analyze` write drafts the same way. `draft_corpus` drafts the records of a report corpus
under their own ids, so every drafter is scored against the corpus by `evaluate reports`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from angioscribe.errors import InputError
from angioscribe.io import try_read_cine
from angioscribe.io.images import is_image_file
from angioscribe.report.draft import Drafter, DraftRequest, KeyFrameImage, Language
from angioscribe.report.records import Draft

if TYPE_CHECKING:  # annotations only: the analysis module loads the image models
    from angioscribe.analyze import StudyAnalysis
    from angioscribe.report.corpus import CorpusRecord

# Where a corpus record's clues come from: the record's `clues` when it has them, else its
# findings ("corpus"); its truth findings ("truth"); the image chain on its images ("models").
ClueSource = Literal["corpus", "truth", "models"]
CLUE_SOURCES: tuple[ClueSource, ...] = ("corpus", "truth", "models")


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
            frame.pixels = cines[frame.path][frame.frame].copy()  # the cine itself is freed
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
    analyse = image_chain()
    for path in map(Path, paths):
        for study in analyse([path]):
            if not study.cines:
                yield path, InputError(path, _unread(study))
                continue
            study_id = path.name if is_image_file(path) else study.key
            try:
                request = draft_request(study, next(iter(drafters)), clinical_text, study_id)
                for lang, drafter in drafters.items():
                    yield path, write_draft(drafter, replace(request, lang=lang), path, study.key)
            except InputError as error:
                yield path, error


def image_chain() -> Callable[[list[Path]], list[StudyAnalysis]]:
    """`analyze`'s chain without its drafts, the models loaded once: inputs -> their studies
    (figures go to a temporary folder and are dropped)."""
    from angioscribe.analyze import Segmenters, analyze_paths
    from angioscribe.keyframes.classify import KeyframeClassifier

    classifier, segmenters = KeyframeClassifier.load(), Segmenters.load()

    def analyse(paths: list[Path]) -> list[StudyAnalysis]:
        with tempfile.TemporaryDirectory(prefix="angioscribe-report-") as figures:
            return analyze_paths(paths, Path(figures), classifier=classifier,
                                 segmenters=segmenters, drafters={})

    return analyse


def _unread(study: StudyAnalysis) -> str:
    return "; ".join(error["error"] for error in study.errors) or "no cine found"


def corpus_requests(records: Iterable[CorpusRecord], clues: ClueSource = "corpus"
                    ) -> Iterator[tuple[CorpusRecord, DraftRequest | InputError]]:
    """What a drafter reads for each corpus record, or why the record cannot be drafted.

    With clues from the corpus or the truth, the key frames are the record's images; with
    "models" the image chain reads the record's images as `report` reads a study (key frames,
    findings), once per id for all its languages. Made once, the requests serve every drafter
    (bench/bench_drafters.py).
    """
    analyse = image_chain() if clues == "models" else None
    analysed: dict[str, DraftRequest | InputError] = {}
    for record in records:
        if analyse is None:
            findings = record.findings if clues == "truth" else record.prompt_findings
            yield record, DraftRequest(record.id, record.lang, record.images, findings,
                                       record.clinical_text)
            continue
        if record.id not in analysed:
            analysed[record.id] = _analysed_request(record, analyse)
        found = analysed[record.id]
        yield record, (found if isinstance(found, InputError) else
                       replace(found, lang=record.lang, clinical_text=record.clinical_text))


def draft_corpus(
    records: Iterable[CorpusRecord],
    drafters: Mapping[Language, Drafter],
    clues: ClueSource = "corpus",
    source: str | Path = "",
) -> Iterator[tuple[CorpusRecord, Draft | InputError]]:
    """(record, draft) for every corpus record in a language of `drafters`, the draft under
    the record's id, so `evaluate reports --truth CORPUS` scores it; (record, error) for a
    record that cannot be drafted, and the batch goes on. `source` (the corpus file) is the
    drafts' `path`; `clues` as for `corpus_requests`."""
    chosen = (record for record in records if record.lang in drafters)
    for record, request in corpus_requests(chosen, clues):
        if isinstance(request, InputError):
            yield record, request
            continue
        try:
            yield record, write_draft(drafters[record.lang], request, source, record.id)
        except InputError as error:
            yield record, error


def _analysed_request(record: CorpusRecord, analyse: Callable[[list[Path]], list[StudyAnalysis]]
                      ) -> DraftRequest | InputError:
    """The request the image chain makes of a record's images (one study), or why not."""
    paths = [Path(path) for path in dict.fromkeys(image.path for image in record.images)]
    studies = analyse(paths)
    read = [study for study in studies if study.cines]
    if len(read) != 1:
        problem = (f"its images form {len(read)} studies" if read
                   else "; ".join(map(_unread, studies)) or "no image read")
        return InputError(record.id, problem)
    try:
        return draft_request(read[0], record.lang, record.clinical_text, record.id)
    except InputError as error:
        return error
