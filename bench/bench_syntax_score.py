"""Dominance and the anatomical SYNTAX score on held-out simulated studies, against their truth.

Two readings of each study (the studies of `angioscribe sim dataset --seed 2222`, as
bench_findings_sim.py uses):

- **perfect**: each view's segments as the simulator labels them (`syntax_score.truth_frames`),
  the truth lesions on them; the chain's dominance rule, consolidation and score. Measures the
  rule itself.
- **models**: each view's best frame through `findings.segment_frame` with the shipped SYNTAX
  model, the stenosis model replaced by the truth lesions' outlines (`qca.simulated`): the
  model's kept segments decide the dominance, the model's probabilities name each lesion and
  give its neighbouring segments (branch points), QCA measures it. Measures dominance, naming
  and severity as the chain has them, lesion detection left out.

The perfect reading is compared with the truth's score as the truth knows it
(`truth_syntax_score`); the models' reading with the truth's score with thrombus and
calcification not assessed, which is what the chain can score today ("comparable"). Score
errors come with 95 % bootstrap CIs resampling studies.

    cd bench && ../.venv/bin/python bench_syntax_score.py [N_STUDIES]     # default 12
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

import numpy as np
import torch
from record import record

from angioscribe.dominance import study_dominance
from angioscribe.evaluate.bootstrap import bootstrap_ci
from angioscribe.findings import segment_frame, study_findings
from angioscribe.models.segmenter import Segmenter
from angioscribe.qca.simulated import view_lesions
from angioscribe.regions import Region, mask_polygon
from angioscribe.sim import dataset_seeds, simulate_study
from angioscribe.sim.study import SimulatedStudy
from angioscribe.syntax_score import (
    syntax_score,
    truth_findings,
    truth_frames,
    truth_syntax_score,
)

DATASET_SEED = 2222
STUDIES = 12
# What each truth dominance should read as: the simulator's co-dominant hearts have a right
# PDA and no left one, which the chain (and the SYNTAX score) call right.
EXPECTED = {"right": {"right"}, "left": {"left"}, "co": {"right", "co-dominant"}}


class TruthOutlines:
    """The stenosis model's place, outlining the study's truth lesions of one view."""

    def __init__(self, outlines: list[np.ndarray]) -> None:
        self.outlines = outlines

    def regions(self, frame: np.ndarray) -> list[Region]:
        return [Region(26, mask_polygon(o.astype(np.uint8)), 1.0, float(o.sum()))
                for o in self.outlines]


def model_frames(study: SimulatedStudy, syntax: Segmenter) -> list[dict[str, Any]]:
    """Each view's best frame as `analyze` records it, read by the SYNTAX model, with the
    truth lesions outlined on it measured by QCA."""
    frames = []
    for view in study.views:
        lesions = view_lesions(study, view)
        frame = view.cine.frames[view.best_frame]
        scale = lesions[0].mm_per_px if lesions else None
        _, findings = segment_frame(frame, syntax, TruthOutlines([x.outline for x in lesions]),
                                    scale, view.laterality)
        frames.append({"path": f"series {view.series_number}", "frame": view.best_frame,
                       "view": view.view, "side": view.laterality, **findings.to_dict()})
    return frames


def comparable(truth: dict[str, Any]) -> float:
    """The truth's score with thrombus and calcification not assessed, as the chain has them."""
    findings = [{**f, "thrombus_assessed": False, "calcification_assessed": False}
                for f in truth_findings(truth["lesions"])]
    dominance = {"co": "co-dominant"}.get(truth["dominance"], truth["dominance"])
    return syntax_score(findings, dominance)["value"]


def reading(frames: list[dict[str, Any]]) -> dict[str, Any]:
    dominance = study_dominance(frames)["value"]
    score = syntax_score(study_findings(frames, dominance), dominance)
    return {"dominance": dominance, "score": score["value"],
            "lesions": [(x["segment"], x["stenosis_percent"], x["adverse"])
                        for x in score["lesions"]]}


def summary(rows: list[dict[str, Any]], key: str, truth_key: str) -> dict[str, Any]:
    """Dominance agreement and score errors of one reading over all studies."""
    errors = np.array([row[key]["score"] - row[truth_key] for row in rows])
    right = [row[key]["dominance"] in EXPECTED[row["truth_dominance"]] for row in rows]
    mae = bootstrap_ci(np.abs(errors))
    return {
        "dominance_right": round(float(np.mean(right)), 3),
        "dominance_read": dict(Counter(f"{row['truth_dominance']} -> {row[key]['dominance']}"
                                       for row in rows).most_common()),
        "score_equal": round(float(np.mean(errors == 0)), 3),
        "score_mae": round(float(np.mean(np.abs(errors))), 2),
        "score_mae_ci": [round(mae.low, 2), round(mae.high, 2)],
        "score_bias": round(float(np.mean(errors)), 2),
    }


def main(count: int) -> None:
    torch.set_num_threads(1)
    syntax = Segmenter.from_name("syntax-seg")
    rows = []
    for seed in dataset_seeds(DATASET_SEED, count):
        study = simulate_study(seed)
        truth = study.truth()
        rows.append({"seed": seed, "truth_dominance": truth["dominance"],
                     "truth_score": truth_syntax_score(truth)["value"],
                     "truth_comparable": comparable(truth),
                     "truth_lesions": [(x["segment"], x["stenosis_percent"])
                                       for x in truth["lesions"]],
                     "perfect": reading(truth_frames(truth)),
                     "models": reading(model_frames(study, syntax))})
        print(rows[-1], flush=True)
    metrics = {"dataset_seed": DATASET_SEED, "studies": count,
               "truth_dominance": dict(Counter(row["truth_dominance"] for row in rows)),
               "perfect": summary(rows, "perfect", "truth_score"),
               "models": summary(rows, "models", "truth_comparable"),
               "per_study": rows}
    path = record("syntax_score", metrics,
                  notes="dominance and SYNTAX score (lesion part) on held-out simulated "
                        "studies: perfect segments, and the SYNTAX model with truth lesion "
                        "outlines (QCA-measured), against the truth's score without thrombus "
                        "and calcification")
    print(path.read_text()[:3000])


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else STUDIES)
