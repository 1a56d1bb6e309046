"""Coronary trees in 3D: centrelines with SYNTAX segment numbers on an ellipsoidal heart.

The heart is a prolate ellipsoid for both ventricles. A point on it is (u, phi): u runs along
the long axis from -1 (base side) to +1 (apex); phi (degrees) goes round it from the anterior
interventricular groove (0) over the left-ventricular lateral wall (90) to the posterior
interventricular groove (about 205) and back over the right ventricle (the acute margin near
270). The atrioventricular (AV) groove is the ring u = `av_groove_u`. Arteries run where
anatomy puts them: the RCA and LCX in the AV groove, the LAD and PDA in the interventricular
grooves, diagonals and marginals down the walls, each a little above the surface (epicardial
fat). This is enough for segment-level truth and plausible projections, and far from a
patient-specific model.

Each artery is one `Vessel`: a centreline sampled every `SAMPLE_SPACING_MM`, its healthy lumen
radius, the SYNTAX segment of each sample and the path length from the ostium (which times the
contrast front). Unnamed small branches (septals, RV branches, distal twigs) carry segment code
0: they are drawn but, as in ARCADE, not labelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.interpolate import make_interp_spline

from angioscribe.anatomy import SEGMENTS, Laterality

Dominance = Literal["right", "left", "co"]
DOMINANCE_PROBABILITY: dict[Dominance, float] = {"right": 0.8, "left": 0.1, "co": 0.1}

SAMPLE_SPACING_MM = 0.5
FAT_MM = 1.0  # centreline height above the myocardium, beyond the vessel's own radius

# Segment codes (masks, per-sample arrays): 0 = unlabelled vessel, then SYNTAX order.
SEGMENT_CODES: dict[str, int] = {number: code for code, number in enumerate(SEGMENTS, start=1)}
CODE_SEGMENTS: dict[int, str] = {code: number for number, code in SEGMENT_CODES.items()}


@dataclass(frozen=True)
class Heart:
    """The ventricles as an ellipsoid placed in patient (LPS) coordinates around the isocentre."""

    centre: np.ndarray
    long_axis: np.ndarray  # unit vector, base -> apex (points left, anterior, inferior)
    anterior: np.ndarray  # unit vector toward phi = 0 (anterior interventricular groove)
    lateral: np.ndarray  # unit vector toward phi = 90 (left-ventricular lateral wall)
    half_length_mm: float
    radius_mm: float
    av_groove_u: float

    def surface(self, u: np.ndarray, phi_deg: np.ndarray, lift_mm: np.ndarray | float = 0.0
                ) -> np.ndarray:
        """Points at (u, phi), `lift_mm` outside the ellipsoid (radially from the long axis)."""
        u = np.asarray(u, dtype=float)
        phi = np.radians(phi_deg)
        ring = self.radius_mm * np.sqrt(np.clip(1.0 - u**2, 0.0, None)) + lift_mm
        radial = np.cos(phi)[..., None] * self.anterior + np.sin(phi)[..., None] * self.lateral
        return self.centre + (self.half_length_mm * u)[..., None] * self.long_axis + ring[
            ..., None] * radial

    def coordinates(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(u, phi in degrees) of points, the inverse of `surface` up to the lift."""
        rel = points - self.centre
        u = rel @ self.long_axis / self.half_length_mm
        phi = np.degrees(np.arctan2(rel @ self.lateral, rel @ self.anterior))
        return u, phi

    def axis_point(self, u: float) -> np.ndarray:
        return self.centre + self.half_length_mm * u * self.long_axis

    @property
    def aortic_root(self) -> np.ndarray:
        """Centre of the aortic root: above the base, a little to the right and anterior."""
        right_anterior = np.cos(np.radians(300)) * self.anterior + np.sin(
            np.radians(300)) * self.lateral
        return self.axis_point(self.av_groove_u - 0.3) + 0.25 * self.radius_mm * right_anterior


@dataclass(frozen=True)
class Vessel:
    """One artery's centreline from its origin to its end, at rest (end-diastole)."""

    name: str
    laterality: Laterality
    points: np.ndarray  # (N, 3) mm
    radius_mm: np.ndarray  # (N,) healthy lumen radius
    segment_code: np.ndarray  # (N,) uint8, SEGMENT_CODES or 0
    path_mm: np.ndarray  # (N,) distance from the coronary ostium along the tree
    origin: tuple[str, int] | None = None  # (parent vessel, sample index) it branches from

    @property
    def segments(self) -> list[str]:
        codes = [int(c) for c in dict.fromkeys(self.segment_code.tolist()) if c]
        return [CODE_SEGMENTS[c] for c in codes]


