"""What one injection shows: the sampled tubes of a view, flattened into arrays.

For an injection into one coronary ostium the scene holds that whole tree (contrast reaches it),
the guiding catheter engaged in that ostium (radio-opaque, contrast-filled), and from the other
tree only what is visible without its own injection: calcified or stented walls, and beds that
collaterals fill. Everything is per centreline sample so the renderer works on flat arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from angioscribe.anatomy import Laterality
from angioscribe.sim.anatomy3d import CoronaryAnatomy, arc_length, resample
from angioscribe.sim.lesions import CALCIUM_SHELL_MM, LesionEffects

CATHETER_LUMEN_MM = 0.55  # 6 F guiding catheter: 2 mm outer, 1.1 mm inner diameter
CATHETER_WALL_MM = 0.45
CATHETER_DENSITY = 1.0
CATHETER_FOLLOW_MM = 50.0  # the tip moves with the heart; the shaft less and less


@dataclass(frozen=True)
class Scene:
    laterality: Laterality
    points: np.ndarray  # (N, 3) at rest
    motion_weight: np.ndarray  # 1 moves fully with the heart, 0 not at all
    lumen_mm: np.ndarray
    outer_mm: np.ndarray
    thrombus_mm: np.ndarray
    wall_density: np.ndarray
    wall_two_sided: np.ndarray
    wall_shell_mm: np.ndarray
    group: np.ndarray
    code: np.ndarray
    path_mm: np.ndarray
    delay_s: np.ndarray
    antegrade: np.ndarray
    collateral: np.ndarray
    always_filled: np.ndarray
    injected: np.ndarray  # in the injected tree: counts for opacification, motion and masks

    @property
    def injected_points(self) -> np.ndarray:
        return self.points[self.injected]


def build_scene(anatomy: CoronaryAnatomy, effects: LesionEffects, laterality: Laterality,
                rng: np.random.Generator) -> Scene:
    parts: list[dict[str, np.ndarray]] = []
    for group, vessel in enumerate(anatomy.vessels):
        name = vessel.name
        injected = vessel.laterality == laterality
        keep = np.ones(len(vessel.points), dtype=bool) if injected else (
            (effects.wall_density[name] > 0) | effects.collateral[name])
        if not keep.any():
            continue
        n = len(vessel.points)
        parts.append({
            "points": vessel.points, "motion_weight": np.ones(n),
            "lumen_mm": effects.lumen_radius_mm[name], "outer_mm": vessel.radius_mm,
            "thrombus_mm": effects.thrombus_radius_mm[name],
            "wall_density": effects.wall_density[name],
            "wall_two_sided": effects.wall_two_sided[name],
            "wall_shell_mm": np.full(n, CALCIUM_SHELL_MM), "group": np.full(n, group),
            "code": vessel.segment_code, "path_mm": vessel.path_mm,
            "delay_s": effects.delay_s[name],
            "antegrade": effects.antegrade[name] & injected,
            "collateral": effects.collateral[name] & ~effects.antegrade[name],
            "always_filled": np.zeros(n, dtype=bool), "injected": np.full(n, injected),
            "_keep": keep,
        })
    parts.append(_catheter(anatomy, laterality, rng, group=len(anatomy.vessels)))
    merged = {key: np.concatenate([p[key][p["_keep"]] for p in parts]) for key in parts[0]
              if key != "_keep"}
    return Scene(laterality=laterality, **merged)


def catheter_path(anatomy: CoronaryAnatomy, laterality: Laterality,
                  rng: np.random.Generator) -> np.ndarray:
    """Guiding catheter from the ostium back through the aortic root, up the ascending aorta,
    over the arch and down the descending aorta beside the spine."""
    ostium = anatomy.ostia[laterality]
    root = anatomy.heart.aortic_root
    superior, posterior, left = np.array([0, 0, 1.0]), np.array([0, 1.0, 0]), np.array([1.0, 0, 0])
    wobble = rng.normal(0, 4, size=(4, 3))
    ascending = root + 70 * superior - 10 * left + wobble[0]
    arch = ascending + 30 * superior + 35 * posterior + 25 * left + wobble[1]
    descending = arch - 40 * superior + 25 * posterior + 10 * left + wobble[2]
    low = descending - 200 * superior + wobble[3]
    controls = np.stack([ostium, root + (ostium - root) * 0.3, ascending, arch, descending, low])
    t = np.linspace(0, 1, len(controls))
    dense_t = np.linspace(0, 1, 300)
    dense = np.stack([np.interp(dense_t, t, controls[:, k]) for k in range(3)], axis=1)
    return resample(_smooth(dense))


def _smooth(points: np.ndarray, passes: int = 20) -> np.ndarray:
    """Round the corners of a polyline, keeping its ends (a catheter has no kinks)."""
    smooth = points.copy()
    for _ in range(passes):
        smooth[1:-1] = 0.25 * smooth[:-2] + 0.5 * smooth[1:-1] + 0.25 * smooth[2:]
    return smooth


def _catheter(anatomy: CoronaryAnatomy, laterality: Laterality, rng: np.random.Generator,
              group: int) -> dict[str, np.ndarray]:
    points = catheter_path(anatomy, laterality, rng)
    n = len(points)
    follow = np.exp(-arc_length(points) / CATHETER_FOLLOW_MM)
    return {
        "points": points, "motion_weight": follow, "lumen_mm": np.full(n, CATHETER_LUMEN_MM),
        "outer_mm": np.full(n, CATHETER_LUMEN_MM), "thrombus_mm": np.zeros(n),
        "wall_density": np.full(n, CATHETER_DENSITY), "wall_two_sided": np.ones(n, dtype=bool),
        "wall_shell_mm": np.full(n, CATHETER_WALL_MM), "group": np.full(n, group),
        "code": np.zeros(n, dtype=np.uint8), "path_mm": np.zeros(n), "delay_s": np.zeros(n),
        "antegrade": np.zeros(n, dtype=bool), "collateral": np.zeros(n, dtype=bool),
        "always_filled": np.ones(n, dtype=bool), "injected": np.zeros(n, dtype=bool),
        "_keep": np.ones(n, dtype=bool),
    }
