"""Tubes to pixels: the footprint of projected vessels, computed once per view.

Every pixel near a projected centreline gets the X-ray path length through the vessel there:
the chord of the lumen (filled with contrast when it arrives), minus the chord of a thrombus
(a filling defect), and the chord through a thin radio-opaque shell in the wall (calcium, stent
struts, the catheter wall), which is visible with or without contrast. Because chords, not
masks, are stored, a vessel seen end-on is darker, small vessels are faint, and a calcified
wall shows the "tram-track" of two lines seen in real angiograms.

Each entry remembers the centreline sample it belongs to, so the renderer can move it with that
sample during the heart beat and scale its iodine by that sample's contrast concentration.
Within one vessel a pixel belongs to the nearest sample along the vessel; different vessels
overlap freely, and their attenuations add as X-ray attenuation does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EDGE_SOFTNESS_PX = 0.4  # half-width of the edge blur (focal spot and detector unsharpness)
SCAN_STEP_PX = 0.7  # candidate pixels are sought on a grid this fine, rotated with the vessel
ALONG_STEPS_PX = np.arange(-2, 3) * SCAN_STEP_PX


@dataclass(frozen=True)
class Tubes:
    """Centreline samples to draw, projected, with their radii (mm) and wall properties."""

    cols: np.ndarray
    rows: np.ndarray
    mm_per_px: np.ndarray  # pixel spacing divided by each sample's magnification
    lumen_mm: np.ndarray
    outer_mm: np.ndarray
    thrombus_mm: np.ndarray
    wall_density: np.ndarray
    wall_two_sided: np.ndarray
    wall_shell_mm: np.ndarray
    group: np.ndarray  # vessel index: pixels are shared out within a group only


@dataclass(frozen=True)
class Footprint:
    """Pixel entries of all tubes: flat pixel index, sample index and the two chords (mm)."""

    pixel: np.ndarray
    sample: np.ndarray
    iodine_mm: np.ndarray
    wall_mm: np.ndarray


def chord(radius: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Path length through a cylinder of `radius` at `distance` from its axis."""
    return 2.0 * np.sqrt(np.clip(radius**2 - distance**2, 0.0, None))


def soft_chord(radius: np.ndarray, distance: np.ndarray, blur: np.ndarray) -> np.ndarray:
    """The chord averaged over +-blur across the vessel: a cheap edge spread function."""
    return (chord(radius, distance - blur) + chord(radius, distance) +
            chord(radius, distance + blur)) / 3.0


def rasterise(tubes: Tubes, shape: tuple[int, int]) -> Footprint:
    """The footprint of all tubes.

    Each sample stands for a thin slab of its tube; candidate pixels are found by stepping
    across and along the slab a little finer than the pixel pitch (so no pixel is skipped),
    samples being bucketed by how far across they reach. Each pixel is then given, per vessel,
    to the sample it is nearest to along the vessel.
    """
    tangent_cols, tangent_rows, half = _tangents(tubes)
    reach = (tubes.outer_mm + tubes.wall_shell_mm) / tubes.mm_per_px + EDGE_SOFTNESS_PX
    steps = np.ceil(reach / SCAN_STEP_PX).astype(int)
    candidates = [_candidates(tubes, np.flatnonzero(steps == count), count, tangent_cols,
                              tangent_rows, half, reach, shape) for count in np.unique(steps)]
    sample, pixel, along, across = (np.concatenate(parts) for parts in zip(*candidates,
                                                                            strict=True))
    keep = _nearest_per_pixel(tubes.group[sample].astype(np.int64) * shape[0] * shape[1] + pixel,
                              np.abs(along))
    sample, pixel, across = sample[keep], pixel[keep], across[keep]
    iodine, wall = _chords(tubes, sample, across)
    visible = (iodine > 1e-3) | (wall > 1e-3)
    return Footprint(pixel[visible].astype(np.int32), sample[visible].astype(np.int32),
                     iodine[visible].astype(np.float32), wall[visible].astype(np.float32))


