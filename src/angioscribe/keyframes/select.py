"""A study's key frames: candidates of every cine -> six-class scores -> best "better" per side.

CAG-VLM picks, per study, the highest-confidence "better" frames of the left and of the right
coronary artery. A frame qualifies for a side only if its most probable class is that side's
"better"; among those the highest P(side_better) wins. If no frame qualifies the side is
reported missing with the reason, never filled with the least-bad frame: a left-only study
(or one whose right injection was never diagnostic) must not come back with an invented RCA.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from angioscribe.keyframes.classes import LATERALITIES, class_name
from angioscribe.keyframes.classify import FrameScore, KeyframeClassifier, classify_cine
from angioscribe.study import Study


@dataclass
class KeyFrames:
    """Chosen key frames per side (best first), the reason a side is missing, every score."""

    study: str
    chosen: dict[str, list[FrameScore]]
    missing: dict[str, str] = field(default_factory=dict)
    scored: list[FrameScore] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "keyframes": {side: [_keyframe_record(s, side) for s in frames]
                          for side, frames in self.chosen.items()},
            "missing": self.missing,
            "candidates": [score.to_record() for score in self.scored],
        }


def _keyframe_record(score: FrameScore, side: str) -> dict[str, Any]:
    return {**score.to_record(), "score": score.scores[class_name(side, "better")]}  # type: ignore[arg-type]


def select_keyframes(study: Study, classifier: KeyframeClassifier | None = None,
                     per_side: int = 1) -> KeyFrames:
    """Score the candidate frames of every cine of `study` and choose `per_side` key frames
    per laterality (fewer, or none with a reason, when fewer frames qualify)."""
    classifier = classifier or KeyframeClassifier.load()
    scored = [score for cine in study.cines for score in classify_cine(classifier, cine)]
    return choose_keyframes(study.key, scored, per_side)


def choose_keyframes(study: str, scored: list[FrameScore], per_side: int = 1) -> KeyFrames:
    """The selection rule on already scored frames (pure, so it is tested without a model)."""
    chosen: dict[str, list[FrameScore]] = {}
    missing: dict[str, str] = {}
    for side in LATERALITIES:
        better = class_name(side, "better")
        qualified = [s for s in scored if s.laterality == side and s.keyframe == "better"]
        qualified.sort(key=lambda s: -s.scores[better])
        if qualified:
            chosen[side] = qualified[:per_side]
        elif any(s.laterality == side for s in scored):
            missing[side] = f"{side} frames found, but none classified as {better}"
        else:
            missing[side] = f"no {side} injection found among {len(scored)} candidate frames"
    return KeyFrames(study, chosen, missing, scored)


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


def missing_with_refused(missing: dict[str, str], refused: int) -> dict[str, str]:
    """Missing sides' reasons, adding how many frames the scope guard refused: a side may be
    missing because its frames did not look like coronary angiograms, not for want of them."""
    if not refused:
        return missing
    frames = "1 frame" if refused == 1 else f"{refused} frames"
    return {side: f"{reason}; {frames} refused as not a coronary angiogram"
            for side, reason in missing.items()}