@dataclass(frozen=True)
class CoronaryAnatomy:
    """Both coronary trees of one patient; vessels are listed parents before children."""

    heart: Heart
    dominance: Dominance
    vessels: tuple[Vessel, ...]
    ostia: dict[str, np.ndarray] = field(default_factory=dict)

    def vessel(self, name: str) -> Vessel:
        return next(v for v in self.vessels if v.name == name)

    def side(self, laterality: Laterality) -> list[Vessel]:
        return [v for v in self.vessels if v.laterality == laterality]

    @property
    def segments(self) -> list[str]:
        """SYNTAX numbers present, in SYNTAX order."""
        present = {n for v in self.vessels for n in v.segments}
        return [n for n in SEGMENTS if n in present]

    def locate(self, number: str) -> tuple[Vessel, np.ndarray]:
        """The vessel carrying a segment and the indices of its samples there."""
        code = SEGMENT_CODES[number]
        for vessel in self.vessels:
            index = np.flatnonzero(vessel.segment_code == code)
            if index.size:
                return vessel, index
        raise KeyError(f"segment {number} is absent in this anatomy ({self.dominance} dominant)")

    def downstream(self, name: str, index: int) -> dict[str, np.ndarray]:
        """Per vessel, which samples lie distal to sample `index` of vessel `name`.

        Distal means fed through that point: later samples of the same vessel and every branch
        (recursively) that leaves it further on. Flow-limiting lesions act on exactly these.
        """
        mask = {v.name: np.zeros(len(v.points), dtype=bool) for v in self.vessels}
        mask[name][index + 1:] = True
        for vessel in self.vessels:  # parents come first, so one pass suffices
            if vessel.origin is None:
                continue
            parent, at = vessel.origin
            if mask[parent][at] or (parent == name and at > index):
                mask[vessel.name][:] = True
        return mask


def sample_dominance(rng: np.random.Generator) -> Dominance:
    kinds = list(DOMINANCE_PROBABILITY)
    return kinds[rng.choice(len(kinds), p=list(DOMINANCE_PROBABILITY.values()))]


def sample_heart(rng: np.random.Generator) -> Heart:
    """A heart of plausible size and orientation: the long axis points left, forward and down."""
    azimuth = np.radians(rng.normal(45, 6))  # from straight anterior toward the left
    elevation = np.radians(rng.normal(28, 5))  # below the horizontal plane
    left, anterior, inferior = np.eye(3)[0], -np.eye(3)[1], -np.eye(3)[2]
    long_axis = np.cos(elevation) * (np.sin(azimuth) * left + np.cos(azimuth) * anterior) + np.sin(
        elevation) * inferior
    front = anterior - (anterior @ long_axis) * long_axis
    front /= np.linalg.norm(front)
    side = np.cross(long_axis, front)
    if side @ (left - anterior) < 0:  # the LV lateral wall faces left and backward
        side = -side
    groove_turn = np.radians(rng.normal(25, 6))  # the anterior groove lies left of the midline
    anterior_groove = np.cos(groove_turn) * front + np.sin(groove_turn) * side
    lateral = -np.sin(groove_turn) * front + np.cos(groove_turn) * side
    return Heart(
        centre=rng.normal(0.0, 6.0, size=3),
        long_axis=long_axis,
        anterior=anterior_groove,
        lateral=lateral,
        half_length_mm=float(rng.uniform(62, 70)),
        radius_mm=float(rng.uniform(38, 45)),
        av_groove_u=float(rng.normal(-0.38, 0.03)),
    )


def resample(points: np.ndarray, spacing: float = SAMPLE_SPACING_MM) -> np.ndarray:
    """Points along a polyline at equal arc-length spacing (first and last kept)."""
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    stations = np.linspace(0.0, arc[-1], max(int(round(arc[-1] / spacing)), 1) + 1)
    return np.stack([np.interp(stations, arc, points[:, k]) for k in range(3)], axis=1)


def arc_length(points: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])


