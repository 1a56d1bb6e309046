"""How long the simulator takes to render a 7-view study (5 left + 2 right cines), in memory.

Target (issue #5): <= 2 s per 7-view study on the project machine. Each seed is rendered
REPEATS times and the fastest run kept (the machine is shared, so slower runs measure other
people's jobs); the load average is recorded beside the numbers for the same reason. Writing
the files (DICOM, masks, truth) is timed separately, once per seed.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from record import record

from angioscribe.sim.study import simulate_study
from angioscribe.sim.writers import write_study

SEEDS = (0, 1, 2, 3, 4)
REPEATS = 3
VIEWS = (5, 2)


def best_render(seed: int, workers: int) -> tuple[float, float, int]:
    """Fastest wall time, its CPU time, and the study's frame count."""
    runs = []
    for _ in range(REPEATS):
        wall, cpu = time.perf_counter(), time.process_time()
        study = simulate_study(seed, *VIEWS, workers=workers)
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    wall, cpu = min(runs)
    return wall, cpu, sum(view.timeline.n_frames for view in study.views)


def write_seconds(seed: int) -> float:
    study = simulate_study(seed, *VIEWS)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        write_study(study, Path(folder))
        return time.perf_counter() - start


def main() -> None:
    load_before = os.getloadavg()[0]
    single = [best_render(seed, workers=1) for seed in SEEDS]
    double = [best_render(seed, workers=2) for seed in SEEDS]
    writes = [write_seconds(seed) for seed in SEEDS]
    frames = [count for _, _, count in single]
    metrics = {
        "studies": len(SEEDS),
        "views_per_study": sum(VIEWS),
        "frames_per_study_mean": round(statistics.mean(frames), 1),
        "render_s_median_1_thread": round(statistics.median(w for w, _, _ in single), 3),
        "render_s_max_1_thread": round(max(w for w, _, _ in single), 3),
        "render_cpu_s_median_1_thread": round(statistics.median(c for _, c, _ in single), 3),
        "render_s_median_2_threads": round(statistics.median(w for w, _, _ in double), 3),
        "ms_per_frame_1_thread": round(1000 * sum(w for w, _, _ in single) / sum(frames), 2),
        "write_s_median": round(statistics.median(writes), 3),
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "per_study": [{"seed": s, "frames": f, "render_s": round(w, 3), "cpu_s": round(c, 3)}
                      for s, (w, c, f) in zip(SEEDS, single, strict=True)],
    }
    path = record("sim_study", metrics,
                  notes="simulate_study(seed, 5, 2): best of 3 per seed; target <= 2 s per "
                        "7-view study. Load average shows how busy the shared machine was.")
    print(path.read_text())


if __name__ == "__main__":
    main()
