"""Simulator lesions as a QCA reader meets them: the lesion's outline on a view's key frame.

The simulator knows each lesion's true % stenosis; this module says where the lesion lies in
a rendered frame, so QCA can be scored against that truth (tests, bench). The outline is the
lesion's stretch of centre line (where its narrowing exceeds a third of its full depth),
projected into the frame as the heart and breath have moved it, drawn as wide as the healthy
vessel there: what a lesion annotation (or the stenosis model) outlines. The vessel mask is
the simulator's own segment mask of that frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from angioscribe.qca.lesion import mm_per_pixel
from angioscribe.sim.anatomy3d import arc_length
from angioscribe.sim.lesions import Lesion, lesion_centre, lesion_profile
from angioscribe.sim.render import project_over_time
from angioscribe.sim.study import SimulatedStudy, SimulatedView

# Centre line samples where the lesion narrows the lumen by more than this share of its depth.
OUTLINE_PROFILE = 0.3


@dataclass(frozen=True)
class SimulatedLesion:
    """A lesion in one view's frame: truth, the frame, the vessel and lesion masks, scale, and
    `crossed`: the share of vessel pixels in the outline that belong to another vessel (one
    crossing or overlapping it in this projection), and `in_plane`: the lesion's projected
    length over its true length (1 in the image plane, near 0 seen end-on). A QCA reader
    would measure either kind of lesion in another view."""

    lesion: Lesion
    view: SimulatedView
    frame_index: int
    frame: np.ndarray
    vessel: np.ndarray
    outline: np.ndarray
    mm_per_px: float | None
    crossed: float
    in_plane: float


def view_lesions(study: SimulatedStudy, view: SimulatedView,
                 frame_index: int | None = None) -> list[SimulatedLesion]:
    """The study's lesions on the injected side of `view`, in its best frame (or
    `frame_index`), that project inside the frame beside an opacified vessel."""
    index = view.best_frame if frame_index is None else frame_index
    codes = view.cine.masks[index]
    vessel = codes > 0
    scale = mm_per_pixel((view.arm.pixel_spacing_mm,) * 2, view.arm.sid_mm, view.arm.sod_mm)
    found = []
    for lesion in study.lesions:
        name, _ = lesion_centre(study.anatomy, lesion.segment, lesion.position)
        if study.anatomy.vessel(name).laterality != view.laterality:
            continue
        outline, in_plane = lesion_outline(study, view, lesion, index)
        if not (outline & vessel).any():
            continue
        inside = codes[outline & vessel]
        own = np.isin(inside, study.anatomy.vessel(name).segment_code)
        found.append(SimulatedLesion(lesion, view, index, view.cine.frames[index], vessel,
                                     outline, scale, float(1.0 - own.mean()), in_plane))
    return found


def lesion_outline(study: SimulatedStudy, view: SimulatedView, lesion: Lesion,
                   frame_index: int) -> tuple[np.ndarray, float]:
    """(H, W) bool: the lesion's stretch of vessel in the frame, as wide as the healthy lumen;
    and how much of the stretch's length the projection keeps."""
    name, centre = lesion_centre(study.anatomy, lesion.segment, lesion.position)
    vessel = study.anatomy.vessel(name)
    along = arc_length(vessel.points)
    stretch = lesion_profile(along, along[centre], lesion.length_mm) > OUTLINE_PROFILE
    times = view.timeline.times_s[frame_index:frame_index + 1]
    cols, rows = project_over_time(vessel.points[stretch], np.ones(int(stretch.sum())),
                                   view.arm, study.anatomy.heart, view.timeline, times)
    _, _, magnification = view.arm.project(vessel.points[centre])
    radius_px = vessel.radius_mm[centre] * magnification / view.arm.pixel_spacing_mm
    outline = np.zeros((view.arm.pixels,) * 2, dtype=np.uint8)
    points = np.stack([cols[0], rows[0]], axis=1)
    cv2.polylines(outline, [np.round(points).astype(np.int32)], False, 1,
                  thickness=max(int(round(2 * radius_px)), 1))
    projected_mm = arc_length(points)[-1] * view.arm.pixel_spacing_mm / magnification
    return outline.astype(bool), float(projected_mm / max(arc_length(vessel.points[stretch])[-1],
                                                          1e-6))
