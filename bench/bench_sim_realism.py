"""Do the shipped models read simulated frames as they read real ones? (issue #22, item 4)

On the studies `angioscribe sim dataset --seed 0 --n-studies N` writes (the same seeds, in
memory), each view's best key frame goes through the shipped models (`sim.realism`):

- `syntax-seg`, scored with the official ARCADE F1 against the simulator's segment masks;
  target: within 0.1 of its ARCADE syntax val F1 (0.461, docs/segmentation.md);
- `stenosis-seg`: recall of the simulated lesions >= 50 % (found within 10 px of the lesion
  core in some view of the study); target: the significant lesions found (>= 0.7, as the
  findings chain's study-level target);
- the out-of-scope guard: share of key frames accepted as coronary angiograms.

Also recorded: the SYNTAX F1 against ARCADE-style truth (a left view annotated for one artery,
`sim.realism.arcade_style_truth`), by side, and both F1s per view.

    .venv/bin/python bench/bench_sim_realism.py [N]      # N studies, default 8
"""

from __future__ import annotations

import sys
import time

import torch
from record import record

from angioscribe.sim.realism import KeyFrameResult, Models, measure_realism
from angioscribe.sim.study import simulate_study
from angioscribe.sim.writers import dataset_seeds

DATASET_SEED = 0
DEFAULT_STUDIES = 8
ARCADE_VAL_SYNTAX_F1 = 0.461  # the shipped syntax-seg on ARCADE syntax val (docs/metrics.md)


def mean_f1(frames: list[KeyFrameResult], key: str) -> float:
    """The mean of one F1 field over these key frames, rounded as recorded."""
    return round(sum(getattr(k, key) for k in frames) / len(frames), 4)


def by_view(frames: list[KeyFrameResult]) -> dict[str, dict[str, float]]:
    """Both SYNTAX F1s per side and view ("LCA RAO Caudal"), with the key frames counted."""
    groups: dict[str, list[KeyFrameResult]] = {}
    for frame in frames:
        groups.setdefault(f"{frame.name[-3:]} {frame.view or 'view unknown'}", []).append(frame)
    return {name: {"key_frames": len(group), "syntax_f1": mean_f1(group, "syntax_f1"),
                   "syntax_f1_arcade_style": mean_f1(group, "syntax_f1_arcade_style")}
            for name, group in sorted(groups.items())}


def main() -> None:
    torch.set_num_threads(1)
    count = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_STUDIES
    seeds = dataset_seeds(DATASET_SEED, count)
    start = time.perf_counter()
    score = measure_realism((simulate_study(seed) for seed in seeds), Models.load())
    metrics = {"studies": count, "dataset_seed": DATASET_SEED, **score.summary(),
               "arcade_val_syntax_f1": ARCADE_VAL_SYNTAX_F1,
               "syntax_f1_gap": round(ARCADE_VAL_SYNTAX_F1 - score.syntax_f1, 4),
               "seconds": round(time.perf_counter() - start, 1)}
    for side in ("LCA", "RCA"):
        frames = [k for k in score.key_frames if k.name.endswith(side)]
        metrics[f"syntax_f1_{side}"] = mean_f1(frames, "syntax_f1")
        metrics[f"syntax_f1_arcade_style_{side}"] = mean_f1(frames, "syntax_f1_arcade_style")
    metrics["syntax_f1_by_view"] = by_view(score.key_frames)
    path = record("sim_realism", metrics,
                  notes="best key frame of every view; one torch thread; seeds as "
                        "`sim dataset --seed 0`")
    print(metrics, "->", path)


if __name__ == "__main__":
    main()
