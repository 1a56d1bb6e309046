"""Coronary lesions and what they do to the lumen, the wall and the flow.

A `Lesion` is the ground truth a cardiologist would report for one segment: percent diameter
stenosis (100 % is a chronic total occlusion), lesion length, thrombus, calcification grade and,
for an occlusion, whether collaterals fill the vessel beyond it. `apply_lesions` turns the list
into per-sample arrays over the centrelines that the renderer draws and the contrast model
times: the narrowed lumen, a filling defect for thrombus, a radio-opaque wall for calcium (and
for the stent of a prior PCI), and the flow beyond each lesion (occluded, delayed or normal).

Grades follow Japanese AHA visual grading (25, 50, 75, 90, 99, 100 %), the scale of the CAG-VLM
reports; significance (>= 70 %, >= 50 % in the left main) is decided in `sim.reports`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from angioscribe.anatomy import segment as syntax_segment
from angioscribe.sim.anatomy3d import SEGMENT_CODES, CoronaryAnatomy, arc_length

Calcification = Literal["none", "mild", "moderate", "severe"]
CALCIFICATION_GRADES: tuple[Calcification, ...] = ("none", "mild", "moderate", "severe")

STENOSIS_GRADES = (25, 50, 75, 90, 99, 100)
STENOSIS_WEIGHTS = (0.14, 0.2, 0.26, 0.2, 0.08, 0.12)

# Where disease sits: proximal and mid segments of the large vessels dominate in registries.
SEGMENT_WEIGHTS: dict[str, float] = {
    "5": 0.4, "6": 3.0, "7": 2.5, "8": 0.6, "9": 1.0, "9a": 0.3, "10": 0.4, "10a": 0.2,
    "11": 1.6, "12": 0.5, "12a": 1.0, "12b": 0.5, "13": 1.0, "14": 0.4, "14a": 0.2, "14b": 0.2,
    "15": 0.5, "1": 2.0, "2": 2.0, "3": 1.2, "4": 0.6, "16": 0.4, "16a": 0.2, "16b": 0.2,
    "16c": 0.1,
}

# Density of radio-opaque wall material, relative to severe calcification.
CALCIUM_DENSITY: dict[Calcification, float] = {"none": 0.0, "mild": 0.35, "moderate": 0.6,
                                                "severe": 1.0}
STENT_DENSITY = 0.3
CALCIUM_SHELL_MM = 0.3


@dataclass(frozen=True)
class Lesion:
    """One segment's disease; `position` is the lesion centre as a fraction of the segment."""

    segment: str
    stenosis_percent: int
    length_mm: float
    position: float
    thrombus: bool = False
    calcification: Calcification = "none"
    collaterals: bool = False

    @property
    def cto(self) -> bool:
        """A 100 % stenosis is a chronic total occlusion, by definition here."""
        return self.stenosis_percent >= 100

    def to_dict(self) -> dict:
        record = asdict(self)
        record["cto"] = self.cto
        record["vessel"] = syntax_segment(self.segment).vessel
        record["laterality"] = syntax_segment(self.segment).laterality
        return record


@dataclass(frozen=True)
class Stent:
    """A stent from a prior PCI: radio-opaque struts along the wall, lumen unobstructed."""

    segment: str
    length_mm: float
    position: float
    year: int


@dataclass
class LesionEffects:
    """Per-sample effects over every vessel of the anatomy (keyed by vessel name)."""

    lumen_radius_mm: dict[str, np.ndarray]
    thrombus_radius_mm: dict[str, np.ndarray]
    wall_density: dict[str, np.ndarray]
    wall_two_sided: dict[str, np.ndarray]
    antegrade: dict[str, np.ndarray]  # False beyond an occlusion: no forward flow
    collateral: dict[str, np.ndarray]  # True where collaterals fill an occluded bed
    delay_s: dict[str, np.ndarray]  # extra arrival delay beyond a tight lesion (TIMI 2 flow)


def sample_lesions(rng: np.random.Generator, anatomy: CoronaryAnatomy, acute: bool,
                   calcium_risk: float) -> list[Lesion]:
    """0-4 lesions in distinct segments of this anatomy.

    `acute` (an acute coronary syndrome) makes thrombus likelier; `calcium_risk` (0-1, from age
    and diabetes) shifts the calcification grade up. A segment wholly beyond an occlusion
    cannot be graded on the angiogram, so a lesion drawn there is dropped.
    """
    count = int(rng.choice(5, p=[0.15, 0.35, 0.25, 0.15, 0.10]))
    present = [n for n in anatomy.segments if n in SEGMENT_WEIGHTS]
    weights = np.array([SEGMENT_WEIGHTS[n] for n in present])
    chosen = rng.choice(len(present), size=min(count, len(present)), replace=False,
                        p=weights / weights.sum())
    lesions = [_sample_lesion(rng, present[i], acute, calcium_risk) for i in sorted(chosen)]
    hidden = segments_beyond_occlusions(anatomy, lesions)
    return [lesion for lesion in lesions if lesion.segment not in hidden]


def segments_beyond_occlusions(anatomy: CoronaryAnatomy, lesions: list[Lesion]) -> set[str]:
    """SYNTAX segments every sample of which lies distal to a CTO."""
    hidden: set[str] = set()
    for lesion in (lesion for lesion in lesions if lesion.cto):
        distal = anatomy.downstream(*lesion_centre(anatomy, lesion.segment, lesion.position))
        for vessel in anatomy.vessels:
            for number in vessel.segments:
                if distal[vessel.name][vessel.segment_code == SEGMENT_CODES[number]].all():
                    hidden.add(number)
    return hidden


