"""One lesion measured as QCA does: MLD, interpolated reference, % diameter stenosis, length.

Along the centre line through the lesion (`centreline`), the lumen diameter is measured at
every pixel (`edges`) and smoothed a little. The minimum lumen diameter (MLD) is the smallest
diameter where the lesion region lies. The reference diameter is QCA's interpolated
reference: a straight line fitted robustly (Theil-Sen) to the diameters of the healthy
stretches before and after the lesion, read at the MLD's position, so a vessel that tapers
across the lesion is not graded against its wider or narrower end. The lesion length is the
stretch around the MLD, contiguous, where the diameter stays below LENGTH_FRACTION of the
reference. A vessel that stops at the lesion with no continuation is a total occlusion
(`cto`): 100 %, MLD 0, its length unknown (no distal filling shows where it ends).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import ndimage, stats
from skimage.morphology import remove_small_holes

from angioscribe.qca.centreline import NoVesselError, VesselPath, lesion_path
from angioscribe.qca.edges import edge_diameters, mask_diameters

# Healthy stretch measured on each side of the lesion, in vessel diameters (at least MIN_REACH).
REACH_DIAMETERS = 3.0
MIN_REACH_PX = 20.0
# How far from the lesion region the vessel's centre line may be sought.
SEARCH_PX = 15.0
# Points this close to the lesion region (px) are neither lesion nor healthy reference.
LESION_MARGIN_PX = 3.0
# Holes up to this area (px) in a vessel mask are filled: a skeleton would loop around them.
MASK_HOLE_PX = 16
# Smoothing of the diameter profile along the vessel (Gaussian sigma, px).
PROFILE_SMOOTHING_PX = 2.0
# The lesion is where the diameter stays below this fraction of the reference.
LENGTH_FRACTION = 0.85
# A vessel ending within this many pixels beyond the lesion region ends at the lesion.
CTO_END_PX = 4.0
# ...and is occluded there when no vessel pixel continues its direction this far beyond.
CTO_GAP_PX = 25.0
CTO_CONE_DEGREES = 30.0
# ...and the image shows no ray of that cone this much of the vessel's contrast darker.
CTO_CONTRAST_FRACTION = 0.5
# ...over this share (%) of the ray's length: a gap of background beyond the stump is enough.
CTO_RAY_DARK_PERCENT = 75

Grade = Literal["mild", "moderate", "severe", "occluded"]


@dataclass(frozen=True)
class DiameterProfile:
    """The measured vessel, for figures: centre line (N, 2) (row, col) in frame pixels, arc
    length, mask width, sub-pixel diameter (smoothed) and the interpolated reference (px);
    which points lie in the lesion region (where the MLD is sought) and which are healthy
    reference; the MLD's index and the lesion's first and last index."""

    centreline: np.ndarray
    arc_px: np.ndarray
    mask_width_px: np.ndarray
    diameter_px: np.ndarray
    reference_px: np.ndarray
    in_lesion: np.ndarray
    healthy: np.ndarray
    mld_index: int
    lesion_span: tuple[int, int]


@dataclass(frozen=True)
class LesionMeasurement:
    """One lesion in QCA terms. Diameters and length in pixels always; in mm (at the
    isocentre) when the frame's pixel spacing and magnification are known, None otherwise.
    `length_px` is None for a total occlusion, whose far end does not show."""

    stenosis_percent: float
    grade: Grade
    cto: bool
    mld_px: float
    reference_px: float
    length_px: float | None
    mld_mm: float | None
    reference_mm: float | None
    length_mm: float | None
    profile: DiameterProfile

    def to_dict(self) -> dict[str, Any]:
        """The measurement as JSON-ready values, without the profile."""
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(float(value), 2)

        return {"stenosis_percent": round(self.stenosis_percent, 1), "grade": self.grade,
                "cto": self.cto, "mld_px": rounded(self.mld_px),
                "reference_px": rounded(self.reference_px), "length_px": rounded(self.length_px),
                "mld_mm": rounded(self.mld_mm), "reference_mm": rounded(self.reference_mm),
                "length_mm": rounded(self.length_mm)}


def grade(stenosis_percent: float, cto: bool = False) -> Grade:
    """Angiographers' grade: mild < 50, moderate 50-69, severe 70-99, occluded 100."""
    if cto or stenosis_percent >= 100:
        return "occluded"
    if stenosis_percent >= 70:
        return "severe"
    return "moderate" if stenosis_percent >= 50 else "mild"


def mm_per_pixel(pixel_spacing_mm: tuple[float, float] | None, sid_mm: float | None,
                 sod_mm: float | None) -> float | None:
    """Millimetres at the isocentre per image pixel: the detector's pixel spacing divided by
    the magnification SID/SOD (a Cine's `pixel_spacing_mm`, `sid_mm`, `sod_mm`); None when
    any of them is unknown, since the detector spacing alone overstates sizes by 20-50 %."""
    if pixel_spacing_mm is None or sid_mm is None or sod_mm is None:
        return None
    return float(np.mean(pixel_spacing_mm)) * sod_mm / sid_mm


