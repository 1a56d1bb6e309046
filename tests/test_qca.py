"""QCA lesion measurement against exact truth: generated tubes, and lesions of simulated studies.

Tubes are straight or curved vessels 12 px wide (as main vessels on 512 px frames) with a
lesion of known % diameter stenosis, their lumen drawn as X-ray path length (a cylinder's
chord), blurred and noisy; the vessel mask is what a segmentation model gives: half a pixel
wider than the lumen and broken where the lumen is too thin to see. Accuracy bounds are set a
little above what the module measures on these same cases (docs/qca.md).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from angioscribe.qca import LesionMeasurement, NoVesselError, grade, measure_lesion, mm_per_pixel
from angioscribe.qca.lesion import interpolated_reference
from angioscribe.qca.simulated import view_lesions
from angioscribe.sim import simulate_study

SIZE = 160
DIAMETER_PX = 12.0
LESION_PX = 30.0
SEVERITIES = (0.3, 0.5, 0.7, 0.9)
SUPERSAMPLE = 2
ARC_RADIUS_PX = 70.0
# Simulated studies with 36 lesion views between them, 6 of them total occlusions.
SIMULATED_SEEDS = (0, 1, 2, 4, 6, 10, 15, 16)


def lesion_shape(s: np.ndarray, length: float = LESION_PX) -> np.ndarray:
    """0..1 narrowing along the vessel around s = 0, as the simulator shapes lesions."""
    quarter = length / 4
    ramp = np.clip((2 * quarter - np.abs(s)) / quarter, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * ramp)


def tube_coordinates(points: np.ndarray, curved: bool, angle: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Arc length along the centre line (0 at the lesion, mid-frame) and distance from it."""
    tangent = np.array([np.sin(angle), np.cos(angle)])
    normal = np.array([-tangent[1], tangent[0]])
    offset = points - SIZE / 2
    if not curved:
        return offset @ tangent, np.abs(offset @ normal)
    centre_offset = offset - ARC_RADIUS_PX * normal
    radius = np.hypot(*centre_offset.T)
    turn = np.arctan2(centre_offset @ tangent, -(centre_offset @ normal))
    return ARC_RADIUS_PX * turn, np.abs(radius - ARC_RADIUS_PX)


def tube(severity: float, curved: bool, rng: np.random.Generator, occluded: bool = False
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frame, vessel mask, lesion mask) of one generated vessel; truth: `severity`."""
    angle = float(rng.uniform(0, np.pi))

    def diameter(s: np.ndarray) -> np.ndarray:
        healthy = DIAMETER_PX * (1.0 - 0.0005 * s)  # a gentle taper, as coronaries have
        if occluded:
            return np.where(s < 0, healthy * (1 - lesion_shape(np.minimum(s, 0))), 0.0)
        return healthy * (1 - severity * lesion_shape(s))

    fine = (np.arange(SIZE * SUPERSAMPLE) + 0.5) / SUPERSAMPLE - 0.5
    grid = np.stack(np.meshgrid(fine, fine, indexing="ij"), axis=-1).reshape(-1, 2)
    s, distance = tube_coordinates(grid, curved, angle)
    radius = diameter(s) / 2
    chord = 2 * np.sqrt(np.clip(radius**2 - distance**2, 0, None))
    chord = chord.reshape(SIZE, SUPERSAMPLE, SIZE, SUPERSAMPLE).mean(axis=(1, 3))
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    background = 150 + 10 * np.sin(rows / 40.0) + 8 * np.cos(cols / 55.0)
    image = ndimage.gaussian_filter(background - 6.0 * chord, 0.8)
    noise = ndimage.gaussian_filter(rng.standard_normal((SIZE, SIZE)), 1.0)
    frame = np.clip(np.rint(image + 3.5 * noise / noise.std()), 0, 255).astype(np.uint8)
    centres = np.stack([rows.ravel(), cols.ravel()], axis=1).astype(np.float64)
    s, distance = tube_coordinates(centres, curved, angle)
    radius = diameter(s) / 2
    visible = 2 * np.sqrt(np.clip(radius**2 - distance**2, 0, None)) >= 2.0
    vessel = ((distance <= radius + 0.5) & visible).reshape(SIZE, SIZE)
    lesion = ((np.abs(s) <= 0.4 * LESION_PX) & (distance <= DIAMETER_PX / 2)).reshape(SIZE,
                                                                                        SIZE)
    return frame, vessel, lesion


def mask_only_percent(result: LesionMeasurement) -> float:
    """The same measurement from the mask's widths instead of the sub-pixel edges."""
    profile = result.profile
    reference = interpolated_reference(profile.arc_px, profile.mask_width_px, profile.healthy)
    inside = np.flatnonzero(profile.in_lesion)
    at = inside[np.argmin(profile.mask_width_px[inside])]
    return float(np.clip(100 * (1 - profile.mask_width_px[at] / reference[at]), 0, 100))


@pytest.fixture(scope="module")
def tubes() -> list[tuple[float, bool, LesionMeasurement]]:
    """Three straight and three curved tubes per severity, measured."""
    rng = np.random.default_rng(0)
    measured = []
    for severity in SEVERITIES:
        for curved in (False, True) * 3:
            frame, vessel, lesion = tube(severity, curved, rng)
            measured.append((100 * severity, curved, measure_lesion(frame, vessel, lesion)))
    return measured


def test_stenosis_on_tubes_within_a_few_points(tubes):
    errors = np.array([result.stenosis_percent - truth for truth, _, result in tubes])
    assert np.abs(errors).mean() <= 5
    # Measured: 1.0, 0.9, 3.7 and 10.9 points. A 90 % lumen (1.2 px) is narrower than the
    # blur: its half-maximum width stays near 2.5 px, so it reads about 80 %.
    bounds = {30: 3, 50: 3, 70: 6, 90: 14}
    for truth, bound in bounds.items():
        per_grade = [abs(r.stenosis_percent - t) for t, _, r in tubes if t == truth]
        assert np.mean(per_grade) <= bound, truth


