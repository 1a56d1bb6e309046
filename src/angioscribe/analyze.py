"""`analyze`: the whole chain that exists so far, over every study in a folder.

Per cine: candidate frames, then the key-frame classifier's scores on them. Per study: the key
frame(s) of each side, chosen from all its cines, and on each key frame the SYNTAX segments and
stenoses turned into per-segment findings. Results are written as JSON plus figures.
Each later stage (findings, reports) adds its part to `CineAnalysis`/`StudyAnalysis` here, so
`angioscribe analyze` and `make demo` always run the full chain.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from angioscribe.anatomy import view_from_angles
from angioscribe.cine import Cine
from angioscribe.cli.contract import attempt, json_safe
from angioscribe.figures import plot_candidates, plot_keyframes
from angioscribe.findings import plot_findings, segment_frame
from angioscribe.frames import DEFAULT_MIN_GAP, Candidate, candidate_frames
from angioscribe.io import find_inputs, study_key, try_read_cine
from angioscribe.keyframes.classify import FrameScore, KeyframeClassifier, classify_cine
from angioscribe.keyframes.select import choose_keyframes
from angioscribe.models.segmenter import Segmenter
from angioscribe.progress import progress

T = TypeVar("T")


@dataclass
class CineAnalysis:
    """What the chain found in one cine; `figure` is the PNG written for it, if any."""

    source: str
    header: dict[str, Any]
    view: str | None
    candidates: list[Candidate]
    frame_scores: list[FrameScore]
    figure: str | None = None


@dataclass
class Segmenters:
    """The two localisation models run on every key frame."""

    syntax: Segmenter
    stenosis: Segmenter

    @classmethod
    def load(cls) -> Segmenters:
        return cls(Segmenter.from_name("syntax-seg"), Segmenter.from_name("stenosis-seg"))


@dataclass
class StudyAnalysis:
    """One study: its cines' analyses, its key frames and the inputs that could not be read."""

    key: str
    cines: list[CineAnalysis] = field(default_factory=list)
    keyframes: dict[str, Any] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    figure: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def analyze_cine(
    cine: Cine, classifier: KeyframeClassifier, min_gap: int = DEFAULT_MIN_GAP
) -> CineAnalysis:
    """Every stage that works on a single cine."""
    candidates = candidate_frames(cine.frames, min_gap=min_gap)
    scores = classify_cine(classifier, cine, frames=[c.index for c in candidates])
    return CineAnalysis(
        source=cine.source,
        header=cine.header(),
        view=view_from_angles(cine.primary_angle, cine.secondary_angle),
        candidates=candidates,
        frame_scores=scores,
    )


def analyze_paths(
    paths: Iterable[str | Path],
    out_dir: Path,
    min_gap: int = DEFAULT_MIN_GAP,
    classifier: KeyframeClassifier | None = None,
    segmenters: Segmenters | None = None,
    checkpoint: Callable[[list[StudyAnalysis]], None] | None = None,
) -> list[StudyAnalysis]:
    """Analyse every cine under `paths`, grouped into studies; figures go under `out_dir`.

    Cines are read one at a time; only frames the classifier calls "better" are kept in
    memory, for the key-frame figure. An input that fails (unreadable, or a stage that breaks
    on it) is recorded in its study's `errors` and the rest goes on. Figures are written as
    each cine finishes, and `checkpoint(studies)` is called after every cine and every study
    (the CLI writes analysis.json there), so a batch that dies late keeps what it did.
    Models are loaded when the first input needs them (none when nothing can be read), and
    outside the per-input guard: a model that does not load stops the run, it is no input's
    fault.
    """
    load_classifier = _first_use(classifier, KeyframeClassifier.load)
    load_segmenters = _first_use(segmenters, Segmenters.load)
    studies: dict[str, StudyAnalysis] = {}
    better_frames: dict[tuple[str, int], np.ndarray] = {}
    save = checkpoint or (lambda _: None)
    for root in map(Path, paths):
        sources = find_inputs([root])
        for source in progress(sources, f"Analysing {root}", total=len(sources)):
            result = try_read_cine(source)
            key = study_key(result, root)
            study = studies.setdefault(key, StudyAnalysis(key))
            if result.cine is None:
                problem = result.error.problem if result.error else "not read"
                study.errors.append({"path": str(source), "error": problem})
            else:
                analysis = _attempt(study, source, partial(
                    _analyze_source, result.cine, load_classifier(), min_gap, out_dir,
                    better_frames))
                study.cines += [analysis] if analysis else []
            save(list(studies.values()))
    for study in (study for study in studies.values() if study.cines):
        _attempt(study, study.key, partial(
            _choose_keyframes, study, better_frames, load_segmenters(), out_dir))
        save(list(studies.values()))
    return list(studies.values())