class TreeBuilder:
    """Grows one patient's vessels on the heart, drawing every random choice from one rng.

    Paths are given as (u, phi) control points, jittered, splined in surface coordinates (so
    they follow the curved surface instead of cutting through it) and made tortuous.
    """

    def __init__(self, heart: Heart, rng: np.random.Generator, calibre: float) -> None:
        self.heart = heart
        self.rng = rng
        self.calibre = calibre
        self.vessels: list[Vessel] = []

    def get(self, name: str) -> Vessel:
        return next(v for v in self.vessels if v.name == name)

    def uv(self, name: str, fraction: float) -> tuple[int, float, float]:
        """Sample index and (u, phi) at a fraction of a vessel's length."""
        vessel = self.get(name)
        index = int(round(fraction * (len(vessel.points) - 1)))
        u, phi = self.heart.coordinates(vessel.points[index:index + 1])
        return index, float(u[0]), float(phi[0])

    def surface_path(self, controls: Sequence[tuple[float, float]], radius_end: float,
                     tortuosity_mm: float, start: np.ndarray | None = None) -> np.ndarray:
        """A centreline over the surface through jittered (u, phi) controls.

        The first control is the exact origin (no jitter) so a branch leaves its parent's wall.
        """
        uv = np.array(controls, dtype=float)
        uv[1:] += self.rng.normal(0.0, [0.025, 4.0], size=(len(uv) - 1, 2))
        uv[:, 0] = np.clip(uv[:, 0], -0.95, 0.97)
        param = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(uv[:, 0]) * 2,
                                                          np.radians(np.diff(uv[:, 1]))))])
        spline = make_interp_spline(param, uv, k=min(3, len(uv) - 1))
        dense = spline(np.linspace(0.0, param[-1], 400))
        lift = radius_end + FAT_MM
        points = self.heart.surface(dense[:, 0], dense[:, 1], lift)
        if start is not None:
            points = np.concatenate([start[None], points])
        return self.tortuous(resample(points), tortuosity_mm)

    def tortuous(self, points: np.ndarray, amplitude_mm: float) -> np.ndarray:
        """Add a gentle wiggle across the vessel, growing distally, as real arteries meander."""
        if amplitude_mm <= 0 or len(points) < 4:
            return points
        tangent = np.gradient(points, axis=0)
        tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-9
        normal = points - self.heart.centre
        normal -= (normal @ self.heart.long_axis)[:, None] * self.heart.long_axis
        side = np.cross(normal, tangent)
        side /= np.linalg.norm(side, axis=1, keepdims=True) + 1e-9
        s = arc_length(points)
        wave = sum(
            np.sin(2 * np.pi * s / self.rng.uniform(8, 25) + self.rng.uniform(0, 2 * np.pi))
            for _ in range(2)
        ) / 2
        growth = np.clip(s / max(s[-1], 1e-6), 0.0, 1.0) ** 1.5
        return points + (amplitude_mm * growth * wave)[:, None] * side

    def add(self, name: str, laterality: Laterality, points: np.ndarray,
            radii: Sequence[float], segments: Sequence[tuple[str | None, float]],
            parent: tuple[str, int] | None = None) -> Vessel:
        """Register a vessel: radii at even stations, segments as (number, end fraction)."""
        s = arc_length(points)
        fraction = s / s[-1]
        radius = np.interp(fraction, np.linspace(0, 1, len(radii)), radii) * self.calibre
        code = np.zeros(len(points), dtype=np.uint8)
        start = 0.0
        for number, end in segments:
            inside = (fraction >= start) & (fraction <= end + 1e-9)
            code[inside] = SEGMENT_CODES[number] if number else 0
            start = end
        path = s.copy()
        if parent is not None:
            parent_vessel, at = self.get(parent[0]), parent[1]
            path += parent_vessel.path_mm[at]
            radius = np.minimum(radius, parent_vessel.radius_mm[at])
        vessel = Vessel(name, laterality, points, radius, code, path, parent)
        self.vessels.append(vessel)
        return vessel

    def branch(self, name: str, laterality: Laterality, parent: str, fraction: float,
               turn: Sequence[tuple[float, float]], radii: Sequence[float],
               segment: str | None, tortuosity_mm: float = 2.5) -> Vessel:
        """A side branch leaving `parent` at `fraction`, shaped by (du, dphi) steps."""
        index, u, phi = self.uv(parent, fraction)
        controls = [(u, phi)] + [(u + du, phi + dphi) for du, dphi in turn]
        points = self.surface_path(controls, radii[-1] * self.calibre, tortuosity_mm)
        points[0] = self.get(parent).points[index]
        return self.add(name, laterality, points, radii, [(segment, 1.0)], (parent, index))


def build_anatomy(rng: np.random.Generator, dominance: Dominance | None = None,
                  calibre: float | None = None) -> CoronaryAnatomy:
    """A random but plausible pair of coronary trees for one patient.

    `calibre` scales every lumen (1.0 = typical adult); drawn around 1 when not given.
    """
    dominance = dominance or sample_dominance(rng)
    heart = sample_heart(rng)
    if calibre is None:
        calibre = float(np.clip(rng.normal(1.0, 0.07), 0.85, 1.15))
    builder = TreeBuilder(heart, rng, calibre)
    left_ostium = _left_coronary(builder, dominance)
    right_ostium = _right_coronary(builder, dominance)
    _small_branches(builder)
    return CoronaryAnatomy(heart, dominance, tuple(builder.vessels),
                           {"LCA": left_ostium, "RCA": right_ostium})


