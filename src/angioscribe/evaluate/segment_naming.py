"""How often a finding names the right coronary segment, measured on ARCADE.

CAG-VLM's drafts named the wrong segment in about 70 % of cases; the findings step exists to
fix that, so its own naming rate is worth a number. Each lesion is named by
`findings.frame_findings` with the SYNTAX model's output for its frame and scored against the
segment it lies on: exact segment, and same vessel (LAD, D1, LCX, OM1, ...). Main vessels (RCA,
LM, LAD, LCX) and side branches are reported apart: the branches are where naming is hard.

Two sets of lesions:
- annotated: ARCADE lists a third of its stenosis frames again, the same picture, in the syntax
  task (`data.lookalike`), so those frames carry both the annotators' lesions and their
  segments; a lesion's segment is the annotated segment under most of its pixels. Syntax val
  holds 74 such frames, which the shipped SYNTAX model never trained on.
- pseudo: discs of lesion size (radius 12 px, ARCADE's median lesion is ~800 px) centred on
  random pixels of each annotated segment of syntax val and clipped to it: every segment
  equally often, where real lesions gather on the proximal main vessels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from angioscribe.anatomy import ARCADE_STENOSIS_ID, SEGMENTS, segment_by_arcade_id
from angioscribe.anatomy import segment as segment_by_number
from angioscribe.data.arcade import ArcadeImage
from angioscribe.evaluate.bootstrap import bootstrap_ci
from angioscribe.evaluate.confusion import plot_confusion
from angioscribe.findings import frame_findings
from angioscribe.models.segmenter import Segmenter
from angioscribe.progress import progress
from angioscribe.regions import Region, mask_polygon, polygon_mask

MAIN_VESSELS = frozenset({"RCA", "LM", "LAD", "LCX"})
PSEUDO_LESION_RADIUS = 12


@dataclass(frozen=True)
class NamedLesion:
    """One lesion: the segment it lies on, the one the findings named, and its frame (lesions
    of one frame are resampled together for intervals)."""

    truth: str
    named: str | None
    frame: str

    @property
    def segment_right(self) -> bool:
        return self.named == self.truth

    @property
    def vessel_right(self) -> bool:
        return self.named is not None and (
            segment_by_number(self.named).vessel == segment_by_number(self.truth).vessel)

    @property
    def on_main_vessel(self) -> bool:
        return segment_by_number(self.truth).vessel in MAIN_VESSELS


# A frame's SYNTAX output: (segment probabilities (C, H, W), the regions its rules keep).
SyntaxOutput = Callable[[np.ndarray], tuple[np.ndarray, list[Region]]]


def segmenter_output(syntax: Segmenter) -> SyntaxOutput:
    """A SYNTAX segmenter's output for a frame, as `frame_findings` reads it."""
    def output(frame: np.ndarray) -> tuple[np.ndarray, list[Region]]:
        probabilities = syntax.probabilities(frame)
        return probabilities, syntax.post_process(probabilities)
    return output


def name_pseudo_lesions(images: Sequence[ArcadeImage], syntax: SyntaxOutput,
                        label_ids: Sequence[int], per_segment: int = 2,
                        seed: int = 0) -> list[NamedLesion]:
    """Name `per_segment` pseudo-lesions in every annotated segment of every image."""
    rng = np.random.default_rng(seed)
    named = []
    for image in progress(images, description="naming pseudo-lesions"):
        frame = image.load()
        probabilities, segments = syntax(frame)
        for annotation in image.annotations:
            lesions = pseudo_lesions(annotation.polygon, frame.shape, per_segment, rng)
            findings = frame_findings(segments, lesions, probabilities, label_ids)
            truth = segment_by_arcade_id(annotation.category_id).number
            named += [NamedLesion(truth, finding.segment, image.file_name)
                      for finding in findings.stenoses]
    return named