def _tangents(tubes: Tubes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit tangents along each projected centreline and each sample's half spacing (px).

    Differences are taken within a vessel only, so one vessel's end does not bend the next.
    """
    cols, rows = tubes.cols, tubes.rows
    same_next = np.concatenate([tubes.group[1:] == tubes.group[:-1], [False]])
    same_prev = np.concatenate([[False], same_next[:-1]])
    index = np.arange(len(cols))
    ahead = np.where(same_next, index + 1, index)
    behind = np.where(same_prev, index - 1, index)
    dc, dr = cols[ahead] - cols[behind], rows[ahead] - rows[behind]
    steps = np.maximum(ahead - behind, 1)
    length = np.hypot(dc, dr)
    safe = np.where(length > 1e-6, length, 1.0)
    tangent_cols = np.where(length > 1e-6, dc / safe, 1.0)
    tangent_rows = np.where(length > 1e-6, dr / safe, 0.0)
    return tangent_cols, tangent_rows, np.maximum(length / steps / 2.0, 0.35)


def _candidates(tubes: Tubes, index: np.ndarray, steps: int, tangent_cols: np.ndarray,
                tangent_rows: np.ndarray, half: np.ndarray, reach: np.ndarray,
                shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """(sample, pixel, along, across) for pixels in the slab of each sample of one bucket."""
    height, width = shape
    across_steps = np.arange(-steps, steps + 1) * SCAN_STEP_PX
    a, b = (g.ravel() for g in np.meshgrid(ALONG_STEPS_PX, across_steps))
    cols, rows = tubes.cols[index, None], tubes.rows[index, None]
    tc, tr = tangent_cols[index, None], tangent_rows[index, None]
    pc = np.rint(cols + a * tc - b * tr).astype(np.int64)
    pr = np.rint(rows + a * tr + b * tc).astype(np.int64)
    vc, vr = pc - cols, pr - rows
    along = vc * tc + vr * tr
    across = vr * tc - vc * tr
    keep = ((np.abs(along) <= half[index, None] + 0.3) & (np.abs(across) <= reach[index, None])
            & (pc >= 0) & (pc < width) & (pr >= 0) & (pr < height))
    local = np.nonzero(keep)[0]
    return index[local], pr[keep] * width + pc[keep], along[keep], across[keep]


def _nearest_per_pixel(key: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Indices keeping, for each key (vessel and pixel), the entry with the smallest distance.

    Key and quantised distance are packed into one integer so a single (radix-fast, stable)
    sort groups the keys with their nearest entry first.
    """
    packed = key * 4096 + np.minimum(distance * 1000, 4095).astype(np.int64)
    order = np.argsort(packed, kind="stable")
    sorted_keys = key[order]
    first = np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]])
    return order[first]


def _chords(tubes: Tubes, sample: np.ndarray, across_px: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Iodine chord (lumen minus thrombus) and radio-opaque wall chord, in mm."""
    scale = tubes.mm_per_px[sample]
    d = across_px * scale
    blur = EDGE_SOFTNESS_PX * scale
    lumen, thrombus = tubes.lumen_mm[sample], tubes.thrombus_mm[sample]
    # A mural thrombus hugs one side of the lumen, leaving contrast around it.
    offset = 0.6 * (lumen - thrombus)
    iodine = np.clip(soft_chord(lumen, np.abs(d), blur)
                     - soft_chord(thrombus, np.abs(d - offset), blur), 0.0, None)
    outer = tubes.outer_mm[sample]
    shell = soft_chord(outer + tubes.wall_shell_mm[sample], np.abs(d), blur) - soft_chord(
        outer, np.abs(d), blur)
    one_side = tubes.wall_two_sided[sample] | (d > 0)
    wall = tubes.wall_density[sample] * shell * one_side
    return iodine, wall