def _left_coronary(b: TreeBuilder, dominance: Dominance) -> np.ndarray:
    """Left main, LAD with diagonals, LCX with marginals and (by dominance) PL/PDA branches."""
    h, rng = b.heart, b.rng
    av = h.av_groove_u
    bif_u, bif_phi = av + 0.04, rng.normal(14, 4)
    bifurcation = h.surface(bif_u, bif_phi, 2.2 * b.calibre + FAT_MM)
    to_root = h.aortic_root - bifurcation
    ostium = bifurcation + rng.uniform(7, 14) * to_root / np.linalg.norm(to_root)
    main = resample(np.stack([ostium, bifurcation]))
    b.add("LM", "LCA", main, [2.25, 2.1], [("5", 1.0)])
    lm_end = len(main) - 1

    lad = b.surface_path([(bif_u, bif_phi), (av + 0.3, 6), (0.25, 0), (0.7, -2),
                          (rng.uniform(0.93, 0.97), 4)], 0.75 * b.calibre, 2.0, start=bifurcation)
    f6, f7 = rng.uniform(0.17, 0.23), rng.uniform(0.5, 0.58)
    b.add("LAD", "LCA", lad, [1.75, 1.5, 1.25, 1.0, 0.75],
          [("6", f6), ("7", f7), ("8", 1.0)], ("LM", lm_end))
    b.branch("D1", "LCA", "LAD", f6 + rng.uniform(0.0, 0.04),
             [(0.18, 28), (0.42, 45), (0.6, 52)], [1.1, 0.65], "9")
    if rng.random() < 0.3:
        b.branch("D1a", "LCA", "D1", rng.uniform(0.25, 0.4), [(0.2, 14), (0.38, 20)],
                 [0.8, 0.5], "9a")
    b.branch("D2", "LCA", "LAD", f7 - rng.uniform(0.0, 0.04),
             [(0.15, 25), (0.3, 35)], [0.95, 0.6], "10")
    if rng.random() < 0.2:
        b.branch("D2a", "LCA", "D2", rng.uniform(0.3, 0.45), [(0.12, 12), (0.25, 16)],
                 [0.7, 0.5], "10a")
    if rng.random() < 0.2:
        b.branch("RI", "LCA", "LM", 1.0, [(0.1, 22), (0.4, 36), (0.6, 40)], [1.1, 0.65], "12")
    _circumflex(b, dominance, bif_u, bif_phi, bifurcation, lm_end)
    return ostium


def _circumflex(b: TreeBuilder, dominance: Dominance, bif_u: float, bif_phi: float,
                bifurcation: np.ndarray, lm_end: int) -> None:
    h, rng = b.heart, b.rng
    av = h.av_groove_u
    crux = rng.normal(205, 6)
    end_phi = {"right": rng.uniform(125, 150), "co": rng.uniform(165, 180), "left": crux}[dominance]
    controls = [(bif_u, bif_phi), (av + 0.01, 45), (av, 95), (av + 0.02, end_phi)]
    radii = {"right": [1.55, 1.3, 0.9], "co": [1.65, 1.4, 1.05], "left": [1.75, 1.55, 1.3]}
    lcx = b.surface_path(controls, radii[dominance][-1] * b.calibre, 1.5, start=bifurcation)
    f11 = rng.uniform(0.2, 0.3)
    b.add("LCX", "LCA", lcx, radii[dominance], [("11", f11), ("13", 1.0)], ("LM", lm_end))
    b.branch("OM1", "LCA", "LCX", f11, [(0.2, 12), (0.5, 18), (0.75, 20)], [1.1, 0.65], "12a")
    if rng.random() < 0.75:
        b.branch("OM2", "LCA", "LCX", f11 + rng.uniform(0.18, 0.3), [(0.2, 10), (0.55, 12)],
                 [0.95, 0.6], "12b")
    if dominance == "right":
        if rng.random() < 0.6:
            b.branch("LPL", "LCA", "LCX", 1.0, [(0.2, 8), (0.5, 10)], [0.9, 0.55], "14")
        return
    b.branch("LPL", "LCA", "LCX", rng.uniform(0.62, 0.72), [(0.2, 8), (0.5, 10)],
             [0.95, 0.6], "14")
    if rng.random() < (0.7 if dominance == "left" else 0.4):
        b.branch("LPLa", "LCA", "LCX", rng.uniform(0.78, 0.86), [(0.2, 6), (0.45, 8)],
                 [0.8, 0.5], "14a")
    if dominance == "left":
        if rng.random() < 0.4:
            b.branch("LPLb", "LCA", "LCX", rng.uniform(0.9, 0.95), [(0.2, 4), (0.4, 5)],
                     [0.75, 0.5], "14b")
        b.branch("LPDA", "LCA", "LCX", 1.0, [(0.3, 3), (0.8, 2)], [1.0, 0.6], "15")


