"""Follow-up studies of a simulated patient: same heart, a later date, progressed lesions.

Serial angiograms of one patient are how progression is seen. A follow-up re-simulates the
baseline's seed, so the patient, anatomy, prior stents, catheter path and standard views are
the baseline's; each lesion narrows by `grades` steps of the visual grading scale (25, 50,
75, 90, 99 %), a new plaque may appear in a healthy segment, and the acquisition (heart rate,
injection, detector, noise) is drawn anew from (seed, visit), as a second cath-lab visit would
record it. Narrowing stops at 99 %: a lesion that occluded would hide the segments beyond it,
and the follow-up would lose findings the baseline graded.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np

from angioscribe.sim.anatomy3d import CoronaryAnatomy
from angioscribe.sim.lesions import (
    SEGMENT_WEIGHTS,
    STENOSIS_GRADES,
    Lesion,
    segments_beyond_occlusions,
)
from angioscribe.sim.patient import Patient
from angioscribe.sim.study import SimulatedStudy, simulate_study

NARROWING_LIMIT = 99  # progression stops short of an occlusion
LEFT_MAIN_LIMIT = 90  # as at baseline: an occluded left main is rarely seen alive
NEW_LESION_GRADES = (25, 50)  # a new plaque starts mild
DAYS_PER_MONTH = 30.44


@dataclass(frozen=True)
class Progression:
    """How a follow-up differs from the baseline: its visit number, months since the
    baseline, grades each lesion narrows by, and the chance of one new lesion."""

    visit: int = 2
    months: int = 12
    grades: int = 1
    new_lesion_probability: float = 0.3

    def patient(self, baseline: Patient) -> Patient:
        """The same patient at the follow-up date (age moves with the year, birth date not)."""
        date = baseline.study_date + dt.timedelta(days=round(self.months * DAYS_PER_MONTH))
        return replace(baseline, study_date=date,
                       age=baseline.age + date.year - baseline.study_date.year)

    def lesions(self, rng: np.random.Generator, anatomy: CoronaryAnatomy,
                baseline: list[Lesion]) -> list[Lesion]:
        """Every baseline lesion narrowed, and maybe one new mild lesion, in anatomy order."""
        lesions = [narrowed(lesion, self.grades) for lesion in baseline]
        if rng.random() < self.new_lesion_probability:
            lesions += new_lesion(rng, anatomy, lesions)
        order = {number: i for i, number in enumerate(anatomy.segments)}
        return sorted(lesions, key=lambda lesion: order[lesion.segment])


def narrowed(lesion: Lesion, grades: int) -> Lesion:
    """The lesion `grades` visual grades tighter; an occlusion stays one."""
    if lesion.cto:
        return lesion
    limit = LEFT_MAIN_LIMIT if lesion.segment == "5" else NARROWING_LIMIT
    tighter = [grade for grade in STENOSIS_GRADES if lesion.stenosis_percent <= grade <= limit]
    grade = tighter[min(grades, len(tighter) - 1)] if tighter else lesion.stenosis_percent
    return replace(lesion, stenosis_percent=grade)


def new_lesion(rng: np.random.Generator, anatomy: CoronaryAnatomy, lesions: list[Lesion]
               ) -> list[Lesion]:
    """One mild lesion in a healthy, visible segment (weighted as at baseline), if any."""
    taken = {lesion.segment for lesion in lesions} | segments_beyond_occlusions(anatomy, lesions)
    free = [n for n in anatomy.segments if n in SEGMENT_WEIGHTS and n not in taken]
    if not free:
        return []
    weights = np.array([SEGMENT_WEIGHTS[n] for n in free])
    segment = free[int(rng.choice(len(free), p=weights / weights.sum()))]
    return [Lesion(segment=segment, stenosis_percent=int(rng.choice(NEW_LESION_GRADES)),
                   length_mm=round(float(rng.uniform(6, 15)), 1),
                   position=round(float(rng.uniform(0.35, 0.65)), 2))]


def simulate_followup(seed: int, progression: Progression = Progression(), workers: int = 1,
                      n_left: int | None = None, n_right: int | None = None) -> SimulatedStudy:
    """The follow-up of the patient `simulate_study(seed)` makes (pass the same `n_left`,
    `n_right` as for the baseline to keep its views)."""
    return simulate_study(seed, n_left, n_right, workers=workers, progression=progression)