def test_subpixel_edges_beat_the_mask_width(tubes):
    edges = np.mean([abs(result.stenosis_percent - truth) for truth, _, result in tubes])
    masks = np.mean([abs(mask_only_percent(result) - truth) for truth, _, result in tubes])
    assert edges < 0.75 * masks


def test_reference_and_length_match_the_tube(tubes):
    for _, _, result in tubes:
        # The half-maximum of a cylinder's profile lies at 0.87 of its diameter.
        assert result.reference_px == pytest.approx(0.87 * DIAMETER_PX, rel=0.12)
        # Below 85 % of the reference: 0.75-0.87 of the lesion's full extent, by its shape.
        assert 0.6 * LESION_PX <= result.length_px <= 1.0 * LESION_PX
        assert not result.cto


def test_grades_follow_the_percent(tubes):
    for _, _, result in tubes:
        assert result.grade == grade(result.stenosis_percent)
    assert [grade(p) for p in (0, 49.9, 50, 69.9, 70, 99.9, 100)] == [
        "mild", "mild", "moderate", "moderate", "severe", "severe", "occluded"]
    assert grade(80, cto=True) == "occluded"


def test_a_healthy_stretch_reads_as_no_stenosis():
    frame, vessel, lesion = tube(0.0, True, np.random.default_rng(1))
    result = measure_lesion(frame, vessel, lesion)
    assert result.stenosis_percent < 15
    assert result.grade == "mild"


@pytest.mark.parametrize("curved", [False, True])
def test_a_vessel_that_stops_is_a_total_occlusion(curved):
    frame, vessel, lesion = tube(1.0, curved, np.random.default_rng(2), occluded=True)
    result = measure_lesion(frame, vessel, lesion)
    assert result.cto and result.stenosis_percent == 100 and result.grade == "occluded"
    assert result.mld_px == 0 and result.length_px is None
    assert result.reference_px == pytest.approx(0.87 * DIAMETER_PX, rel=0.15)


def test_a_tight_stenosis_with_the_vessel_beyond_is_not_an_occlusion():
    frame, vessel, lesion = tube(0.95, False, np.random.default_rng(3))
    assert not measure_lesion(frame, vessel, lesion).cto


def test_millimetres_from_the_geometry():
    assert mm_per_pixel((0.3, 0.3), 1000.0, 750.0) == pytest.approx(0.225)
    assert mm_per_pixel(None, 1000.0, 750.0) is None
    assert mm_per_pixel((0.3, 0.3), None, 750.0) is None
    frame, vessel, lesion = tube(0.5, False, np.random.default_rng(4))
    in_px = measure_lesion(frame, vessel, lesion)
    in_mm = measure_lesion(frame, vessel, lesion, mm_per_px=0.225)
    assert in_px.mld_mm is None and in_px.reference_mm is None and in_px.length_mm is None
    assert in_mm.mld_mm == pytest.approx(0.225 * in_mm.mld_px)
    assert in_mm.reference_mm == pytest.approx(0.225 * in_mm.reference_px)
    assert in_mm.length_mm == pytest.approx(0.225 * in_mm.length_px)
    record = in_mm.to_dict()
    assert set(record) == {"stenosis_percent", "grade", "cto", "mld_px", "reference_px",
                           "length_px", "mld_mm", "reference_mm", "length_mm"}


def test_no_vessel_near_the_lesion_is_a_named_error():
    frame, vessel, _ = tube(0.5, False, np.random.default_rng(5))
    far = np.zeros_like(vessel)
    corner = ndimage.distance_transform_edt(~vessel) > 40
    far[tuple(np.argwhere(corner)[0])] = True
    with pytest.raises(NoVesselError, match="no vessel"):
        measure_lesion(frame, vessel, far)
    with pytest.raises(NoVesselError, match="empty"):
        measure_lesion(frame, vessel, np.zeros_like(vessel))


@pytest.fixture(scope="module")
def simulated() -> list[tuple[int, bool, LesionMeasurement]]:
    """Every lesion in every view of a few simulated studies (2 left, 1 right view each):
    truth, whether the view is clear (no crossing vessel, not foreshortened), measurement."""
    measured = []
    for seed in SIMULATED_SEEDS:
        study = simulate_study(seed, 2, 1)
        for view in study.views:
            for item in view_lesions(study, view):
                result = measure_lesion(item.frame, item.vessel, item.outline, item.mm_per_px)
                clear = item.crossed <= 0.05 and item.in_plane >= 0.7
                measured.append((item.lesion.stenosis_percent, clear, result))
    return measured


def test_stenosis_on_simulated_lesions(simulated):
    def mae(rows: list[tuple[int, bool, LesionMeasurement]]) -> float:
        return float(np.mean([abs(result.stenosis_percent - truth) for truth, _, result in rows]))

    graded = [row for row in simulated if row[0] < 100]
    clear = [row for row in graded if row[1]]
    assert len(graded) >= 25 and len(clear) >= 12
    assert mae(graded) <= 12  # measured: 10.2 points over 30 lesion views
    assert mae(clear) <= 7  # measured: 5.0 over the 18 of them in clear views
    assert all(result.mld_mm is not None for _, _, result in simulated)


def test_simulated_occlusions_are_found(simulated):
    occlusions = [result for truth, _, result in simulated if truth == 100]
    assert len(occlusions) >= 4
    assert sum(result.cto for result in occlusions) >= 2 / 3 * len(occlusions)  # 5 of 6
    assert not any(result.cto for truth, _, result in simulated if truth < 100)
