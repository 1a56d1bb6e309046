"""Cine rendering: a scene, a C-arm and a timeline become frames plus per-frame truth.

The vessel footprint is rasterised once at rest (`sim.raster`); each frame then moves every
footprint entry with its centreline sample (3D heart motion and breathing, projected), scales
its iodine by that sample's contrast concentration, and splats it bilinearly into the frame:
work per frame is proportional to the vessel area, not to a re-rasterisation. Background
anatomy is a shifted slice of a pre-drawn canvas; quantum noise is a window of a pre-blurred
noise field scaled by the local dose, at a different offset in every frame. Everything per
frame is vectorised numpy.

Per frame the truth is: the segment label map (which SYNTAX segment is opacified where), the
opacification level of the injected tree, the projected heart motion and the key-frame label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from angioscribe.sim.anatomy3d import Heart
from angioscribe.sim.background import MARGIN_PX, Background
from angioscribe.sim.contrast import Injection
from angioscribe.sim.keyframes import keyframe_label
from angioscribe.sim.motion import Breathing, CardiacMotion
from angioscribe.sim.projection import CArm
from angioscribe.sim.raster import Footprint, Tubes, rasterise
from angioscribe.sim.scene import Scene

IODINE_GREY_PER_MM = 20.0  # darkening by 1 mm of undiluted contrast
WALL_GREY_PER_MM = 15.0  # darkening by 1 mm of dense calcium (or catheter wall)
MASK_MIN_FILL = 0.5  # a pixel is labelled when its contrast is at least this concentrated
MASK_MIN_IODINE_MM = 0.4  # ... and the lumen there at least this thick (not the soft edge)
MOTION_PERCENTILE = 90
MOTION_SUBSAMPLE = 4  # every 4th centreline sample (2 mm apart) is enough to measure motion
NOISE_BLUR_PX = 1.0  # detector correlation of quantum noise (real cines: ~0.75 at lag 1)
NOISE_MARGIN_PX = 256
NOISE_SHIFT_PX = 64  # per-view noise is scaled once; frames take windows up to this far off
NOISE_SHIFT_STEP_PX = 4  # window offsets on this lattice: frames share no noise


@dataclass(frozen=True)
class Timeline:
    """When frames are taken and what the heart, lungs and contrast do meanwhile."""

    fps: float
    n_frames: int
    cardiac: CardiacMotion
    breathing: Breathing
    injection: Injection

    @property
    def times_s(self) -> np.ndarray:
        return np.arange(self.n_frames) / self.fps


@dataclass
class RenderedCine:
    frames: np.ndarray  # (T, H, W) uint8, MONOCHROME2 (vessels dark)
    masks: np.ndarray  # (T, H, W) uint8 segment codes (anatomy3d.SEGMENT_CODES), 0 elsewhere
    times_s: np.ndarray
    opacification: np.ndarray
    motion_mm_s: np.ndarray
    contraction: np.ndarray
    labels: list[str]


def noise_field(rng: np.random.Generator, size: int) -> np.ndarray:
    """Unit-variance, detector-blurred noise somewhat larger than the detector, shared by a
    study's views: each view takes its own region of it (see `_dose_scaled_noise`)."""
    side = size + NOISE_MARGIN_PX
    field = ndimage.gaussian_filter(rng.standard_normal((side, side), dtype=np.float32),
                                    NOISE_BLUR_PX)
    return field / field.std()


def tubes_for(scene: Scene, arm: CArm) -> Tubes:
    cols, rows, scale = arm.project(scene.points)
    return Tubes(cols, rows, arm.pixel_spacing_mm / scale, scene.lumen_mm, scene.outer_mm,
                 scene.thrombus_mm, scene.wall_density, scene.wall_two_sided,
                 scene.wall_shell_mm, scene.group)


