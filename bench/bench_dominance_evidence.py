"""Dominance evidence on real ARCADE frames: does the SYNTAX model's kept segments show the
posterior territory where the annotators' segments do?

`dominance.study_dominance` decides from each frame's posterior evidence
(`dominance.posterior_evidence`: a PDA, #4 or #15, or on a right injection a right
posterolateral, #16-16c, among the frame's segments). ARCADE has single frames, not studies,
so the study's dominance cannot be scored; the evidence of each frame can. For every syntax val
frame, the injection side is the annotated segments' side; the reference evidence comes from
the annotated segments, the test from the segments the shipped SYNTAX model's tuned rules keep.
CIs over frames.

    cd bench && ../.venv/bin/python bench_dominance_evidence.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from record import record

from angioscribe.anatomy import laterality_of_segments, segment_by_arcade_id
from angioscribe.data.arcade import load_arcade
from angioscribe.dominance import POSTERIOR_DESCENDING, posterior_evidence
from angioscribe.evaluate.bootstrap import bootstrap_ci
from angioscribe.models.segmenter import Segmenter

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def rate(hits: list[bool]) -> dict[str, object]:
    if not hits:
        return {"n": 0, "rate": None, "ci": None}
    interval = bootstrap_ci(np.asarray(hits, dtype=float))
    return {"n": len(hits), "rate": round(float(np.mean(hits)), 3),
            "ci": [round(interval.low, 3), round(interval.high, 3)]}


def main() -> None:
    torch.set_num_threads(1)
    syntax = Segmenter.from_name("syntax-seg")
    rows = []
    for image in load_arcade(DATA, "syntax", "val").images:
        side = laterality_of_segments(image.segments)
        if side is None:
            continue
        kept = {segment_by_arcade_id(region.category_id).number
                for region in syntax.regions(image.load())}
        rows.append({"frame": image.file_name, "side": side,
                     "reference": posterior_evidence(side, image.segments),
                     "model": posterior_evidence(side, kept)})
    shows = [row for row in rows if row["reference"]]
    hidden = [row for row in rows if not row["reference"]]
    left = [row for row in rows if row["side"] == "LCA"]
    metrics = {
        "frames": len(rows),
        "right_frames": len(rows) - len(left),
        "left_frames": len(left),
        "reference_shows_posterior": len(shows),
        "sensitivity": rate([bool(row["model"]) for row in shows]),
        "specificity": rate([not row["model"] for row in hidden]),
        "left_pda_reference": sum(bool(POSTERIOR_DESCENDING & set(r["reference"])) for r in left),
        "left_pda_model": sum(bool(POSTERIOR_DESCENDING & set(r["model"])) for r in left),
        "left_pda_both": sum(bool(r["model"]) and bool(r["reference"]) for r in left),
        "per_frame": rows,
    }
    path = record("dominance_evidence", metrics,
                  notes="posterior-territory evidence per ARCADE syntax val frame: SYNTAX "
                        "model's kept segments vs annotated segments (side from the annotation)")
    print({k: v for k, v in metrics.items() if k != "per_frame"})
    print(path)


if __name__ == "__main__":
    main()