def measure_lesion(frame: np.ndarray, vessel: np.ndarray, lesion: np.ndarray,
                   mm_per_px: float | None = None) -> LesionMeasurement:
    """Measure the lesion outlined by `lesion` on the vessel of `vessel` in grey `frame`.

    `frame` is (H, W) uint8 with vessels dark; `vessel` a binary vessel mask of the frame
    (e.g. the SYNTAX model's segment probabilities thresholded); `lesion` the lesion region's
    mask (e.g. `regions.polygon_mask` of a stenosis polygon). Raises NoVesselError when the
    lesion region is empty or no vessel centre line passes near it.
    """
    vessel, lesion = vessel.astype(bool), lesion.astype(bool)
    if not lesion.any():
        raise NoVesselError("the lesion region is empty")
    box, reach = _window(vessel, lesion)
    window_vessel = remove_small_holes(vessel[box], max_size=MASK_HOLE_PX)
    window_lesion = lesion[box]
    path = lesion_path(window_vessel, window_lesion, reach, SEARCH_PX)
    if len(path.points) < 3:
        raise NoVesselError("the vessel's centre line near the lesion is a few pixels long")
    width = mask_diameters(window_vessel, path.points)
    to_lesion = ndimage.map_coordinates(ndimage.distance_transform_edt(~window_lesion),
                                        path.points.T, order=1)
    diameters = ndimage.gaussian_filter1d(edge_diameters(frame[box], path, width),
                                          PROFILE_SMOOTHING_PX, mode="nearest")
    origin = np.array([box[0].start, box[1].start], dtype=np.float64)
    return _measurement(path, origin, width, diameters, to_lesion, window_vessel, frame[box],
                        mm_per_px)


def _window(vessel: np.ndarray, lesion: np.ndarray) -> tuple[tuple[slice, slice], float]:
    """The part of the frame that can matter, and the reference stretch to measure on each
    side: a few diameters of the widest vessel near the lesion. The window is the lesion's
    box widened by that stretch, so skeleton and profiles cover a few thousand pixels.
    Raises NoVesselError when no vessel pixel lies within SEARCH_PX of the lesion."""
    near = _grown_box(lesion, SEARCH_PX)
    if not (vessel[near] & (ndimage.distance_transform_edt(~lesion[near]) <= SEARCH_PX)).any():
        raise NoVesselError(f"no vessel within {SEARCH_PX:.0f} px of the lesion")
    widest = 2.0 * float(ndimage.distance_transform_edt(vessel[near]).max(initial=0.0))
    reach = max(REACH_DIAMETERS * widest, MIN_REACH_PX)
    return _grown_box(lesion, reach + SEARCH_PX + 2 * widest), reach


def _grown_box(mask: np.ndarray, margin: float) -> tuple[slice, slice]:
    rows, cols = np.nonzero(mask)
    grow = int(np.ceil(margin))
    return (slice(max(rows.min() - grow, 0), min(rows.max() + grow + 1, mask.shape[0])),
            slice(max(cols.min() - grow, 0), min(cols.max() + grow + 1, mask.shape[1])))


def _measurement(path: VesselPath, origin: np.ndarray, width: np.ndarray,
                 diameters: np.ndarray, to_lesion: np.ndarray, vessel: np.ndarray,
                 frame: np.ndarray, mm_per_px: float | None) -> LesionMeasurement:
    inside = to_lesion <= 1.0
    if not inside.any():
        inside = np.arange(len(diameters)) == path.seed
    healthy = to_lesion > LESION_MARGIN_PX
    arc = np.arange(len(diameters), dtype=np.float64)
    occluded_end = _occluded_end(path, to_lesion, vessel, width, frame)
    cto = occluded_end is not None
    if occluded_end is not None:
        mld_index = occluded_end
        diameters = diameters.copy()
        diameters[mld_index] = 0.0
    else:
        candidates = np.flatnonzero(inside)
        mld_index = int(candidates[np.argmin(diameters[candidates])])
    reference = interpolated_reference(arc, diameters, healthy)
    mld = float(diameters[mld_index])
    ref = float(reference[mld_index])
    percent = 100.0 if cto else float(np.clip(100.0 * (1.0 - mld / max(ref, 1e-6)), 0, 100))
    span = _lesion_span(diameters, reference, mld_index)
    length = None if cto else float(span[1] - span[0] + 1)
    profile = DiameterProfile(path.points + origin, arc, width, diameters, reference, inside,
                              healthy, mld_index, span)

    def mm(value: float | None) -> float | None:
        return None if value is None or mm_per_px is None else value * mm_per_px

    return LesionMeasurement(percent, grade(percent, cto), cto, mld, ref, length, mm(mld),
                             mm(ref), mm(length), profile)