def _sample_lesion(rng: np.random.Generator, segment: str, acute: bool,
                   calcium_risk: float) -> Lesion:
    grade = int(rng.choice(STENOSIS_GRADES, p=STENOSIS_WEIGHTS))
    if segment == "5":
        grade = min(grade, 90)  # an occluded left main is rarely seen alive in the cath lab
    thrombus = grade >= 50 and grade < 100 and rng.random() < (0.35 if acute else 0.05)
    level = np.clip(rng.normal(calcium_risk * 2.2, 0.9), 0, 3)
    calcification = CALCIFICATION_GRADES[int(level)] if grade >= 50 else "none"
    return Lesion(
        segment=segment,
        stenosis_percent=grade,
        length_mm=round(float(rng.uniform(6, 20)), 1),
        position=round(float(rng.uniform(0.35, 0.65)), 2),
        thrombus=bool(thrombus),
        calcification=calcification,
        collaterals=bool(grade == 100 and rng.random() < 0.7),
    )


def lesion_profile(s_mm: np.ndarray, centre_mm: float, length_mm: float) -> np.ndarray:
    """0..1 along the vessel: 1 over the lesion core, cosine shoulders, 0 outside.

    The core is half the length, the shoulders a quarter each, so `length_mm` is the full
    extent a QCA reader would mark.
    """
    distance = np.abs(s_mm - centre_mm)
    core, shoulder = length_mm / 4, length_mm / 4
    ramp = np.clip((core + shoulder - distance) / shoulder, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * ramp)


def lesion_centre(anatomy: CoronaryAnatomy, segment: str, position: float) -> tuple[str, int]:
    """Vessel name and sample index at `position` (fraction) along a segment."""
    vessel, index = anatomy.locate(segment)
    return vessel.name, int(index[int(round(position * (len(index) - 1)))])


def apply_lesions(anatomy: CoronaryAnatomy, lesions: list[Lesion],
                  stents: list[Stent] = ()) -> LesionEffects:
    """Per-sample lumen, filling defect, wall opacity and flow for these lesions."""
    names = [v.name for v in anatomy.vessels]
    effects = LesionEffects(
        lumen_radius_mm={v.name: v.radius_mm.copy() for v in anatomy.vessels},
        thrombus_radius_mm={n: np.zeros(len(anatomy.vessel(n).points)) for n in names},
        wall_density={n: np.zeros(len(anatomy.vessel(n).points)) for n in names},
        wall_two_sided={n: np.zeros(len(anatomy.vessel(n).points), dtype=bool) for n in names},
        antegrade={n: np.ones(len(anatomy.vessel(n).points), dtype=bool) for n in names},
        collateral={n: np.zeros(len(anatomy.vessel(n).points), dtype=bool) for n in names},
        delay_s={n: np.zeros(len(anatomy.vessel(n).points)) for n in names},
    )
    for stent in stents:
        name, centre = lesion_centre(anatomy, stent.segment, stent.position)
        profile = _profile_at(anatomy, name, centre, stent.length_mm)
        inside = profile > 0.5
        effects.wall_density[name][inside] = np.maximum(effects.wall_density[name][inside],
                                                        STENT_DENSITY)
        effects.wall_two_sided[name][inside] = True
    for lesion in lesions:
        _apply_one(anatomy, lesion, effects)
    return effects


def _profile_at(anatomy: CoronaryAnatomy, name: str, centre: int, length_mm: float) -> np.ndarray:
    s = arc_length(anatomy.vessel(name).points)
    return lesion_profile(s, s[centre], length_mm)


def _apply_one(anatomy: CoronaryAnatomy, lesion: Lesion, effects: LesionEffects) -> None:
    name, centre = lesion_centre(anatomy, lesion.segment, lesion.position)
    profile = _profile_at(anatomy, name, centre, lesion.length_mm)
    severity = lesion.stenosis_percent / 100.0
    lumen = effects.lumen_radius_mm[name]
    np.minimum(lumen, anatomy.vessel(name).radius_mm * (1.0 - severity * profile), out=lumen)
    if lesion.thrombus:
        effects.thrombus_radius_mm[name] = np.maximum(effects.thrombus_radius_mm[name],
                                                      0.55 * lumen * (profile > 0.3))
    if lesion.calcification != "none":
        calcified = _profile_at(anatomy, name, centre, lesion.length_mm * 1.3) > 0.2
        density = effects.wall_density[name]
        density[calcified] = np.maximum(density[calcified],
                                        CALCIUM_DENSITY[lesion.calcification])
        effects.wall_two_sided[name][calcified] |= lesion.calcification != "mild"
    distal = anatomy.downstream(name, centre)
    for vessel, beyond in distal.items():
        if lesion.cto:
            effects.antegrade[vessel][beyond] = False
            effects.collateral[vessel][beyond] |= lesion.collaterals
        elif lesion.stenosis_percent >= 90:
            effects.delay_s[vessel][beyond] += 0.25 if lesion.stenosis_percent == 90 else 0.6
    if lesion.cto:
        effects.antegrade[name][profile > 0.999] = False
