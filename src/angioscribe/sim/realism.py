"""How well the shipped models read simulated frames: the simulator judged by the models.

The models were trained on real ARCADE frames; if they read a simulated key frame as they read a
real one, the simulator can check the findings chain end to end. Three numbers per set of
studies, all on each view's best key frame (`SimulatedView.best_frame`):

- SYNTAX: the shipped segment model's regions scored with the official ARCADE F1
  (`evaluate.arcade_metric`) against the simulator's segment masks as ARCADE annotations (one
  polygon, the largest piece, per segment with at least `VISIBLE_MIN_PIXELS` labelled pixels,
  as a segment counts as visible in the truth). Compare with the model's ARCADE val F1.
- Stenosis: recall of the simulated significant lesions (>= 50 % diameter stenosis, CTOs
  included). A lesion is *in* a view when its segment is visible there; it is *found* in that
  view when a predicted stenosis region comes within `FOUND_WITHIN_PX` of its core (the
  stretch where the narrowing is at least half its full depth, projected at the key frame's
  heart phase). Study recall counts a lesion found when any view finds it; view recall counts
  (lesion, view) pairs. Predicted regions farther than that from every simulated lesion (any
  grade) are counted as false.
- Scope: the share of key frames the out-of-scope guard accepts as coronary angiograms.

ARCADE annotates a left coronary frame for one artery, the LAD's segments or the LCX's (94 %
of its left frames), about 5-6 segments; the simulator's masks give every visible segment of
both, 10-14. The official score averages over the annotated segments, so the SYNTAX F1 is also
reported against ARCADE-style truth (`arcade_style_truth`): a left view's outlines of the
artery it is taken for, cranial views for the LAD, the others for the LCX, as angiographers
use them.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from angioscribe.anatomy import SEGMENTS
from angioscribe.evaluate.arcade_metric import arcade_f1
from angioscribe.models.segmenter import Segmenter
from angioscribe.regions import Region, coco_results, mask_polygon, polygon_mask
from angioscribe.scope import ScopeGuard
from angioscribe.sim.anatomy3d import CODE_SEGMENTS, arc_length
from angioscribe.sim.lesions import Lesion, lesion_centre, lesion_profile
from angioscribe.sim.render import project_over_time
from angioscribe.sim.study import VISIBLE_MIN_PIXELS, SimulatedStudy, SimulatedView

SIGNIFICANT_PERCENT = 50
FOUND_WITHIN_PX = 10.0  # about a lesion's half-length on a 512 px frame
CORE_PROFILE = 0.5
# The segments ARCADE annotates on a left frame taken for the LAD, or for the LCX (the left
# main and the proximal LAD appear in both).
LAD_FRAME_SEGMENTS = frozenset({"5", "6", "7", "8", "9", "9a", "10", "10a"})
LCX_FRAME_SEGMENTS = frozenset({"5", "6", "11", "12", "12a", "12b", "13", "14", "14a", "14b",
                                "15"})


@dataclass(frozen=True)
class Models:
    """The shipped models the simulator is judged by."""

    syntax: Segmenter
    stenosis: Segmenter
    scope: ScopeGuard

    @classmethod
    def load(cls) -> Models:
        return cls(Segmenter.from_name("syntax-seg"), Segmenter.from_name("stenosis-seg"),
                   ScopeGuard.load())


@dataclass(frozen=True)
class KeyFrameResult:
    """What the models made of one view's key frame."""

    name: str
    view: str | None
    syntax_f1: float
    syntax_f1_arcade_style: float
    truth_segments: list[str]
    predicted_segments: list[str]
    significant_lesions: int
    found_lesions: list[str]  # segments of the significant lesions found in this view
    false_regions: int
    in_scope: bool
    scope_score: float


@dataclass
class RealismScore:
    """The measurement over a set of studies; `key_frames` keeps the per-view evidence."""

    key_frames: list[KeyFrameResult] = field(default_factory=list)
    study_lesions: int = 0
    study_lesions_found: int = 0

    @property
    def syntax_f1(self) -> float:
        return statistics.mean(k.syntax_f1 for k in self.key_frames)

    @property
    def syntax_f1_arcade_style(self) -> float:
        return statistics.mean(k.syntax_f1_arcade_style for k in self.key_frames)

    @property
    def view_recall(self) -> float | None:
        total = sum(k.significant_lesions for k in self.key_frames)
        return sum(len(k.found_lesions) for k in self.key_frames) / total if total else None

    @property
    def study_recall(self) -> float | None:
        return self.study_lesions_found / self.study_lesions if self.study_lesions else None

    @property
    def scope_acceptance(self) -> float:
        return statistics.mean(float(k.in_scope) for k in self.key_frames)

    def summary(self) -> dict[str, Any]:
        """The headline numbers, JSON-ready."""
        frames = len(self.key_frames)
        return {
            "key_frames": frames,
            "syntax_f1": round(self.syntax_f1, 4),
            "syntax_f1_arcade_style": round(self.syntax_f1_arcade_style, 4),
            "significant_lesions": self.study_lesions,
            "lesion_recall_study": _rounded(self.study_recall),
            "lesion_recall_view": _rounded(self.view_recall),
            "false_stenosis_regions_per_frame": round(
                sum(k.false_regions for k in self.key_frames) / frames, 3),
            "scope_acceptance": round(self.scope_acceptance, 4),
            "scope_score_median": round(statistics.median(k.scope_score
                                                          for k in self.key_frames), 2),
        }