def interpolated_reference(arc: np.ndarray, diameters: np.ndarray, healthy: np.ndarray
                            ) -> np.ndarray:
    """Reference diameter along the path: a Theil-Sen line through the healthy diameters on
    both sides of the lesion; their median when they lie on one side only (a line through
    one side would be extrapolated across the lesion), or the widest diameter if none."""
    if not healthy.any():
        return np.full(len(arc), float(diameters.max()))
    lesion = arc[~healthy]
    both_sides = lesion.size == 0 or (arc[healthy].min() < lesion.min()
                                      and arc[healthy].max() > lesion.max())
    if not both_sides:
        return np.full(len(arc), float(np.median(diameters[healthy])))
    slope, intercept, _, _ = stats.theilslopes(diameters[healthy], arc[healthy])
    return intercept + slope * arc


def _lesion_span(diameters: np.ndarray, reference: np.ndarray, mld_index: int
                 ) -> tuple[int, int]:
    """First and last index of the stretch around the MLD below LENGTH_FRACTION of reference."""
    narrow = diameters < LENGTH_FRACTION * reference
    narrow[mld_index] = True
    start = mld_index
    while start > 0 and narrow[start - 1]:
        start -= 1
    end = mld_index
    while end < len(narrow) - 1 and narrow[end + 1]:
        end += 1
    return start, end


def _occluded_end(path: VesselPath, to_lesion: np.ndarray, vessel: np.ndarray,
                  path_width: np.ndarray, frame: np.ndarray) -> int | None:
    """The path end where the vessel stops at the lesion, None if it does not. It stops
    there when that end is a vessel end lying in (or just beyond) the lesion region, so is
    the end of the vessel mask along the path (the stump), and neither the mask nor the image
    shows the vessel going on from the stump in its direction within CTO_GAP_PX. The lesion
    region may reach past the mask's end: a mask that missed a faint vessel ends there too,
    but the image shows the vessel. Catches an occlusion with no distal filling; one refilled
    by collaterals close to the stump, or a stump overlapped by another vessel, reads as a
    tight stenosis."""
    lumen = float(np.median(ndimage.map_coordinates(frame.astype(np.float32), path.points.T,
                                                    order=1)))
    masked = np.flatnonzero(path_width > 0)
    if len(to_lesion) < 4 or len(masked) < 4:
        return None
    ends = ((0, masked[0], 1), (len(to_lesion) - 1, masked[-1], -1))
    for (end, stump, inward), is_open in zip(ends, path.open_ends, strict=True):
        if not is_open or max(to_lesion[end], to_lesion[stump]) > CTO_END_PX:
            continue
        tip = path.points[stump]
        direction = tip - path.points[min(max(stump + 3 * inward, 0), len(to_lesion) - 1)]
        direction = direction / max(float(np.linalg.norm(direction)), 1e-9)
        radius = path_width[stump] / 2.0
        if not (_continues(vessel, tip, direction, radius)
                or _dark_beyond(frame, tip, direction, radius, lumen)):
            return end
    return None


def _continues(vessel: np.ndarray, tip: np.ndarray, direction: np.ndarray,
               radius: float) -> bool:
    """Whether vessel pixels lie in a cone of CTO_CONE_DEGREES around `direction`, beyond the
    stump's own rounded end (`radius` + 2 px) and within CTO_GAP_PX of `tip`: the vessel
    picking up again after a gap."""
    rows, cols = np.nonzero(vessel)
    offsets = np.stack([rows, cols], axis=1) - tip
    distance = np.hypot(*offsets.T)
    ahead = offsets @ direction
    cone = ahead >= distance * np.cos(np.radians(CTO_CONE_DEGREES))
    return bool(np.any(cone & (distance >= radius + 2.0) & (distance <= radius + CTO_GAP_PX)))


def _dark_beyond(frame: np.ndarray, tip: np.ndarray, direction: np.ndarray, radius: float,
                 lumen: float) -> bool:
    """Whether the image shows a vessel going on beyond the stump that the mask missed: some
    ray of the cone is darker than the surroundings by at least CTO_CONTRAST_FRACTION of the
    vessel's own contrast (`lumen` being its grey level) over CTO_RAY_DARK_PERCENT of its
    length. Surroundings: the median of the ring of the same distances around the stump."""
    distances = np.arange(radius + 2.0, radius + CTO_GAP_PX + 0.5, 1.0)
    base = np.arctan2(direction[1], direction[0])
    spread = np.radians(CTO_CONE_DEGREES)
    angles = np.concatenate([base + np.linspace(-spread, spread, 13),
                             base + np.linspace(spread, 2 * np.pi - spread, 36)])
    where = tip[:, None, None] + distances[None, None, :] * np.stack(
        [np.cos(angles), np.sin(angles)])[:, :, None]
    grey = ndimage.map_coordinates(frame.astype(np.float32), where.reshape(2, -1), order=1,
                                   mode="nearest").reshape(len(angles), len(distances))
    surroundings = float(np.median(grey))
    darkest_ray = float(np.percentile(grey[:13], CTO_RAY_DARK_PERCENT, axis=1).min())
    return surroundings - darkest_ray >= CTO_CONTRAST_FRACTION * (surroundings - lumen)
