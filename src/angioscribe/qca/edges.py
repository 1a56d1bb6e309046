"""Lumen diameters along a centre line: the mask's width, refined by sub-pixel grey-level edges.

A vessel model's mask is whole pixels wide, and on a 10-13 px vessel one pixel is 8-10 points
of % stenosis; classic QCA finds the lumen edges on the grey levels instead. Across every
centre line point a grey-level profile is sampled perpendicular to the vessel (bilinear,
scipy's `map_coordinates`), averaged with its neighbours along the vessel against noise. On
each side the edge is where the profile climbs half-way from the lumen's darkest level to that
side's background (the half-maximum criterion), interpolated between samples. The mask guides
the search: an edge is sought no further than EDGE_GUARD_PX beyond the mask's edge and the
background is read just outside that, so a neighbouring vessel is never taken for the lumen.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from angioscribe.qca.centreline import VesselPath

SAMPLE_STEP_PX = 0.25
# An edge is sought at most this far beyond the mask's edge: the mask's own uncertainty. Where
# a tight stenosis breaks the mask, the lumen is thinner than the mask can see, and its edges
# are sought within this distance of the centre line.
EDGE_GUARD_PX = 1.5
# Background is read over this band outside the searched part of the profile.
BACKGROUND_BAND_PX = 3.0
# Profiles averaged along the vessel (each with its neighbours) before edges are sought.
PROFILES_AVERAGED = 9
# Fraction of the way from lumen minimum to background where the edge lies.
EDGE_LEVEL = 0.5


def mask_diameters(vessel: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Mask width at each centre line point: twice the distance to the nearest background
    pixel, less the pixel the centre itself occupies (a 12-pixel-wide mask gives 12)."""
    inside = ndimage.distance_transform_edt(vessel)
    return np.clip(2.0 * ndimage.map_coordinates(inside, points.T, order=1) - 1.0, 0.0, None)


def edge_diameters(frame: np.ndarray, path: VesselPath, mask_width: np.ndarray
                   ) -> np.ndarray:
    """Lumen diameter (px) at each centre line point from sub-pixel edges on grey profiles."""
    half = mask_width / 2.0 + EDGE_GUARD_PX
    reach = float(half.max()) + BACKGROUND_BAND_PX
    offsets = np.arange(-reach, reach + SAMPLE_STEP_PX / 2, SAMPLE_STEP_PX)
    where = path.points[:, :, None] + path.normals[:, :, None] * offsets[None, None, :]
    profiles = ndimage.map_coordinates(frame.astype(np.float32), where.transpose(1, 0, 2),
                                       order=1, mode="nearest")
    profiles = ndimage.uniform_filter1d(profiles, PROFILES_AVERAGED, axis=0, mode="nearest")
    return _half_maximum_widths(profiles, offsets, half)


def _half_maximum_widths(profiles: np.ndarray, offsets: np.ndarray, limit: np.ndarray
                         ) -> np.ndarray:
    """Distance between the half-maximum crossings either side of each profile's minimum
    (profiles (N, K) sampled at `offsets` (K,), searched within +-`limit` (N,))."""
    searched = np.abs(offsets)[None, :] <= limit[:, None]
    centre = np.argmin(np.where(searched, profiles, np.inf), axis=1)
    right = _crossings(profiles, offsets, limit, centre)
    left = _crossings(profiles[:, ::-1], -offsets[::-1], limit, len(offsets) - 1 - centre)
    return right + left


def _crossings(profiles: np.ndarray, offsets: np.ndarray, limit: np.ndarray,
               centre: np.ndarray) -> np.ndarray:
    """Sub-pixel distance from each profile's centre offset out (toward larger offsets) to
    where it first reaches the edge level between its darkest value and the background just
    beyond `limit`; `limit` when it never does, none when there is no darker lumen."""
    rows = np.arange(len(profiles))
    band = (offsets[None, :] > limit[:, None]) & (
        offsets[None, :] <= limit[:, None] + BACKGROUND_BAND_PX)
    background = np.nanmedian(np.where(band, profiles, np.nan), axis=1)
    darkest = profiles[rows, centre]
    level = darkest + EDGE_LEVEL * (background - darkest)
    index = np.arange(len(offsets))[None, :]
    beyond = (index > centre[:, None]) & (offsets[None, :] - offsets[1] + offsets[0]
                                          <= limit[:, None])
    above = beyond & (profiles >= level[:, None])
    found = above.any(axis=1)
    after = np.where(found, np.argmax(above, axis=1), centre + 1)
    before = np.maximum(after - 1, 0)
    low, high = profiles[rows, before], profiles[rows, np.minimum(after, len(offsets) - 1)]
    fraction = np.clip((level - low) / np.maximum(high - low, 1e-6), 0.0, 1.0)
    edge = offsets[before] + fraction * (offsets[1] - offsets[0])
    edge = np.where(found, edge, limit)
    edge = np.where(background > darkest, edge, offsets[centre])
    return edge - offsets[centre]
