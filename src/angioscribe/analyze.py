"""`analyze`: the whole chain that exists so far, over every study in a folder.

Per cine: candidate frames, then the key-frame classifier's scores on them. Per study: the key
frame(s) of each side, chosen from all its cines; on each key frame and on the best frame of
every other cine, the SYNTAX segments and stenoses turned into named, QCA-measured lesions;
those consolidated into one finding per segment (`study_findings`); and EN/JA draft reports
from them. With a study-level video model (optional), its per-segment predictions from all the
study's cines (`video_predictions`) sit beside the frame findings, which stay the drafts'
clues. Results are written as JSON plus figures and report texts.
Each later stage (findings, reports) adds its part to `CineAnalysis`/`StudyAnalysis` here, so
`angioscribe analyze` and `make demo` always run the full chain.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from angioscribe import __version__
from angioscribe.anatomy import view_from_angles
from angioscribe.batch import attempt, json_safe
from angioscribe.cine import Cine
from angioscribe.dominance import study_dominance
from angioscribe.figures import plot_candidates, plot_keyframes
from angioscribe.findings import plot_findings, segment_frame, study_findings
from angioscribe.frames import DEFAULT_MIN_GAP, Candidate, candidate_frames
from angioscribe.io import find_inputs, read_cine, study_key, try_read_cine
from angioscribe.keyframes.classes import class_name
from angioscribe.keyframes.classify import FrameScore, KeyframeClassifier, classify_cine
from angioscribe.keyframes.select import (
    KeyFrames,
    choose_keyframes,
    missing_with_refused,
    missing_with_unread,
)
from angioscribe.models.registry import ModelEntry, shipped_weights_dir
from angioscribe.models.segmenter import Segmenter
from angioscribe.progress import progress
from angioscribe.qca import mm_per_pixel
from angioscribe.report.corpus import LANGUAGES
from angioscribe.report.draft import Drafter, Language
from angioscribe.report.drafting import draft_request, key_frames_of, write_draft
from angioscribe.scope import check_scope_batch
from angioscribe.study import Study
from angioscribe.syntax_score import syntax_score

if TYPE_CHECKING:
    from angioscribe.video.study_model import VideoStudyModel

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
    out_of_scope: dict[int, dict[str, Any]] = field(default_factory=dict)

    def scores_in_scope(self) -> list[FrameScore]:
        """The frame scores key frames and lesions may come from: not the frames the scope
        guard refused as no coronary angiogram (`out_of_scope`, frame -> its verdict)."""
        return [score for score in self.frame_scores if score.frame not in self.out_of_scope]


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
    """One study: its cines' analyses, its key frames, the findings of each frame read and per
    segment, its coronary dominance and anatomical SYNTAX score (None until a frame was read),
    the inputs that could not be read, and what produced it (`provenance`). Figure paths are
    relative to the output folder, so a result folder can be moved whole."""

    key: str
    cines: list[CineAnalysis] = field(default_factory=list)
    keyframes: dict[str, Any] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    study_findings: list[dict[str, Any]] = field(default_factory=list)
    dominance: dict[str, Any] | None = None
    syntax_score: dict[str, Any] | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    figure: str | None = None
    drafts: dict[str, dict[str, Any]] = field(default_factory=dict)
    video_predictions: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

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
    drafters: Mapping[Language, Drafter] | None = None,
    video_model: tuple[VideoStudyModel, ModelEntry] | None = None,
) -> list[StudyAnalysis]:
    """Analyse every cine under `paths`, grouped into studies; figures go under `out_dir`,
    and each study's draft reports (`drafters` per language, the default drafter in EN and
    JA when None, none when empty) under `out_dir/<study>/report_<lang>.txt`.

    Cines are read one at a time; only frames the classifier calls "better" are kept in
    memory, for the key-frame figure. An input that fails (unreadable, or a stage that breaks
    on it) is recorded in its study's `errors` and the rest goes on. Figures are written as
    each cine finishes, and `checkpoint(studies)` is called after a cine or a study at most
    every `CHECKPOINT_SECONDS` and once more when the run ends or is interrupted (the CLI
    writes analysis.json there): a batch that dies late keeps what it did, and a batch of
    thousands of cines does not rewrite a growing file after each one.
    Models are loaded when the first input needs them (none when nothing can be read), and
    outside the per-input guard: a model that does not load stops the run, it is no input's
    fault. `video_model` (model, entry), when given, adds each study's
    `video_predictions`.
    """
    load_classifier = _first_use(classifier, KeyframeClassifier.load)
    load_segmenters = _first_use(segmenters, Segmenters.load)
    load_drafters = _first_use(drafters, default_drafters)
    studies: dict[str, StudyAnalysis] = {}
    better_frames: dict[tuple[str, int], np.ndarray] = {}
    save = _throttled(checkpoint or (lambda _: None), CHECKPOINT_SECONDS)
    try:
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
            _attempt(study, study.key, partial(_write_drafts, study, load_drafters(), out_dir))
            if video_model:
                _attempt(study, study.key, partial(_predict_video, study, video_model[0]))
            study.provenance = provenance(load_classifier(), load_segmenters(), load_drafters(),
                                          video_model[1] if video_model else None)
            save(list(studies.values()))
    finally:
        save(list(studies.values()), force=True)
    return list(studies.values())


CHECKPOINT_SECONDS = 10.0  # the most work a killed batch can lose from analysis.json


def _throttled(checkpoint: Callable[[list[StudyAnalysis]], None], seconds: float
               ) -> Callable[..., None]:
    """`checkpoint`, called at most every `seconds` unless `force`d."""
    last = -math.inf

    def save(studies: list[StudyAnalysis], force: bool = False) -> None:
        nonlocal last
        if force or time.monotonic() - last >= seconds:
            checkpoint(studies)
            last = time.monotonic()

    return save


def default_drafters() -> dict[Language, Drafter]:
    """The default drafter (the registry's `DEFAULT_DRAFTER`) in English and Japanese."""
    from angioscribe.report.drafters import DEFAULT_DRAFTER, create_drafter

    return {lang: create_drafter(DEFAULT_DRAFTER, lang) for lang in LANGUAGES}


def _write_drafts(study: StudyAnalysis, drafters: Mapping[Language, Drafter],
                  out_dir: Path) -> None:
    """The study's drafts, in analysis.json and as `<out>/<study>/report_<lang>.txt`, with
    its `study_findings` as the clues. None without a key frame: a draft of nothing would
    read as a normal study (`keyframes.missing` says why there is none)."""
    if not drafters or not key_frames_of(study):
        return
    folder = out_dir / _slug(Path(study.key))
    folder.mkdir(parents=True, exist_ok=True)
    for lang, drafter in drafters.items():
        draft = write_draft(drafter, draft_request(study, lang), study.key, study.key)
        text_file = folder / f"report_{lang}.txt"
        text_file.write_text(draft.text + "\n", encoding="utf-8")
        study.drafts[lang] = {"model": draft.model, "text": draft.text,
                              "file": _relative(text_file, out_dir)}


def provenance(classifier: KeyframeClassifier, segmenters: Segmenters,
               drafters: Mapping[Language, Drafter], video: ModelEntry | None = None
               ) -> dict[str, Any]:
    """What produced a study's results: angioscribe's version, each image model's name,
    weights source and weights hash (the video model's too, when one ran), and the drafter
    of each language, so a result can be traced to the exact models that made it."""
    entries = {"keyframe": classifier.entry, "syntax": segmenters.syntax.entry,
               "stenosis": segmenters.stenosis.entry} | ({"video": video} if video else {})
    return {
        "angioscribe": __version__,
        "models": {role: {"name": entry.name, "weights": entry.weights,
                          "sha256": weights_sha256(entry.weights)}
                   for role, entry in entries.items()},
        "drafters": {lang: drafter.name for lang, drafter in drafters.items()},
    }


@cache
def weights_sha256(weights: str) -> str | None:
    """The first 12 hex digits of the SHA-256 of a shipped weights file ("shipped:name"),
    computed once per run; None for weights not shipped with angioscribe (a hub id or a
    path names them already)."""
    kind, _, location = weights.partition(":")
    path = shipped_weights_dir() / location
    if kind != "shipped" or not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def _first_use(given: T | None, load: Callable[[], T]) -> Callable[[], T]:
    """A getter for `given`, or for what `load()` returns, called once on first use."""
    return cache(load) if given is None else lambda: given


def _analyze_source(
    cine: Cine,
    classifier: KeyframeClassifier,
    min_gap: int,
    out_dir: Path,
    better_frames: dict[tuple[str, int], np.ndarray],
) -> CineAnalysis:
    """One cine's analysis and figure; its "better" frames kept for the key-frame stage."""
    analysis = analyze_cine(cine, classifier, min_gap=min_gap)
    figure = out_dir / "figures" / f"{_figure_stem(cine.source)}_candidates.png"
    analysis.figure = _relative(plot_candidates(cine, analysis.candidates, figure), out_dir)
    better = [score.frame for score in analysis.frame_scores if score.keyframe == "better"]
    verdicts = check_scope_batch(cine.frames[better]) if better else []
    for frame, verdict in zip(better, verdicts, strict=True):
        if verdict.in_scope:
            better_frames[(cine.source, frame)] = cine.frames[frame]
        else:  # not a coronary angiogram: no key frame, no segments, no lesions from it
            analysis.out_of_scope[frame] = verdict.to_record()
    return analysis


def _predict_video(study: StudyAnalysis, model: VideoStudyModel) -> None:
    """The video model's per-segment predictions from the study's first `max_videos` cines
    (read again: the chain keeps no whole cine in memory), as `angioscribe predict` writes
    them."""
    from angioscribe.video.predict import predict_study

    cines = [read_cine(cine.source) for cine in study.cines[: model.config.max_videos]]
    study.video_predictions = predict_study(model, Study(study.key, cines),
                                            study.key)["predictions"]


def _attempt(study: StudyAnalysis, source: str | Path, work: Callable[[], T]) -> T | None:
    """One stage of the chain's result; a failure becomes an entry of the study's `errors`
    and the other cines and studies go on (`batch.attempt`)."""
    result, error = attempt(source, work)
    if error is not None:
        study.errors.append(error)
    return result


def _choose_keyframes(
    study: StudyAnalysis,
    better_frames: dict[tuple[str, int], np.ndarray],
    segmenters: Segmenters,
    out_dir: Path,
) -> None:
    """The study's key frames per side from all its cines' scores, the findings of every
    cine's best frame (the key frames first), the study's dominance, findings per segment and
    SYNTAX score, figures."""
    scored = [score for cine in study.cines for score in cine.scores_in_scope()]
    chosen = choose_keyframes(study.key, scored)
    record = chosen.to_dict()
    refused = sum(len(cine.out_of_scope) for cine in study.cines)
    missing = missing_with_refused(record["missing"], refused)
    study.keyframes = {"keyframes": record["keyframes"],
                       "missing": missing_with_unread(missing, len(study.errors))}
    images = {
        side: [(score, better_frames[(score.path, score.frame)]) for score in frames]
        for side, frames in chosen.chosen.items()
    }
    figure = out_dir / "figures" / f"{_figure_stem(study.key)}_keyframes.png"
    study.figure = _relative(plot_keyframes(study.key, images, chosen.missing, figure), out_dir)
    cines = {cine.source: cine for cine in study.cines}
    for side, score, key_frame in frames_to_read(chosen, study.cines):
        cine = cines[score.path]
        overlay = out_dir / "figures" / f"{_figure_stem(score.path)}_{score.frame}_findings.png"
        role = f"{side} key frame" if key_frame else f"best {side} frame of the cine"
        view = cine.view or "view unknown"
        title = f"{Path(score.path).name} frame {score.frame}, {view}, {role}"
        findings = keyframe_findings(better_frames[(score.path, score.frame)], segmenters,
                                     overlay, cine_mm_per_pixel(cine), title, side)
        study.findings.append({
            "side": side,
            **findings,
            "figure": _relative(Path(findings["figure"]), out_dir),
            "side_conflict": findings["laterality"] not in (None, side),
            "path": score.path,
            "frame": score.frame,
            "view": cine.view,
            "key_frame": key_frame,
        })
    if not study.findings:  # nothing read: no dominance, and no score that would read as 0
        return
    study.dominance = study_dominance(study.findings)
    study.study_findings = study_findings(study.findings, study.dominance["value"])
    study.syntax_score = syntax_score(study.study_findings, study.dominance["value"])


def frames_to_read(chosen: KeyFrames,
                   cines: list[CineAnalysis]) -> list[tuple[str, FrameScore, bool]]:
    """(side, frame, is a key frame) for every frame whose lesions are read: the key frames of
    each side, then the best "better" frame of every other cine (a lesion may show in one
    projection only). Only "better" frames qualify: they are the ones fully opacified."""
    picked = [(side, score, True) for side, scores in chosen.chosen.items() for score in scores]
    read = {score.path for _, score, _ in picked}
    for cine in (cine for cine in cines if cine.source not in read):
        best = choose_keyframes(cine.source, cine.scores_in_scope()).chosen
        if best:
            side = max(best, key=lambda s: best[s][0].scores[class_name(s, "better")])
            picked.append((side, best[side][0], False))
    return picked


def cine_mm_per_pixel(cine: CineAnalysis) -> float | None:
    """Millimetres per pixel at the isocentre from the cine's header; None when unknown."""
    header = cine.header
    return mm_per_pixel(header.get("pixel_spacing_mm"), header.get("sid_mm"),
                        header.get("sod_mm"))


def keyframe_findings(frame: np.ndarray, segmenters: Segmenters, overlay: Path,
                      mm_per_px: float | None = None, title: str = "",
                      side: str | None = None) -> dict[str, Any]:
    """Segments and stenoses of one key frame as per-segment findings, each lesion measured
    (QCA, in mm when `mm_per_px` is known), plus the overlay PNG titled `title`.

    The findings' `laterality` is the side the SYNTAX segments show; the key frame's `side` is
    the key-frame classifier's. Both are right on 99-100 % of ARCADE val frames but can differ
    on other frames; the caller flags a difference (`side_conflict`) for the reviewer rather
    than forcing one onto the other: on ARCADE val the segments were right on both frames
    where they differed, and lesion names follow the segments (docs/segmentation.md); `side`
    (the classifier's) names them only where the segments show no side."""
    segments, findings = segment_frame(frame, segmenters.syntax, segmenters.stenosis, mm_per_px,
                                       side)
    figure = plot_findings(frame, segments, findings, overlay, title)
    return {**findings.to_dict(), "figure": str(figure)}


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


def _relative(path: Path, out_dir: Path) -> str:
    """An output file's path as analysis.json records it: relative to the output folder."""
    return path.relative_to(out_dir).as_posix()


def _slug(path: Path) -> str:
    """A file-name-safe name for a source, unique enough within one run."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "_".join(path.parts[-2:]))


def _figure_stem(source: str | Path) -> str:
    """A figure's file name for a source: readable, plus a hash of the whole path, since the
    studies of a simulated dataset (or of one archive) repeat the same folder and file names
    and one study's figures would otherwise replace another's."""
    digest = hashlib.sha1(str(Path(source).resolve()).encode()).hexdigest()[:8]
    return f"{_slug(Path(source))}_{digest}"
