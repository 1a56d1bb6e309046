"""The chest behind the coronaries: lungs, heart shadow, diaphragm, spine, ribs, shutters.

All grey levels are display values (0 black .. 255 white, MONOCHROME2), treated as linear in
X-ray attenuation as after a cath-lab system's log look-up table: denser matter is darker and
darknesses add. Structures are placed by projecting 3D landmarks of the patient with the view's
C-arm, so the spine sits on the image left in RAO and on the right in LAO, and the diaphragm
rises in caudal views. Anatomy that moves with breathing (lungs, heart shadow, diaphragm, ribs)
is drawn on a canvas larger than the detector so the renderer can shift it per frame; the spine
and the collimator shutters stay fixed. Smooth structures are drawn at a quarter resolution and
upsampled, which is both cheaper and realistically soft.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from angioscribe.sim.anatomy3d import Heart
from angioscribe.sim.projection import CArm

LOW_RES = 4  # background detail is drawn on a grid this many times coarser
MARGIN_PX = 32  # how far breathing may shift the moving layer
LUNG_LEVEL = 190.0  # ARCADE frames: background ~150 beside the vessels, lungs brighter
HEART_DARKNESS = 45.0
ABDOMEN_DARKNESS = 75.0
SPINE_DARKNESS = 22.0
RIB_DARKNESS = 16.0
SHUTTER_DARKNESS = 70.0
LUNG_TEXTURE_DEPTH = 3.5  # grey levels (std); deeper mottling took frames away from ARCADE's


@dataclass(frozen=True)
class Background:
    moving: np.ndarray  # (H + 2 MARGIN, W + 2 MARGIN) float32, shifted with breathing
    still: np.ndarray  # (H, W) float32, added unshifted
    noise_sigma: np.ndarray  # (H, W) float32, quantum noise std per pixel (grey levels)


def render_background(arm: CArm, heart: Heart, rng: np.random.Generator,
                      noise_at_mid_grey: float) -> Background:
    size = arm.pixels + 2 * MARGIN_PX
    cols, rows = _grid(size // LOW_RES, LOW_RES, -MARGIN_PX)
    moving_low = (LUNG_LEVEL - HEART_DARKNESS * _heart_shadow(arm, heart, cols, rows)
                  - ABDOMEN_DARKNESS * _abdomen(arm, heart, cols, rows, rng)
                  - RIB_DARKNESS * _ribs(arm, heart, cols, rows, rng)
                  + _lung_texture(rng, cols.shape[0]))
    moving = _upsample(moving_low, size)
    still_cols, still_rows = _grid(arm.pixels // LOW_RES, LOW_RES, 0)
    still_low = (-SPINE_DARKNESS * _spine(arm, heart, still_cols, still_rows)
                 - SHUTTER_DARKNESS * _shutters(still_cols, rng))
    still = _upsample(still_low, arm.pixels)
    level = moving[MARGIN_PX:-MARGIN_PX, MARGIN_PX:-MARGIN_PX] + still
    sigma = noise_at_mid_grey * np.exp((128.0 - np.clip(level, 10, 250)) / 170.0)
    return Background(*(np.ascontiguousarray(layer, dtype=np.float32)
                        for layer in (moving, still, sigma)))


def _grid(n: int, step: int, origin: int) -> tuple[np.ndarray, np.ndarray]:
    """Full-resolution pixel coordinates of the centres of a coarse n x n grid."""
    centres = origin + step * np.arange(n) + (step - 1) / 2.0
    return np.meshgrid(centres, centres)


def _upsample(low: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling of a square grid, separably: rows first, then columns."""
    n = low.shape[0]
    position = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    below = np.minimum(np.floor(position).astype(int), n - 2)
    weight = (position - below).astype(np.float32)
    low = low.astype(np.float32)
    rows = low[below] * (1 - weight)[:, None] + low[below + 1] * weight[:, None]
    return np.ascontiguousarray(rows[:, below] * (1 - weight) + rows[:, below + 1] * weight)


