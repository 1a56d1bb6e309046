"""Many simulated studies for the video model: RLE DICOM, no masks, one DeepCORO-CLIP table.

A full study folder (`write_study`) carries per-frame masks and uncompressed pixels, about
121 MB for seven views; the video model needs neither, nor 512 px (it reads 224 px). Here each
study keeps only its cines, binned 2 x 2 on the detector by default (256 px, pixel spacing
doubled, as a cath-lab system bins; about 4x smaller: RLE alone saves nothing on quantum
noise), RLE Lossless, and truth.json, and the dataset one `video.csv` in
DeepCORO-CLIP's schema: `FileName`, `Report` (the side's summary, so left cines pair with
left-territory text), `Split`, `StudyInstanceUID`, `ss_patient_id`, `visit` (1, or 2 for a
follow-up study of the same patient, `sim.followup`), `main_structure` and the 18 segments'
label columns (docs/video.md). A follow-up keeps its patient's split, so no patient is in two.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from angioscribe.sim.followup import Progression, simulate_followup
from angioscribe.sim.study import SimulatedStudy, SimulatedView, simulate_study
from angioscribe.sim.writers import (
    MAIN_STRUCTURE,
    deepcoro_labels,
    series_name,
    write_csv,
    write_dicom,
)

TABLE = "video.csv"


def binned(view: SimulatedView, factor: int) -> SimulatedView:
    """The view as a detector binning `factor` x `factor` pixels would record it."""
    if factor == 1:
        return view
    frames = view.cine.frames
    t, h, w = frames.shape
    blocks = frames[:, : h - h % factor, : w - w % factor].reshape(
        t, h // factor, factor, w // factor, factor)
    small = blocks.mean(axis=(2, 4)).round().astype(frames.dtype)
    arm = replace(view.arm, pixels=view.arm.pixels // factor,
                  pixel_spacing_mm=view.arm.pixel_spacing_mm * factor)
    return replace(view, arm=arm, cine=replace(view.cine, frames=small, masks=small[:0]))


def video_rows(study: SimulatedStudy, out: Path, split: str, binning: int = 2
               ) -> list[dict[str, Any]]:
    """Write one study's cines and truth; return its table rows (paths relative to `out`)."""
    folder = out / study.study_id
    truth = study.truth()
    summaries = truth["reports"]["summary_by_side"]
    labels = deepcoro_labels(study)
    rows = []
    for view in study.views:
        path = write_dicom(study, binned(view, binning),
                           folder / "dicom" / f"{series_name(view)}.dcm", rle=True)
        rows.append({
            "FileName": path.relative_to(out).as_posix(),
            "Report": summaries[view.laterality]["en"],
            "Split": split,
            "StudyInstanceUID": study.study_instance_uid,
            "ss_patient_id": study.patient.patient_id,
            "ss_event_cath_id": study.study_id,
            "visit": study.visit,
            "main_structure": MAIN_STRUCTURE[view.laterality],
            "view": view.view or "Other",
            "fps": view.timeline.fps,
            **labels,
        })
    (folder / "truth.json").write_text(json.dumps(truth, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
    return rows


def _spread(count: int, chosen: int) -> list[bool]:
    """`chosen` of `count` positions, evenly spread."""
    return [(i + 1) * chosen // count > i * chosen // count for i in range(count)]


def split_names(count: int, val: int, test: int) -> list[str]:
    """`val` validation and `test` test studies spread evenly among the training ones, so any
    first part of the dataset (a run stopped early) has all three splits."""
    held_out = iter(_spread(val + test, test)) if val + test else iter(())
    return [("test" if next(held_out) else "val") if held else "train"
            for held in _spread(count, val + test)]


def followup_progressions(count: int, share: float, max_grades: int = 2
                          ) -> list[Progression | None]:
    """A follow-up for `share` of `count` patients, evenly spread; their narrowing cycles
    through 1..`max_grades` grades so the evaluation sees small and large progression."""
    chosen = _spread(count, round(share * count))
    followed = itertools.count()
    return [Progression(grades=1 + next(followed) % max_grades) if pick else None
            for pick in chosen]


def write_video_dataset(out: Path, seeds: Iterable[int], splits: list[str],
                        workers: int = 1, binning: int = 2,
                        followups: list[Progression | None] | None = None) -> Path:
    """Simulate and write each study (compact), and the follow-up `followups` asks for
    beside its patient's baseline; `out/video.csv` lists all cines written so far after each
    patient, so a stopped run leaves a usable table."""
    out = Path(out)
    rows: list[dict[str, Any]] = []
    followups = followups or [None] * len(splits)
    for seed, split, progression in zip(seeds, splits, followups, strict=True):
        rows += video_rows(simulate_study(seed, workers=workers), out, split, binning)
        if progression:
            rows += video_rows(simulate_followup(seed, progression, workers), out, split,
                               binning)
        write_csv(rows, out / TABLE)
    return out / TABLE
