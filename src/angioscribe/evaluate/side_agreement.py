"""Two answers to "left or right coronary?" for one frame, and how often each is right.

The key-frame classifier names a frame's side from the whole picture; the SYNTAX segments name
it from the vessels they find (`FrameFindings.laterality`, the side with more distinct
segments). `angioscribe analyze` reports both for every key frame and flags a frame where they
differ (`side_conflict`) instead of forcing one onto the other. This measures, on frames whose
side ARCADE's segment labels give, how often each answer is right, how often they differ, and
which one is right when they do: the evidence behind that flag.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

from angioscribe.anatomy import Laterality, laterality_of_segments, segment_by_arcade_id
from angioscribe.data.arcade import ArcadeImage
from angioscribe.evaluate.bootstrap import bootstrap_ci
from angioscribe.keyframes.classes import CLASSES, split_class
from angioscribe.keyframes.classify import KeyframeClassifier
from angioscribe.models.segmenter import Segmenter


@dataclass(frozen=True)
class FrameSides:
    """One frame's side by its annotations (`truth`), by the key-frame classifier's most
    probable class, and by the segments the SYNTAX model reports (None: they do not tell)."""

    frame: str
    truth: Laterality
    classifier: Laterality
    segments: Laterality | None

    @property
    def differ(self) -> bool:
        return self.segments is not None and self.segments != self.classifier

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def frame_sides(images: Sequence[ArcadeImage], classifier: KeyframeClassifier,
                syntax: Segmenter) -> list[FrameSides]:
    """Both answers for every image whose annotated segments give its side (others skipped)."""
    sides = []
    for image in tqdm(images, desc="sides", mininterval=10):
        if image.laterality is None:
            continue
        frame = image.load()
        best_class = CLASSES[int(np.argmax(classifier.probabilities(frame)[0]))]
        segments = [segment_by_arcade_id(region.category_id).number
                    for region in syntax.regions(frame)]
        sides.append(FrameSides(image.file_name, image.laterality, split_class(best_class)[0],
                                laterality_of_segments(segments)))
    return sides


def side_rates(sides: Sequence[FrameSides], n_boot: int = 1000) -> list[dict[str, object]]:
    """Share of frames each answer gets right, with 95 % bootstrap intervals over frames;
    then the frames where the two differ, and which was right there."""
    rows = []
    for source in ("classifier", "segments"):
        hits = np.array([getattr(s, source) == s.truth for s in sides], dtype=float)
        interval = bootstrap_ci(hits, n=n_boot) if len(hits) else None
        rows.append({"side_from": source, "frames": len(sides),
                     "right": None if interval is None else interval.estimate,
                     "right_ci": None if interval is None else [interval.low, interval.high],
                     "untold": sum(getattr(s, source) is None for s in sides)})
    differing = [s for s in sides if s.differ]
    rows.append({"side_from": "both differ", "frames": len(differing),
                 "classifier_right": sum(s.classifier == s.truth for s in differing),
                 "segments_right": sum(s.segments == s.truth for s in differing)})
    return rows