def measure_realism(studies: Iterable[SimulatedStudy], models: Models) -> RealismScore:
    """Run the models on every view's key frame of every study and score them (module doc)."""
    score = RealismScore()
    for study in studies:
        found: set[int] = set()
        present: set[int] = set()
        for view in study.views:
            result, view_present, view_found = _key_frame(study, view, models)
            score.key_frames.append(result)
            present |= view_present
            found |= view_found
        score.study_lesions += len(present)
        score.study_lesions_found += len(found)
    return score


def _key_frame(study: SimulatedStudy, view: SimulatedView, models: Models
               ) -> tuple[KeyFrameResult, set[int], set[int]]:
    """One view: its result, and the indices (into study.lesions) present and found there."""
    index = view.best_frame
    frame, mask = view.cine.frames[index], view.cine.masks[index]
    truth = truth_regions(mask)
    predicted = models.syntax.regions(frame)
    syntax_f1 = syntax_frame_f1(truth, predicted, frame.shape)
    arcade_style = arcade_style_truth(truth, view.laterality, view.arm.secondary_deg)
    lesion_regions = models.stenosis.regions(frame)
    cores = {i: lesion_core_px(study, view, lesion, index)
             for i, lesion in enumerate(study.lesions)}
    near = {i: _near_regions(core, lesion_regions, frame.shape) for i, core in cores.items()}
    visible = set(view.visible_segments)
    present = {i for i, lesion in enumerate(study.lesions)
               if lesion.stenosis_percent >= SIGNIFICANT_PERCENT and lesion.segment in visible}
    found = {i for i in present if near[i]}
    matched = set().union(*near.values()) if near else set()
    verdict = models.scope.check(frame)[0]
    result = KeyFrameResult(
        name=f"{study.study_id}/{view.series_number:02d}_{view.laterality}",
        view=view.view,
        syntax_f1=syntax_f1,
        syntax_f1_arcade_style=syntax_frame_f1(arcade_style, predicted, frame.shape),
        truth_segments=[_segment_name(r.category_id) for r in truth],
        predicted_segments=[_segment_name(r.category_id) for r in predicted],
        significant_lesions=len(present),
        found_lesions=[study.lesions[i].segment for i in sorted(found)],
        false_regions=len(lesion_regions) - len(matched),
        in_scope=verdict.in_scope,
        scope_score=verdict.score,
    )
    return result, present, found


def truth_regions(mask: np.ndarray) -> list[Region]:
    """The simulator's segment mask as ARCADE annotations: one outline per visible segment."""
    regions = []
    counts = np.bincount(mask.ravel(), minlength=len(CODE_SEGMENTS) + 1)
    for code in np.flatnonzero(counts[1:] >= VISIBLE_MIN_PIXELS) + 1:
        polygon = mask_polygon(mask == code)
        if polygon is not None:
            category = SEGMENTS[CODE_SEGMENTS[int(code)]].arcade_id
            regions.append(Region(category, polygon, 1.0, float(counts[code])))
    return regions


def arcade_style_truth(truth: list[Region], laterality: str, secondary_deg: float
                       ) -> list[Region]:
    """A view's truth outlines as ARCADE annotates them: on a left view only the artery it
    is taken for, the LAD's segments in a cranial view, the LCX's otherwise; a right view's
    all."""
    if laterality != "LCA":
        return truth
    keep = LAD_FRAME_SEGMENTS if secondary_deg > 0 else LCX_FRAME_SEGMENTS
    return [region for region in truth if _segment_name(region.category_id) in keep]


def syntax_frame_f1(truth: list[Region], predicted: list[Region],
                    shape: tuple[int, ...]) -> float:
    """The official ARCADE syntax F1 of one frame's predicted regions against its truth."""
    image = [{"id": 1, "file_name": "frame.png", "width": shape[1], "height": shape[0]}]
    return arcade_f1(coco_results(image, [truth]), coco_results(image, [predicted]),
                     "syntax").f1


def lesion_core_px(study: SimulatedStudy, view: SimulatedView, lesion: Lesion,
                   frame: int) -> np.ndarray:
    """(N, 2) pixel (col, row) positions of the lesion's core at that frame's heart phase."""
    name, centre = lesion_centre(study.anatomy, lesion.segment, lesion.position)
    points = study.anatomy.vessel(name).points
    s = arc_length(points)
    core = points[lesion_profile(s, s[centre], lesion.length_mm) >= CORE_PROFILE]
    if len(core) == 0:
        core = points[centre:centre + 1]
    times = view.timeline.times_s[frame:frame + 1]
    cols, rows = project_over_time(core, np.ones(len(core)), view.arm, study.anatomy.heart,
                                   view.timeline, times)
    return np.stack([cols[0], rows[0]], axis=1)


def _near_regions(core: np.ndarray, regions: list[Region], shape: tuple[int, ...]) -> set[int]:
    """Indices of the regions that come within FOUND_WITHIN_PX of any core point."""
    near = set()
    for index, region in enumerate(regions):
        outside = 1 - polygon_mask(region.polygon, shape)
        distance = ndimage.distance_transform_edt(outside)
        cols = np.clip(np.rint(core[:, 0]).astype(int), 0, shape[1] - 1)
        rows = np.clip(np.rint(core[:, 1]).astype(int), 0, shape[0] - 1)
        on_frame = ((core[:, 0] >= 0) & (core[:, 0] < shape[1]) & (core[:, 1] >= 0)
                    & (core[:, 1] < shape[0]))
        if on_frame.any() and distance[rows[on_frame], cols[on_frame]].min() <= FOUND_WITHIN_PX:
            near.add(index)
    return near


def _segment_name(category_id: int) -> str:
    return next(number for number, s in SEGMENTS.items() if s.arcade_id == category_id)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