def name_annotated_lesions(pairs: Sequence[tuple[ArcadeImage, ArcadeImage]],
                           syntax: SyntaxOutput, label_ids: Sequence[int]) -> list[NamedLesion]:
    """Name the annotated stenoses of frames labelled in both tasks ((stenosis-task image,
    syntax-task image of the same view), `data.lookalike.frames_in_both_tasks`)."""
    named = []
    for stenosis_image, syntax_image in progress(pairs, description="naming annotated lesions"):
        probabilities, segments = syntax(stenosis_image.load())
        labelled = lesions_on_annotated_segments(stenosis_image, syntax_image)
        findings = frame_findings(segments, [lesion for lesion, _ in labelled], probabilities,
                                  label_ids)
        named += [NamedLesion(truth, finding.segment, stenosis_image.file_name)
                  for (_, truth), finding in zip(labelled, findings.stenoses, strict=True)]
    return named


def lesions_on_annotated_segments(stenosis_image: ArcadeImage, syntax_image: ArcadeImage
                                  ) -> list[tuple[Region, str]]:
    """Each annotated lesion with the annotated segment under most of its pixels; a lesion on
    no annotated segment (a branch the annotators left unlabelled) is left out."""
    segments = syntax_image.mask("syntax")
    labelled = []
    for annotation in stenosis_image.annotations:
        lesion = polygon_mask(annotation.polygon, segments.shape)
        under = segments[(lesion > 0) & (segments > 0)]
        if under.size:
            truth = segment_by_arcade_id(int(np.bincount(under).argmax())).number
            region = Region(ARCADE_STENOSIS_ID, annotation.polygon, 1.0, float(lesion.sum()))
            labelled.append((region, truth))
    return labelled


def pseudo_lesions(polygon: np.ndarray, shape: tuple[int, ...], count: int,
                   rng: np.random.Generator) -> list[Region]:
    """`count` lesion-sized discs centred on random pixels of a segment, clipped to it."""
    segment = polygon_mask(polygon, shape)
    ys, xs = np.nonzero(segment)
    lesions = []
    for index in rng.integers(len(ys), size=count) if len(ys) else []:
        disc = np.zeros_like(segment)
        cv2.circle(disc, (int(xs[index]), int(ys[index])), PSEUDO_LESION_RADIUS, 1, -1)
        outline = mask_polygon(disc & segment)
        if outline is not None:
            lesions.append(Region(ARCADE_STENOSIS_ID, outline, 1.0, float((disc & segment).sum())))
    return lesions


def naming_rates(named: Sequence[NamedLesion], n_boot: int = 1000) -> list[dict[str, object]]:
    """Segment and vessel naming rates, with 95 % bootstrap intervals resampling frames: all
    lesions, main vessels, side branches."""
    groups = {"all": list(named), "main vessels": [n for n in named if n.on_main_vessel],
              "side branches": [n for n in named if not n.on_main_vessel]}
    return [{"lesions": name, "n": len(group),
             **_rate("segment_right", [n.segment_right for n in group], group, n_boot),
             **_rate("vessel_right", [n.vessel_right for n in group], group, n_boot),
             "unassigned": sum(n.named is None for n in group)}
            for name, group in groups.items()]


def _rate(name: str, hits: list[bool], group: list[NamedLesion],
          n_boot: int) -> dict[str, object]:
    if not group:
        return {name: None, f"{name}_ci": None}
    interval = bootstrap_ci(np.array(hits, dtype=float), n=n_boot,
                            groups=[lesion.frame for lesion in group])
    return {name: interval.estimate, f"{name}_ci": [interval.low, interval.high]}


def plot_naming_confusion(named: Sequence[NamedLesion], path: str | Path,
                          lesions: str = "ARCADE lesions") -> Path:
    """Which segment each lesion's own segment was named as (rows: truth), as PNG."""
    labels = [*SEGMENTS, "none"]
    index = {number: i for i, number in enumerate(labels)}
    return plot_confusion([index[n.truth] for n in named],
                          [index[n.named or "none"] for n in named], labels, path,
                          title=f"Lesion segment naming ({lesions})")