class _Splatter:
    """Moves footprint entries with their samples and subtracts them from a frame, bilinearly.

    All entries of one centreline sample share its displacement, so the whole-pixel shift, the
    fractions and whether it is still on the frame are computed per sample (a few thousand)
    and gathered per entry. Entries are kept in pixel order (cache-friendly scattering); the
    label entries separately, thinnest first, so where vessels cross the thicker one is
    written last and wins in the mask.
    """

    def __init__(self, footprint: Footprint, shape: tuple[int, int], codes: np.ndarray) -> None:
        self.shape = shape
        order = np.argsort(footprint.pixel, kind="stable")
        self.sample = footprint.sample[order].astype(np.intp)
        self.pixel = footprint.pixel[order].astype(np.intp)
        self.iodine = (footprint.iodine_mm[order] * IODINE_GREY_PER_MM).astype(np.float32)
        self.wall = (footprint.wall_mm[order] * WALL_GREY_PER_MM).astype(np.float32)
        # Each sample's footprint box, to drop a sample whole when it moves off the frame.
        rows, cols = np.divmod(self.pixel, shape[1])
        count = int(codes.shape[0])
        self.box = [np.full(count, fill) for fill in (shape[0], -1, shape[1], -1)]
        np.minimum.at(self.box[0], self.sample, rows)
        np.maximum.at(self.box[1], self.sample, rows)
        np.minimum.at(self.box[2], self.sample, cols)
        np.maximum.at(self.box[3], self.sample, cols)
        # Entries that can be labelled: the lumen core of a numbered segment.
        by_thickness = np.argsort(footprint.iodine_mm, kind="stable")
        sample = footprint.sample[by_thickness].astype(np.intp)
        labelable = (footprint.iodine_mm[by_thickness] >= MASK_MIN_IODINE_MM) & (codes[sample] > 0)
        self.label_sample = sample[labelable]
        self.label_code = codes[self.label_sample]
        rows, cols = np.divmod(footprint.pixel[by_thickness].astype(np.intp), shape[1])
        self.label_rows, self.label_cols = rows[labelable], cols[labelable]

    def subtract(self, image: np.ndarray, fill: np.ndarray, shift_cols: np.ndarray,
                 shift_rows: np.ndarray) -> None:
        """Darken `image` (float32, in place) by every entry's attenuation at its new place."""
        height, width = self.shape
        whole_rows, whole_cols = np.floor(shift_rows), np.floor(shift_cols)
        down, right = whole_rows.astype(np.intp), whole_cols.astype(np.intp)
        top, bottom, left, last = self.box
        on_frame = ((top + down >= 0) & (bottom + down < height - 1) & (left + right >= 0)
                    & (last + right < width - 1))
        value = self.iodine * fill.astype(np.float32)[self.sample] + self.wall
        keep = (value > 0) & on_frame[self.sample]  # no contrast or calcium: nothing to add
        sample, value = self.sample[keep], value[keep]
        index = self.pixel[keep] + (down * width + right)[sample]
        high = value * (shift_rows - whole_rows).astype(np.float32)[sample]
        low = value - high
        fraction = (shift_cols - whole_cols).astype(np.float32)[sample]
        low_right, high_right = low * fraction, high * fraction
        np.subtract.at(image.reshape(-1),
                       np.concatenate([index, index + 1, index + width, index + width + 1]),
                       np.concatenate([low - low_right, low_right, high - high_right,
                                       high_right]))

    def label(self, mask: np.ndarray, fill: np.ndarray, shift_cols: np.ndarray,
              shift_rows: np.ndarray) -> None:
        """Segment codes where the lumen is clearly opacified, written into `mask`."""
        visible = (fill >= MASK_MIN_FILL)[self.label_sample]
        sample = self.label_sample[visible]
        rows = self.label_rows[visible] + np.floor(shift_rows + 0.5).astype(np.intp)[sample]
        cols = self.label_cols[visible] + np.floor(shift_cols + 0.5).astype(np.intp)[sample]
        height, width = self.shape
        inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        mask.reshape(-1)[rows[inside] * width + cols[inside]] = self.label_code[visible][inside]


def render_cine(scene: Scene, arm: CArm, heart: Heart, timeline: Timeline,
                background: Background, noise: np.ndarray, rng: np.random.Generator
                ) -> RenderedCine:
    shape = (arm.pixels, arm.pixels)
    times = timeline.times_s
    rest_cols, rest_rows, _ = arm.project(scene.points)
    reference = scene.injected & scene.antegrade
    codes = np.where(reference, scene.code, 0).astype(np.uint8)
    splatter = _Splatter(rasterise(tubes_for(scene, arm), shape), shape, codes)
    cols, rows = project_over_time(scene.points, scene.motion_weight, arm, heart, timeline, times)
    fill = timeline.injection.fill(times[:, None], scene.path_mm, scene.delay_s,
                                   scene.antegrade, scene.collateral)
    fill[:, scene.always_filled] = 1.0
    opacification = fill[:, reference].mean(axis=1) if reference.any() else np.zeros(len(times))
    motion = motion_mm_s(scene, arm, heart, timeline)
    breath_cols, breath_rows = _breathing_shift(arm, heart, timeline)
    frames = np.empty((len(times), *shape), dtype=np.uint8)
    masks = np.zeros((len(times), *shape), dtype=np.uint8)
    noisy, offsets = _dose_scaled_noise(background.noise_sigma, noise, len(times), rng)
    image = np.empty(shape, dtype=np.float32)
    for index in range(len(times)):
        shift_cols, shift_rows = cols[index] - rest_cols, rows[index] - rest_rows
        _background_into(image, background, breath_cols[index], breath_rows[index])
        splatter.subtract(image, fill[index], shift_cols, shift_rows)
        top, left = offsets[index]
        image += noisy[top:top + shape[0], left:left + shape[1]]
        np.clip(image, 0, 255, out=frames[index], casting="unsafe")
        splatter.label(masks[index], fill[index], shift_cols, shift_rows)
    labels = [keyframe_label(o, m) for o, m in zip(opacification, motion, strict=True)]
    return RenderedCine(frames, masks, times, opacification, motion,
                        timeline.cardiac.contraction(times), labels)


