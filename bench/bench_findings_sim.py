"""The findings chain end to end on held-out simulated studies, scored against their truth.

Targets (issue #22), on simulated studies the chain was not tuned on: for the lesions it finds,
% stenosis MAE <= 10 points; total occlusions found >= 80 %; significant (>= 50 %) lesions
found at the right segment, study level, >= 70 %. Each study is simulated with the standard
views (4-6 left, 2-3 right), written as `angioscribe sim dataset` writes it, run through the
chain as `angioscribe analyze` does (every cine, key frames, the best frame of every other
cine, QCA, one finding per segment) and compared with its truth by
`evaluate.findings_truth` (as `angioscribe evaluate findings` does); 95 % CIs resample patients.

Held-out seeds: the studies of `angioscribe sim dataset --seed 2222` (`dataset_seeds(2222, N)`).
The QCA rules were tuned on study seeds 0-23 (bench_qca.py) and the calcification check on
small seeds too (bench_calcification.py), the simulator's realism on the studies of `sim
dataset --seed 0` (bench_sim_realism.py), the key-frame classifier trained on
`dataset_seeds(1000, 30)` and evaluated on `dataset_seeds(2000, 10)`; the run stops if any of
those seeds (TUNING_SEEDS, generously counted) is among the held-out ones.

    cd bench && ../.venv/bin/python bench_findings_sim.py [N_STUDIES]     # default 8
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from record import record

from angioscribe.analyze import Segmenters
from angioscribe.batch import attempt
from angioscribe.evaluate.findings_truth import (
    ChainAnalysis,
    StudyComparison,
    compare_folder,
    findings_metrics,
    plot_findings_truth,
)
from angioscribe.keyframes.classify import KeyframeClassifier
from angioscribe.sim import dataset_seeds, write_dataset

DATASET_SEED = 2222
STUDIES = 8
TUNING_SEEDS = {*range(1000), *(seed for start in (0, 1000, 2000)
                                 for seed in dataset_seeds(start, 1000))}
FIGURE = Path(__file__).resolve().parents[1] / "docs" / "figures" / "findings-sim.png"


def chain_diagnostics(chain: ChainAnalysis) -> dict[str, int]:
    """Where the chain lost studies before any finding: frames the scope guard refused,
    sides of a study with no key frame, frames read for lesions and lesions outlined."""
    studies = chain.studies
    return {
        "frames_refused_out_of_scope": sum(len(c.out_of_scope) for s in studies
                                           for c in s.cines),
        "better_frames": sum(sum(score.keyframe == "better" for score in c.frame_scores)
                             for s in studies for c in s.cines),
        "sides_without_key_frame": sum(len(s.keyframes.get("missing", {})) for s in studies),
        "frames_read": sum(len(s.findings) for s in studies),
        "lesions_outlined": sum(len(f["stenoses"]) for s in studies for f in s.findings),
    }


def main(count: int) -> None:
    torch.set_num_threads(1)
    seeds = dataset_seeds(DATASET_SEED, count)
    if TUNING_SEEDS & set(seeds):
        raise SystemExit(f"held-out seeds {sorted(TUNING_SEEDS & set(seeds))} were tuned on")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-findings-") as scratch:
        folder = Path(scratch)
        write_dataset(folder / "studies", seeds)
        chain = ChainAnalysis(folder / "analysis", KeyframeClassifier.load(), Segmenters.load())
        comparisons: list[StudyComparison] = []
        records: list[dict[str, Any]] = []
        seconds = []
        for study in sorted((folder / "studies").glob("*/truth.json")):
            start = time.perf_counter()
            comparison, error = attempt(study.parent, lambda f=study.parent: compare_folder(
                f, chain))
            seconds.append(time.perf_counter() - start)
            comparisons += [comparison] if comparison else []
            records.append(comparison.to_record() if comparison else error)
        for item in records:  # the temporary folder goes; the study is named by its seed
            item["path"] = Path(item["path"]).name
        rows = findings_metrics(comparisons)
        plot_findings_truth(comparisons, FIGURE)
        diagnostics = chain_diagnostics(chain)
    metrics: dict[str, Any] = {
        "dataset_seed": DATASET_SEED,
        "studies": count,
        "studies_scored": len(comparisons),
        **{row["metric"]: None if row["value"] is None else round(row["value"], 3)
           for row in rows},
        **diagnostics,
        "seconds_per_study_median": round(sorted(seconds)[len(seconds) // 2], 1),
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "metrics": rows,
        "per_study": records,
    }
    path = record("findings_sim", metrics,
                  notes=f"analyze chain (shipped models, 1 torch thread) on the held-out "
                        f"studies of `sim dataset --seed {DATASET_SEED}`, study findings "
                        f"matched to truth lesions by segment; targets: stenosis_mae <= 10, "
                        f"occlusions_found >= 0.8, significant_found >= 0.7. Figure: "
                        f"docs/figures/findings-sim.png")
    print(path.read_text()[:4000])


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else STUDIES)
