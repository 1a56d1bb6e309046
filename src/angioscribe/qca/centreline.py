"""The centre line of the vessel through a lesion: a path over the vessel mask's skeleton.

QCA measures along the vessel, from a healthy stretch before the lesion to one after it. The
mask's skeleton (scikit-image) is turned into a pixel graph; from the skeleton pixel nearest
the lesion, shortest paths run both ways along the vessel (scipy's Dijkstra), each as far as
the lesion's extent plus a reference stretch. At a bifurcation the longer branch is taken, a
side branch being usually the shorter. The path is then smoothed and resampled at 1 px, so
the lumen profiles taken across it are evenly spaced and perpendicular to the vessel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse.csgraph import dijkstra
from skimage.graph import pixel_graph
from skimage.morphology import skeletonize

# Skeleton pixels within this path distance of the seed give the vessel's local direction.
DIRECTION_RADIUS_PX = 6.0
# Smoothing of the skeleton path (its pixel staircase) before profiles are taken across it.
PATH_SMOOTHING_PX = 2.0


class NoVesselError(ValueError):
    """No vessel (no skeleton of the vessel mask) lies near the lesion: nothing to measure."""


@dataclass(frozen=True)
class VesselPath:
    """Centre line points (N, 2) as (row, col), 1 px apart and smoothed, and what lies where.

    `seed` is the index of the point nearest the lesion. `open_ends` says, for the first and
    the last point, whether the vessel stops there (a skeleton end point reached before the
    reference stretch was complete) rather than going on beyond the measured stretch.
    """

    points: np.ndarray
    seed: int
    open_ends: tuple[bool, bool]

    @property
    def normals(self) -> np.ndarray:
        """Unit vectors (N, 2) perpendicular to the path, (row, col)."""
        tangent = np.gradient(self.points, axis=0)
        tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
        return np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)


def lesion_path(vessel: np.ndarray, lesion: np.ndarray, reach_px: float,
                search_px: float) -> VesselPath:
    """The centre line through the lesion and `reach_px` beyond it on both sides.

    `vessel` and `lesion` are (H, W) bool masks; the lesion region joins the vessel mask for
    the skeleton, so a stenosis tight enough to break the vessel mask is still crossed.
    Raises NoVesselError when no skeleton pixel lies within `search_px` of the lesion.
    """
    skeleton = skeletonize(vessel | lesion)
    graph, nodes = pixel_graph(skeleton, connectivity=2)
    if len(nodes) == 0:
        raise NoVesselError("the vessel mask has no centre line near the lesion")
    positions = np.stack(np.unravel_index(nodes, skeleton.shape), axis=1).astype(np.float64)
    centre = np.argwhere(lesion).mean(axis=0)
    gap = np.hypot(*(positions - centre).T)
    seed = int(np.argmin(gap))
    if gap[seed] > search_px:
        raise NoVesselError(f"no vessel centre line within {search_px:.0f} px of the lesion")
    distance, previous = dijkstra(graph, directed=False, indices=seed, return_predecessors=True)
    degree = np.diff(graph.indptr)
    inside = lesion.ravel()[nodes]
    halves, ends = [], []
    for side in _sides(positions, distance, previous, seed):
        extent = distance[side & inside].max(initial=0.0) + reach_px
        reachable = side & (distance <= extent)
        if not reachable.any():
            halves.append(np.empty((0, 2)))
            ends.append(True)
            continue
        end = int(np.flatnonzero(reachable)[np.argmax(distance[reachable])])
        halves.append(positions[_chain(previous, end, seed)])
        ends.append(bool(degree[end] <= 1 and distance[end] < extent - 1.0))
    raw = np.vstack([halves[0][::-1], positions[seed][None], halves[1]])
    points, seed_index = _smooth_resample(raw, len(halves[0]))
    return VesselPath(points, seed_index, (ends[0], ends[1]))


def _sides(positions: np.ndarray, distance: np.ndarray, previous: np.ndarray,
           seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Reachable skeleton pixels split by which way along the vessel their path leaves the
    seed: the side of the vessel's local direction on which the path is DIRECTION_RADIUS_PX
    from the seed (a curved vessel keeps its side however far it bends later)."""
    reachable = np.isfinite(distance)
    near = reachable & (distance <= DIRECTION_RADIUS_PX)
    offsets = positions[near] - positions[seed]
    direction = _main_axis(offsets) if len(offsets) > 1 else np.array([1.0, 0.0])
    anchor = np.arange(len(positions))
    for node in np.argsort(distance)[: int(reachable.sum())]:
        parent = previous[node]
        if parent >= 0 and distance[parent] > DIRECTION_RADIUS_PX:
            anchor[node] = anchor[parent]
    along = (positions[anchor] - positions[seed]) @ direction
    return reachable & (along < 0), reachable & (along > 0)


def _main_axis(offsets: np.ndarray) -> np.ndarray:
    """Unit direction of largest spread of points around the seed (their first principal
    axis, through the seed rather than their mean, so one-sided sets still point along)."""
    _, _, axes = np.linalg.svd(offsets, full_matrices=False)
    return axes[0]


def _chain(previous: np.ndarray, end: int, seed: int) -> np.ndarray:
    """Nodes from the seed (excluded) out to `end`, following Dijkstra's predecessors."""
    chain = []
    node = end
    while node != seed and node >= 0:
        chain.append(node)
        node = previous[node]
    return np.array(chain[::-1], dtype=np.intp)


def _smooth_resample(raw: np.ndarray, seed: int) -> tuple[np.ndarray, int]:
    """The pixel path smoothed and resampled at 1 px steps; the seed's index in the result."""
    smooth = ndimage.gaussian_filter1d(raw, PATH_SMOOTHING_PX, axis=0, mode="nearest")
    steps = np.hypot(*np.diff(smooth, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    at = np.arange(0.0, arc[-1] + 1e-9, 1.0)
    points = np.stack([np.interp(at, arc, smooth[:, k]) for k in range(2)], axis=1)
    return points, int(np.argmin(np.abs(at - arc[seed])))
