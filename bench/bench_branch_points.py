"""Branch points for the SYNTAX score's bifurcation points: the SYNTAX model's segments around a
lesion against the annotators' segments, on real ARCADE frames.

A lesion sits at a branch point when every segment of one of the SYNTAX tutorial's junctions
lies around it (`syntax_score.branch_point`, `findings.ADJACENT_MIN_PIXELS` within
`findings.NEAREST_SEGMENT_RADIUS`). The lesions are ARCADE's annotated stenoses on the 74 syntax
val frames labelled in both tasks (as `angioscribe evaluate naming` uses them); the reference
applies the same rule to the annotated segment masks (probability 1 on the annotated segment),
the test to the shipped SYNTAX model's probabilities. ARCADE annotates some segments, not the
whole tree, so the reference misses junctions whose branch the annotators left out.

    cd bench && ../.venv/bin/python bench_branch_points.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from record import record

from angioscribe.data.lookalike import frames_in_both_tasks
from angioscribe.evaluate.bootstrap import bootstrap_ci
from angioscribe.evaluate.segment_naming import lesions_on_annotated_segments
from angioscribe.findings import frame_findings
from angioscribe.models.segmenter import Segmenter
from angioscribe.syntax_score import branch_point

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def annotated_probabilities(mask: np.ndarray, label_ids: list[int]) -> np.ndarray:
    """The annotation as a model output: probability 1 on each pixel's annotated segment."""
    return np.stack([(mask == arcade_id).astype(np.float32) for arcade_id in label_ids])


def rate(hits: list[bool], frames: list[str]) -> dict[str, object]:
    interval = bootstrap_ci(np.asarray(hits, dtype=float), groups=frames)
    return {"n": len(hits), "rate": round(float(np.mean(hits)), 3) if hits else None,
            "ci": [round(interval.low, 3), round(interval.high, 3)] if hits else None}


def main() -> None:
    torch.set_num_threads(1)
    syntax = Segmenter.from_name("syntax-seg")
    label_ids = list(syntax.entry.label_ids)
    rows = []
    for stenosis_image, syntax_image in frames_in_both_tasks(DATA, syntax_split="val"):
        frame = stenosis_image.load()
        probabilities = syntax.probabilities(frame)
        labelled = lesions_on_annotated_segments(stenosis_image, syntax_image)
        lesions = [lesion for lesion, _ in labelled]
        model = frame_findings(syntax.post_process(probabilities), lesions, probabilities,
                               label_ids).stenoses
        annotated = frame_findings([], lesions, annotated_probabilities(
            syntax_image.mask("syntax"), label_ids), label_ids).stenoses
        for (_, truth), read, reference in zip(labelled, model, annotated, strict=True):
            rows.append({"frame": stenosis_image.file_name, "segment": truth,
                         "reference": branch_point(truth, reference.adjacent_segments),
                         "model": branch_point(read.segment, read.adjacent_segments)
                         if read.segment else None})
    at_junction = [row for row in rows if row["reference"]]
    elsewhere = [row for row in rows if not row["reference"]]
    metrics = {
        "lesions": len(rows),
        "at_junction_reference": len(at_junction),
        "sensitivity": rate([bool(row["model"]) for row in at_junction],
                            [row["frame"] for row in at_junction]),
        "same_junction": rate([row["model"] == row["reference"] for row in at_junction],
                              [row["frame"] for row in at_junction]),
        "specificity": rate([not row["model"] for row in elsewhere],
                            [row["frame"] for row in elsewhere]),
        "per_lesion": [{**row, "reference": "/".join(row["reference"] or ()),
                        "model": "/".join(row["model"] or ())} for row in rows],
    }
    path = record("branch_points", metrics,
                  notes="lesions at a SYNTAX junction: SYNTAX model's segments around each "
                        "annotated ARCADE stenosis vs the annotated segments (74 syntax val "
                        "frames labelled in both tasks); CIs over frames")
    print(path.read_text()[:1500])


if __name__ == "__main__":
    main()
