"""Can calcification be read from a cine's frames before the contrast arrives? A feasibility
measurement on simulated studies, whose truth knows each lesion's calcification grade.

Calcium is radio-opaque without contrast: before the injection reaches a lesion, a calcified
wall is a faint dark streak where the lesion will be. The measure here is the lesion's darkness
against its surroundings in each pre-contrast frame (opacification under PRE_CONTRAST): the
mean grey of a RING_PX ring around the lesion's outline minus the mean inside it, averaged over
the first PRE_FRAMES such frames. The outline is placed three ways:

- `true_position`: where the lesion is in that very frame (the simulator's truth): what the
  image holds at best;
- `key_frame_position`: where it is in the view's best contrast frame, as the chain knows it
  from its key frame; the heart and breath have moved it since;
- `searched`: the key-frame outline shifted by up to SEARCH_PX in each direction, the darkest
  place kept (a search for the streak, without knowing the motion).

Reported per truth grade (percentiles) with the AUROC of moderate or severe against none.

    cd bench && ../.venv/bin/python bench_calcification.py [N_STUDIES]     # default 40
"""

from __future__ import annotations

import sys
from collections import defaultdict
from typing import Any

import cv2
import numpy as np
from record import record

from angioscribe.qca.simulated import lesion_outline
from angioscribe.sim import simulate_study
from angioscribe.sim.lesions import lesion_centre

STUDIES = 40
VIEWS = (2, 1)
PRE_CONTRAST = 0.02
PRE_FRAMES = 6
RING_PX = 7
SEARCH_PX = 20
PLACEMENTS = ("true_position", "key_frame_position", "searched")


def darkness_map(frame: np.ndarray, outline: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Ring mean minus lesion mean for the outline shifted to every place in the frame (index
    (y, x) is the shift that puts the outline's bounding-box corner there), and the corner."""
    ys, xs = np.nonzero(outline)
    top, left = int(ys.min()), int(xs.min())
    crop = outline[top:ys.max() + 1, left:xs.max() + 1].astype(np.uint8)
    padded = cv2.copyMakeBorder(crop, RING_PX, RING_PX, RING_PX, RING_PX, cv2.BORDER_CONSTANT)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * RING_PX + 1,) * 2)
    ring = cv2.dilate(padded, disc).astype(np.float32) - padded
    inside = padded.astype(np.float32)
    image = frame.astype(np.float32)
    kernel = ring / ring.sum() - inside / inside.sum()
    darkness = cv2.filter2D(image, -1, kernel, anchor=(0, 0), borderType=cv2.BORDER_REFLECT)
    return darkness, (top - RING_PX, left - RING_PX)


def lesion_darkness(study: Any, view: Any, lesion: Any, pre: list[int]) -> dict[str, float]:
    """The three placements' darkness of one lesion, averaged over the pre-contrast frames."""
    key, _ = lesion_outline(study, view, lesion, view.best_frame)
    values: dict[str, list[float]] = defaultdict(list)
    for index in pre:
        frame = view.cine.frames[index]
        here, _ = lesion_outline(study, view, lesion, index)
        if not here.any():
            continue
        darkness, (top, left) = darkness_map(frame, here)
        values["true_position"].append(float(darkness[max(top, 0), max(left, 0)]))
        darkness, (top, left) = darkness_map(frame, key)
        window = darkness[max(top - SEARCH_PX, 0):max(top + SEARCH_PX + 1, 1),
                          max(left - SEARCH_PX, 0):max(left + SEARCH_PX + 1, 1)]
        values["key_frame_position"].append(float(darkness[max(top, 0), max(left, 0)]))
        values["searched"].append(float(window.max()))
    return {name: float(np.mean(found)) for name, found in values.items()}


def auroc(positive: list[float], negative: list[float]) -> float:
    """Probability that a calcified lesion reads darker than an uncalcified one."""
    pos, neg = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def main(count: int) -> None:
    rows = []
    for seed in range(count):
        study = simulate_study(seed, n_left=VIEWS[0], n_right=VIEWS[1])
        for view in study.views:
            pre = [i for i, value in enumerate(view.cine.opacification)
                   if value < PRE_CONTRAST][:PRE_FRAMES]
            for lesion in study.lesions:
                name, _ = lesion_centre(study.anatomy, lesion.segment, lesion.position)
                if not pre or study.anatomy.vessel(name).laterality != view.laterality:
                    continue
                if lesion_outline(study, view, lesion, view.best_frame)[0].any():
                    found = lesion_darkness(study, view, lesion, pre)
                    if found:
                        rows.append({"seed": seed, "segment": lesion.segment,
                                     "calcification": lesion.calcification, **found})
    metrics: dict[str, Any] = {"studies": count, "lesion_views": len(rows)}
    for placement in PLACEMENTS:
        grades = defaultdict(list)
        for row in rows:
            grades[row["calcification"]].append(row[placement])
        heavy = grades["moderate"] + grades["severe"]
        metrics[placement] = {
            "auroc_moderate_or_severe_vs_none": round(auroc(heavy, grades["none"]), 3),
            **{grade: {"n": len(v), "p10_p50_p90": np.round(np.percentile(v, [10, 50, 90]),
                                                            2).tolist()}
               for grade, v in grades.items()},
        }
    path = record("calcification", metrics,
                  notes="lesion darkness (ring minus lesion, grey levels) in pre-contrast "
                        "frames of simulated views, by truth calcification grade: at the "
                        "lesion's true place, at its key-frame place, searched +-20 px")
    print(path.read_text())


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else STUDIES)