def project_over_time(points: np.ndarray, weight: np.ndarray, arm: CArm, heart: Heart,
                      timeline: Timeline, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Projected positions (T, N) of points moving with the heart (by `weight`) and breath."""
    shift = weight[:, None] * timeline.cardiac.systolic_shift(heart, points)
    level = timeline.cardiac.contraction(times)
    moved = (points + level[:, None, None] * shift) + timeline.breathing.offset(times)[:, None]
    cols, rows, _ = arm.project(moved)
    return cols, rows


def motion_mm_s(scene: Scene, arm: CArm, heart: Heart, timeline: Timeline) -> np.ndarray:
    """Per frame, the projected speed of the injected tree (90th percentile), mm/s at isocentre.

    Measured over a quarter frame around each frame time, i.e. the instantaneous speed that
    blurs a frame and makes a reader skip it.
    """
    points = scene.points[scene.injected][::MOTION_SUBSAMPLE]
    if len(points) == 0:
        return np.zeros(timeline.n_frames)
    half = 0.25 / timeline.fps
    weight = np.ones(len(points))
    times = timeline.times_s
    before = project_over_time(points, weight, arm, heart, timeline, times - half)
    after = project_over_time(points, weight, arm, heart, timeline, times + half)
    _, _, scale = arm.project(points)
    pixels = np.hypot(after[0] - before[0], after[1] - before[1])
    speed = pixels * arm.pixel_spacing_mm / scale / (2 * half)
    return np.percentile(speed, MOTION_PERCENTILE, axis=1)


def _breathing_shift(arm: CArm, heart: Heart, timeline: Timeline
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Image shift (pixels) of the structures that move with breathing, per frame."""
    centre_cols, centre_rows, _ = arm.project(heart.centre[None])
    cols, rows, _ = arm.project(heart.centre + timeline.breathing.offset(timeline.times_s))
    return cols - centre_cols[0], rows - centre_rows[0]


def _background_into(image: np.ndarray, background: Background, shift_cols: float,
                     shift_rows: float) -> None:
    """The moving layer shifted by the breathing offset (whole pixels) plus the still layer."""
    height, width = image.shape
    dc = int(np.clip(np.rint(shift_cols), -MARGIN_PX, MARGIN_PX))
    dr = int(np.clip(np.rint(shift_rows), -MARGIN_PX, MARGIN_PX))
    top, left = MARGIN_PX - dr, MARGIN_PX - dc
    np.add(background.moving[top:top + height, left:left + width], background.still, out=image)


def _dose_scaled_noise(sigma: np.ndarray, noise: np.ndarray, frames: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noise scaled by the local dose, from a random region of the study's noise field, and one
    distinct window offset per frame.

    Scaling once per view instead of per frame saves a full-frame pass; the price is that a
    frame's noise level follows the dose up to NOISE_SHIFT_PX away, which the smooth dose map
    hardly notices. Offsets on a 4 px lattice, never repeated, keep frames' noise independent.
    """
    height, width = sigma.shape
    padded = np.pad(sigma, ((0, NOISE_SHIFT_PX), (0, NOISE_SHIFT_PX)), mode="edge")
    top, left = rng.integers(0, np.array(noise.shape) - padded.shape + 1)
    noisy = padded * noise[top:top + padded.shape[0], left:left + padded.shape[1]]
    side = NOISE_SHIFT_PX // NOISE_SHIFT_STEP_PX
    chosen = rng.choice(side * side, size=frames, replace=frames > side * side)
    offsets = np.stack(np.divmod(chosen, side), axis=1) * NOISE_SHIFT_STEP_PX
    return noisy.astype(np.float32), offsets
