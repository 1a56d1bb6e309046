"""A whole simulated cath-lab study: patient, coronary trees, lesions, views, cines and reports.

`simulate_study(seed)` draws everything from one `numpy.random.Generator` seeded with `seed`,
in a fixed order, so a seed always gives the same study (same pixels, same text). A study has
4-6 left and 2-3 right coronary cines from the standard angles (jittered a few degrees), one
frame rate for the study, and a detector zoom chosen so the trees fit the field as an operator
would set it. The truth (`SimulatedStudy.truth()`) is plain JSON-ready data.

This is a phantom: the anatomy, physiology and image formation are simplified models, good for
exercising and testing the pipeline end to end, not a substitute for clinical validation.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from angioscribe import __version__
from angioscribe.anatomy import Laterality, view_from_angles
from angioscribe.cine import Cine
from angioscribe.sim.anatomy3d import CODE_SEGMENTS, CoronaryAnatomy, build_anatomy
from angioscribe.sim.background import render_background
from angioscribe.sim.contrast import cine_duration_s, sample_injection
from angioscribe.sim.lesions import Lesion, Stent, apply_lesions, sample_lesions
from angioscribe.sim.motion import CardiacMotion, sample_breathing, sample_cardiac_motion
from angioscribe.sim.patient import Patient, clinical_report, sample_patient
from angioscribe.sim.projection import CArm
from angioscribe.sim.render import RenderedCine, Timeline, noise_field, render_cine
from angioscribe.sim.reports import TreatmentPlan, diagnostic_summary, treatment_plan
from angioscribe.sim.scene import Scene, build_scene
from angioscribe.study import Study

if TYPE_CHECKING:
    from angioscribe.sim.followup import Progression

# Standard projections (primary, secondary): the first four left and two right always taken.
LEFT_VIEWS: tuple[tuple[float, float], ...] = (
    (-30, -25), (-30, 30), (40, 25), (40, -25), (0, 35), (0, -30),
)
RIGHT_VIEWS: tuple[tuple[float, float], ...] = ((40, 0), (-30, 0), (30, 20))
ANGLE_JITTER_DEG = 4.0
FRAME_RATES = (7.5, 10.0, 12.5, 15.0)
FIELD_FILL = 0.88  # fraction of the detector the largest projected tree should span
PIXEL_SPACING_RANGE_MM = (0.25, 0.42)
NOISE_AT_MID_GREY = 1.5  # grey levels; ARCADE frames are smooth (processed, JPEG)
VISIBLE_MIN_PIXELS = 30  # a segment is visible in a view with this many labelled pixels
UID_SALT = "angioscribe.sim"


@dataclass
class SimulatedView:
    """One cine of the study with its geometry, timing and per-frame truth."""

    series_number: int
    laterality: Laterality
    arm: CArm
    timeline: Timeline
    cine: RenderedCine

    def series_instance_uid(self, study: SimulatedStudy) -> str:
        return study.uid("series", self.series_number)

    def sop_instance_uid(self, study: SimulatedStudy) -> str:
        return study.uid("image", self.series_number)

    @property
    def view(self) -> str | None:
        return view_from_angles(self.arm.primary_deg, self.arm.secondary_deg)

    @property
    def best_frame(self) -> int:
        """The most opacified frame among the "better" ones (or overall, if none)."""
        better = [i for i, label in enumerate(self.cine.labels) if label == "better"]
        candidates = better or list(range(len(self.cine.labels)))
        return max(candidates, key=lambda i: self.cine.opacification[i])

    def segment_pixels(self, frame: int | None = None) -> dict[str, int]:
        """Labelled pixels per SYNTAX segment in one frame (the best frame by default)."""
        mask = self.cine.masks[self.best_frame if frame is None else frame]
        counts = np.bincount(mask.ravel(), minlength=len(CODE_SEGMENTS) + 1)
        return {CODE_SEGMENTS[code]: int(counts[code]) for code in np.flatnonzero(counts)
                if code > 0}

    @property
    def visible_segments(self) -> list[str]:
        return [n for n, pixels in self.segment_pixels().items() if pixels >= VISIBLE_MIN_PIXELS]

    def truth(self) -> dict[str, Any]:
        timeline, arm, cine = self.timeline, self.arm, self.cine
        return {
            "series_number": self.series_number,
            "laterality": self.laterality,
            "view": self.view,
            "primary_angle": arm.primary_deg,
            "secondary_angle": arm.secondary_deg,
            "sid_mm": arm.sid_mm,
            "sod_mm": arm.sod_mm,
            "pixel_spacing_mm": arm.pixel_spacing_mm,
            "fps": timeline.fps,
            "n_frames": timeline.n_frames,
            "heart_rate_bpm": round(timeline.cardiac.heart_rate_bpm, 1),
            "injection": {
                "start_s": round(timeline.injection.start_s, 3),
                "length_s": round(timeline.injection.length_s, 3),
                "front_speed_mm_s": round(timeline.injection.front_speed_mm_s, 1),
            },
            "best_frame": self.best_frame,
            "visible_segments": self.visible_segments,
            "frames": {
                "time_s": np.round(cine.times_s, 4).tolist(),
                "opacification": np.round(cine.opacification, 4).tolist(),
                "motion_mm_s": np.round(cine.motion_mm_s, 2).tolist(),
                "contraction": np.round(cine.contraction, 4).tolist(),
                "keyframe": list(cine.labels),
            },
        }


@dataclass
class SimulatedStudy:
    seed: int
    patient: Patient
    anatomy: CoronaryAnatomy
    lesions: list[Lesion]
    stents: list[Stent]
    views: list[SimulatedView]
    plan: TreatmentPlan
    visit: int = 1  # 1 for the baseline study, 2, 3, ... for follow-ups (sim.followup)

    @property
    def study_id(self) -> str:
        """The patient id, with the visit appended for a follow-up (`SIM...V2`)."""
        return self.patient.patient_id + (f"V{self.visit}" if self.visit > 1 else "")

    def uid(self, *role: object) -> str:
        """A deterministic DICOM UID in the 2.25 (UUID) form from the seed, the visit of a
        follow-up and a role ("study", ("series", 3)): same inputs, same UIDs; others, others."""
        visit = [f"visit{self.visit}"] if self.visit > 1 else []
        name = "/".join([UID_SALT, str(self.seed), *visit, *map(str, role)])
        return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}"

    @property
    def study_instance_uid(self) -> str:
        return self.uid("study")

    def reports(self) -> dict[str, Any]:
        """Pre-procedure report and ground-truth summaries (study and per side), EN and JA."""
        summary = {lang: diagnostic_summary(self.lesions, self.plan, lang)
                   for lang in ("en", "ja")}
        by_side = {side: {lang: diagnostic_summary(self.lesions, self.plan, lang, side)
                          for lang in ("en", "ja")} for side in ("LCA", "RCA")}
        return {
            "clinical": {lang: clinical_report(self.patient, lang) for lang in ("en", "ja")},
            "summary": summary,
            "summary_by_side": by_side,
            "treatment": self.plan.to_dict(),
        }

    def findings(self) -> list[dict[str, Any]]:
        """Per SYNTAX segment present in this anatomy: its lesion (or healthy), and whether any
        view shows it opacified."""
        by_segment = {lesion.segment: lesion for lesion in self.lesions}
        stented = {stent.segment for stent in self.stents}
        visible = set().union(*(view.visible_segments for view in self.views))
        records = []
        for number in self.anatomy.segments:
            lesion = by_segment.get(number)
            records.append({
                "segment": number,
                "stenosis_percent": lesion.stenosis_percent if lesion else 0,
                "cto": lesion.cto if lesion else False,
                "thrombus": lesion.thrombus if lesion else False,
                "calcification": lesion.calcification if lesion else "none",
                "stent": number in stented,
                "visible": number in visible,  # opacified in some view (not beyond a CTO)
            })
        return records

    def truth(self) -> dict[str, Any]:
        return {
            "simulator": f"angioscribe.sim {__version__}",
            "seed": self.seed,
            "study_id": self.study_id,
            "visit": self.visit,
            "study_instance_uid": self.study_instance_uid,
            "patient": self.patient.to_dict(),
            "dominance": self.anatomy.dominance,
            "segments": self.findings(),
            "lesions": [lesion.to_dict() for lesion in self.lesions],
            "stents": [vars(stent) for stent in self.stents],
            "reports": self.reports(),
            "views": [{**view.truth(), "series_instance_uid": view.series_instance_uid(self),
                       "sop_instance_uid": view.sop_instance_uid(self)} for view in self.views],
            "segment_codes": {str(code): number for code, number in CODE_SEGMENTS.items()},
        }

    def to_study(self) -> Study:
        """The study as the rest of the chain sees it (in memory, no files)."""
        cines = [Cine(
            frames=view.cine.frames, source=f"sim:{self.study_id}/{view.series_number}",
            fps=view.timeline.fps, primary_angle=view.arm.primary_deg,
            secondary_angle=view.arm.secondary_deg,
            pixel_spacing_mm=(view.arm.pixel_spacing_mm, view.arm.pixel_spacing_mm),
            sid_mm=view.arm.sid_mm, sod_mm=view.arm.sod_mm,
            patient_id=self.patient.patient_id,
            study_uid=self.study_instance_uid, series_uid=view.series_instance_uid(self),
            sop_uid=view.sop_instance_uid(self), modality="XA",
            extra={"laterality": view.laterality},
        ) for view in self.views]
        return Study(key=self.study_id, cines=cines, patient_id=self.patient.patient_id,
                     clinical_text=clinical_report(self.patient, "en"), language="en")


ViewRequest = tuple[Laterality, float, float]  # injected side, primary and secondary angle


def simulate_study(seed: int, n_left: int | None = None, n_right: int | None = None,
                   views: Sequence[ViewRequest] | None = None, workers: int = 1,
                   progression: Progression | None = None) -> SimulatedStudy:
    """Everything about one study from one seed.

    `n_left`/`n_right` fix how many standard views are taken; `views` replaces the standard
    plan with exact (side, primary, secondary) angles, e.g. to match a real acquisition.
    Each view draws from its own child generator (spawned in view order), so `workers` > 1
    renders views in parallel threads (numpy releases the GIL) with identical results.
    `progression` makes a follow-up of the seed's patient (`sim.followup`): same patient,
    anatomy, stents and views, its lesions progressed, and a new acquisition (timing,
    detector, noise) drawn from (seed, visit).
    """
    rng = np.random.default_rng(seed)
    patient = sample_patient(rng, f"SIM{seed:010d}")
    anatomy = build_anatomy(rng)
    stents = _prior_stents(rng, patient)
    lesions = sample_lesions(rng, anatomy, patient.acute, patient.calcium_risk)
    visit_rng = np.random.default_rng([seed, progression.visit]) if progression else rng
    if progression:
        patient = progression.patient(patient)
        lesions = progression.lesions(visit_rng, anatomy, lesions)
    effects = apply_lesions(anatomy, lesions, stents)
    scenes = {side: build_scene(anatomy, effects, side, rng) for side in ("LCA", "RCA")}
    plans = ([(side, (primary, secondary)) for side, primary, secondary in views] if views
             else _plan_views(rng, n_left, n_right))
    rng = visit_rng
    arms = _fit_detector(rng, [(side, CArm(p, s)) for side, (p, s) in plans], scenes)
    fps = float(rng.choice(FRAME_RATES))
    cardiac = sample_cardiac_motion(rng)
    noise = noise_field(rng, arms[0].pixels)

    def render_view(number: int, side: Laterality, arm: CArm,
                    view_rng: np.random.Generator) -> SimulatedView:
        timeline = _timeline(view_rng, scenes[side], fps, cardiac)
        background = render_background(arm, anatomy.heart, view_rng, NOISE_AT_MID_GREY)
        cine = render_cine(scenes[side], arm, anatomy.heart, timeline, background, noise,
                           view_rng)
        return SimulatedView(number, side, arm, timeline, cine)

    jobs = [(number, side, arm, view_rng) for number, ((side, _), arm, view_rng)
            in enumerate(zip(plans, arms, rng.spawn(len(plans)), strict=True), start=1)]
    if workers <= 1:
        views = [render_view(*job) for job in jobs]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            views = list(pool.map(lambda job: render_view(*job), jobs))
    return SimulatedStudy(seed, patient, anatomy, lesions, stents, views,
                          treatment_plan(lesions), progression.visit if progression else 1)


def _prior_stents(rng: np.random.Generator, patient: Patient) -> list[Stent]:
    if patient.prior_pci is None:
        return []
    return [Stent(patient.prior_pci.segment, round(float(rng.uniform(15, 30)), 1),
                  round(float(rng.uniform(0.4, 0.6)), 2), patient.prior_pci.year)]


def _plan_views(rng: np.random.Generator, n_left: int | None, n_right: int | None
                ) -> list[tuple[Laterality, tuple[float, float]]]:
    """Left views then right views, standard angles each jittered a few degrees."""
    n_left = n_left if n_left is not None else int(rng.integers(4, 7))
    n_right = n_right if n_right is not None else int(rng.integers(2, 4))
    plans: list[tuple[Laterality, tuple[float, float]]] = []
    for side, angles, count in (("LCA", LEFT_VIEWS, n_left), ("RCA", RIGHT_VIEWS, n_right)):
        for primary, secondary in angles[:count]:
            jitter = rng.uniform(-ANGLE_JITTER_DEG, ANGLE_JITTER_DEG, size=2)
            plans.append((side, (round(primary + jitter[0], 1), round(secondary + jitter[1], 1))))
    return plans


def _fit_detector(rng: np.random.Generator, planned: list[tuple[Laterality, CArm]],
                  scenes: dict[str, Scene]) -> list[CArm]:
    """One source distance and detector zoom for the study, each view panned onto its tree."""
    sid = round(float(rng.uniform(950, 1100)), 1)
    sod = round(float(sid - rng.uniform(250, 330)), 1)
    arms = [replace(arm, sid_mm=sid, sod_mm=sod) for _, arm in planned]
    largest = max(arm.extent_px(scenes[side].injected_points)
                  for (side, _), arm in zip(planned, arms, strict=True))
    spacing = arms[0].pixel_spacing_mm * largest / (FIELD_FILL * arms[0].pixels)
    spacing = round(float(np.clip(spacing * rng.uniform(0.95, 1.05), *PIXEL_SPACING_RANGE_MM)), 3)
    return [replace(arm, pixel_spacing_mm=spacing).centred_on(scenes[side].injected_points)
            for (side, _), arm in zip(planned, arms, strict=True)]


def _timeline(rng: np.random.Generator, scene: Scene, fps: float,
              cardiac: CardiacMotion) -> Timeline:
    """This cine's beat (same patient, random start in the cycle), breath and injection."""
    injection = sample_injection(rng, float(scene.path_mm[scene.injected].max()))
    duration = cine_duration_s(rng, injection)
    beat = replace(cardiac, start_phase=float(rng.uniform(0, 1)),
                   heart_rate_bpm=cardiac.heart_rate_bpm + float(rng.normal(0, 2)))
    return Timeline(fps, int(round(duration * fps)), beat, sample_breathing(rng), injection)