def _first_use(given: T | None, load: Callable[[], T]) -> Callable[[], T]:
    """A getter for `given`, or for what `load()` returns, called once on first use."""
    loaded: list[T] = [] if given is None else [given]

    def get() -> T:
        if not loaded:
            loaded.append(load())
        return loaded[0]

    return get


def _analyze_source(
    cine: Cine,
    classifier: KeyframeClassifier,
    min_gap: int,
    out_dir: Path,
    better_frames: dict[tuple[str, int], np.ndarray],
) -> CineAnalysis:
    """One cine's analysis and figure; its "better" frames kept for the key-frame stage."""
    analysis = analyze_cine(cine, classifier, min_gap=min_gap)
    figure = out_dir / "figures" / f"{_slug(Path(cine.source))}_candidates.png"
    analysis.figure = str(plot_candidates(cine, analysis.candidates, figure))
    for score in analysis.frame_scores:
        if score.keyframe == "better":
            better_frames[(score.path, score.frame)] = cine.frames[score.frame]
    return analysis


def _attempt(study: StudyAnalysis, source: str | Path, work: Callable[[], T]) -> T | None:
    """One stage of the chain's result; a failure becomes an entry of the study's `errors`
    and the other cines and studies go on (`contract.attempt`)."""
    result, error = attempt(source, work)
    if error is not None:
        study.errors.append(error)
    return result


def missing_with_unread(missing: dict[str, str], unread: int) -> dict[str, str]:
    """Missing sides' reasons, saying the side is unknown when some cines could not be read.

    "No RCA injection found" is a finding only if every cine was looked at; with unread cines
    the injection may be in one of them, so the reason says what is known and what is not.
    """
    if not unread:
        return missing
    cines = "1 cine" if unread == 1 else f"{unread} cines"
    return {side: f"unknown: {cines} could not be read; in the rest, {reason}"
            for side, reason in missing.items()}


def _choose_keyframes(
    study: StudyAnalysis,
    better_frames: dict[tuple[str, int], np.ndarray],
    segmenters: Segmenters,
    out_dir: Path,
) -> None:
    """The study's key frames per side from all its cines' scores, their findings, figures."""
    scored = [score for cine in study.cines for score in cine.frame_scores]
    chosen = choose_keyframes(study.key, scored)
    record = chosen.to_dict()
    study.keyframes = {"keyframes": record["keyframes"],
                       "missing": missing_with_unread(record["missing"], len(study.errors))}
    images = {
        side: [(score, better_frames[(score.path, score.frame)]) for score in frames]
        for side, frames in chosen.chosen.items()
    }
    figure = out_dir / "figures" / f"{_slug(Path(study.key))}_keyframes.png"
    study.figure = str(plot_keyframes(study.key, images, chosen.missing, figure))
    for side, items in images.items():
        for score, frame in items:
            overlay = out_dir / "figures" / f"{_slug(Path(score.path))}_{score.frame}_findings.png"
            findings = keyframe_findings(frame, segmenters, overlay)
            study.findings.append(
                {
                    "side": side,
                    **findings,
                    "side_conflict": findings["laterality"] not in (None, side),
                    "path": score.path,
                    "frame": score.frame,
                }
            )


def keyframe_findings(frame: np.ndarray, segmenters: Segmenters, overlay: Path) -> dict[str, Any]:
    """Segments and stenoses of one key frame as per-segment findings, plus the overlay PNG.

    The findings' `laterality` is the side the SYNTAX segments show; the key frame's `side` is
    the key-frame classifier's. Both are right on 99-100 % of ARCADE val frames but can differ
    on other frames; the caller flags a difference (`side_conflict`) for the reviewer rather
    than forcing one onto the other: on ARCADE val the segments were right on both frames
    where they differed, and lesion names follow the segments (docs/segmentation.md)."""
    segments, findings = segment_frame(frame, segmenters.syntax, segmenters.stenosis)
    return {**findings.to_dict(), "figure": str(plot_findings(frame, segments, findings, overlay))}


def write_analysis(studies: list[StudyAnalysis], out_dir: Path) -> Path:
    """All studies' results as one JSON file in `out_dir` (valid JSON: no NaN/Infinity).

    Written to a temporary file and renamed, so a batch killed while writing leaves the last
    complete file rather than half of a new one.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "analysis.json"
    partial = path.with_suffix(".json.partial")
    records = json_safe([study.to_dict() for study in studies])
    partial.write_text(json.dumps(records, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    partial.replace(path)
    return path


def _slug(path: Path) -> str:
    """A file-name-safe name for a source, unique enough within one run."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "_".join(path.parts[-2:]))