def _right_coronary(b: TreeBuilder, dominance: Dominance) -> np.ndarray:
    """RCA in the right AV groove to the crux; PDA and posterolaterals when it is dominant."""
    h, rng = b.heart, b.rng
    av = h.av_groove_u
    groove_start = h.surface(av - 0.04, 330, 3.0)
    to_groove = groove_start - h.aortic_root
    ostium = h.aortic_root + 13.0 * to_groove / np.linalg.norm(to_groove)
    crux = rng.normal(205, 6)
    end_phi = {"right": crux, "co": crux, "left": rng.uniform(228, 245)}[dominance]
    controls = [(av - 0.04, 330), (av, rng.normal(272, 5)), (av + 0.02, end_phi)]
    radii = {"right": [1.8, 1.65, 1.5, 1.3], "co": [1.65, 1.5, 1.35, 1.1],
             "left": [1.4, 1.2, 1.0, 0.8]}
    rca = b.surface_path(controls, radii[dominance][-1] * b.calibre, 2.0, start=ostium)
    # The acute margin divides mid from distal RCA; #1 is the first half up to it.
    _, phi = h.coordinates(rca)
    acute = float(np.argmin(np.abs(phi % 360 - 272)) / (len(rca) - 1))
    b.add("RCA", "RCA", rca, radii[dominance], [("1", acute / 2), ("2", acute), ("3", 1.0)])
    if dominance == "left":
        return ostium
    b.branch("PDA", "RCA", "RCA", 1.0, [(0.3, 3), (0.75, 1)], [1.0, 0.6], "4")
    rpl_reach = [(0.02, -18), (0.2, -32), (0.45, -38)] if dominance == "right" else [(0.02, -10),
                                                                                     (0.15, -16)]
    b.branch("RPL", "RCA", "RCA", 1.0, rpl_reach, [1.1, 0.75], "16")
    if dominance == "right":
        for letter, probability, at in (("a", 0.8, 0.25), ("b", 0.5, 0.5), ("c", 0.25, 0.7)):
            if rng.random() < probability:
                b.branch(f"RPL{letter}", "RCA", "RPL", at + rng.uniform(-0.05, 0.05),
                         [(0.2, -6), (0.4, -8)], [0.8, 0.5], f"16{letter}")
    return ostium


def _small_branches(b: TreeBuilder) -> None:
    """Unnumbered branches that make a real angiogram look busy: septals, RV branches, twigs.

    Twigs run mostly toward the apex, fanning to either side; some split once more.
    """
    rng = b.rng
    for k in range(int(rng.integers(4, 8))):
        b.branch(f"septal{k}", "LCA", "LAD", rng.uniform(0.12, 0.7),
                 [(0.12, -12), (0.3, -20)], [0.5, 0.3], None, tortuosity_mm=0.8)
    for k in range(int(rng.integers(2, 5))):
        b.branch(f"rv{k}", "RCA", "RCA", rng.uniform(0.15, 0.6),
                 [(0.2, -5), (0.45, -8)], [0.7, 0.4], None)
    named = [v for v in b.vessels if v.segment_code.any() and v.name != "LM"]
    for vessel in named:
        for k in range(int(rng.integers(2, 5))):
            side = rng.choice([-1.0, 1.0])
            reach = rng.uniform(0.08, 0.22)
            twig = b.branch(f"{vessel.name}-twig{k}", vessel.laterality, vessel.name,
                            rng.uniform(0.3, 0.95),
                            [(reach / 2, side * rng.uniform(6, 14)),
                             (reach, side * rng.uniform(12, 24))],
                            [0.5, 0.3], None, tortuosity_mm=1.5)
            if rng.random() < 0.4:
                b.branch(f"{twig.name}-split", vessel.laterality, twig.name,
                         rng.uniform(0.3, 0.7), [(0.05, -side * 6), (0.1, -side * 10)],
                         [0.35, 0.25], None, tortuosity_mm=1.0)