def _heart_shadow(arm: CArm, heart: Heart, cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Normalised chord through the heart (ventricles and atria, a larger ellipsoid)."""
    _, right, down = arm.axes()
    axes = np.stack([heart.long_axis, heart.anterior, heart.lateral], axis=1)
    semi = np.array([heart.half_length_mm * 1.1, heart.radius_mm * 1.15, heart.radius_mm * 1.15])
    shape3d = axes @ np.diag(semi**2) @ axes.T
    plane = np.stack([right, down])
    shape2d = plane @ shape3d @ plane.T
    c0, r0, scale = arm.project(heart.centre[None])
    mm = arm.pixel_spacing_mm / scale[0]
    y = np.stack([(cols - c0[0]) * mm, (rows - r0[0]) * mm], axis=-1)
    q = np.einsum("...i,ij,...j->...", y, np.linalg.inv(shape2d), y)
    return np.clip(1.0 - q, 0.0, None) ** 0.35  # epicardial fat and motion soften the border


def _abdomen(arm: CArm, heart: Heart, cols: np.ndarray, rows: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
    """Below the diaphragm domes: 0 above, rising to 1 (liver, stomach) below."""
    x = np.linspace(-160, 160, 65)
    top = heart.centre[2] - heart.radius_mm * rng.uniform(0.9, 1.2)
    domes = 1.15 * np.exp(-(((x + 60) / 60) ** 2)) + np.exp(-(((x - 60) / 60) ** 2))
    dome = top - 45.0 + 45.0 * domes  # two domes, the right (liver) side higher
    crest = np.stack([x, np.full_like(x, heart.centre[1] + 20), dome], axis=1)
    dome_cols, dome_rows, _ = arm.project(crest)
    order = np.argsort(dome_cols)
    boundary = np.interp(cols, dome_cols[order], dome_rows[order])
    return 1.0 / (1.0 + np.exp(-(rows - boundary) / 12.0))


def _spine(arm: CArm, heart: Heart, cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Vertebral column behind the heart: bodies with brighter disc spaces.

    A straight 3D line projects to a straight image line, so the column is a band around it;
    the position along it maps back to height for the vertebral rhythm (perspective kept).
    """
    z = np.arange(-250.0, 250.0, 5.0)
    # The heart lies left of the midline and well in front of the vertebral bodies.
    axis = np.stack([np.full_like(z, heart.centre[0] - 35), np.full_like(z, heart.centre[1] + 80),
                     z], axis=1)
    axis_cols, axis_rows, scale = arm.project(axis)
    start = np.array([axis_cols[0], axis_rows[0]])
    direction = np.array([axis_cols[-1], axis_rows[-1]]) - start
    length = np.linalg.norm(direction)
    direction /= length
    rel_cols, rel_rows = cols - start[0], rows - start[1]
    along = rel_cols * direction[0] + rel_rows * direction[1]
    distance = np.abs(rel_cols * direction[1] - rel_rows * direction[0])
    half_width = 24.0 * scale.mean() / arm.pixel_spacing_mm
    edge = np.clip((half_width - distance) / (0.3 * half_width), 0.0, 1.0)
    body = edge * edge * (3.0 - 2.0 * edge)  # soft-edged band: the body and its pedicles
    axis_along = (axis_cols - start[0]) * direction[0] + (axis_rows - start[1]) * direction[1]
    height = np.interp(along, axis_along, z)
    discs = 0.5 + 0.5 * np.cos(2 * np.pi * height / 30.0)
    return body * (0.8 + 0.2 * discs)


def _ribs(arm: CArm, heart: Heart, cols: np.ndarray, rows: np.ndarray,
          rng: np.random.Generator) -> np.ndarray:
    """Rib arcs from the spine round the chest wall, sloping down toward the front."""
    n = cols.shape[0]
    canvas = np.zeros((n, n))
    sweep = np.linspace(0.0, np.pi * 0.8, 120)
    for level in np.arange(-140.0, 160.0, 26.0) + rng.uniform(-6, 6):
        for side in (-1.0, 1.0):
            x = heart.centre[0] - 35 + side * 135 * np.sin(sweep)
            y = heart.centre[1] + 95 * np.cos(sweep)
            z = level - 45 * (1 - np.cos(sweep)) / 2
            c, r, _ = arm.project(np.stack([x, y, z], axis=1))
            gc = np.rint((c + MARGIN_PX) / LOW_RES).astype(int)
            gr = np.rint((r + MARGIN_PX) / LOW_RES).astype(int)
            inside = (gc >= 0) & (gc < n) & (gr >= 0) & (gr < n)
            canvas[gr[inside], gc[inside]] = 1.0
    rib_width_px = 11.0 * arm.magnification / arm.pixel_spacing_mm / LOW_RES
    ribs = ndimage.gaussian_filter(canvas, rib_width_px / 2.5)
    return np.clip(ribs / max(ribs.max(), 1e-6) * 1.6, 0.0, 1.0)


def _lung_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Lung markings: band-passed noise (on the coarse grid), a few grey levels deep."""
    noise = rng.standard_normal((size, size))
    texture = ndimage.gaussian_filter(noise, 0.7) - ndimage.gaussian_filter(noise, 2.5)
    return texture * LUNG_TEXTURE_DEPTH / max(float(texture.std()), 1e-6)


def _shutters(cols: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Collimator shutters: a thin dark frame at the edges, as on real cine frames.

    No vignetting: ARCADE frames stay bright up to the shutters, and dark corners made the
    out-of-scope guard refuse most simulated key frames (docs/experiments/sim-realism.md).
    `cols` are detector pixel coordinates (a square grid), 0 at the first pixel.
    """
    size = cols.shape[1] * LOW_RES
    half = size / 2.0
    x, y = cols - (size - 1) / 2.0, cols.T - (size - 1) / 2.0
    edge = half - rng.uniform(3, 10)
    return 1.0 / (1.0 + np.exp(-(np.maximum(np.abs(x), np.abs(y)) - edge) / 1.5))
