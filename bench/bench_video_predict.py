"""Video model inference on one 7-view simulated study (512 px cines), decoding excluded.

The target (issue #25) is <= 10 s per study on this CPU. One prediction reads every cine's
16-frame clip through the frozen EfficientNet-Lite0 (the cost), then the temporal attention,
the view pooling and the heads. Measured at 224 px (the default) and 112 px, with 1 and 2 torch
threads, no feature cache (a new study is never cached); wall time and the CPU time of the
calling thread (with 1 thread: the compute itself, whatever else holds the shared cores).
Random weights of the same network when no trained artifact is given (same speed).
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace

import torch
from record import record

from angioscribe.sim.study import simulate_study
from angioscribe.video.config import VideoConfig
from angioscribe.video.predict import predict_study
from angioscribe.video.study_model import VideoStudyModel
from angioscribe.video.zoo import create_video_model

VIEWS = 7
REPEATS = 3


def model_for(size: int, artifact: str | None) -> tuple[VideoStudyModel, str]:
    if artifact:
        model, _ = create_video_model(artifact)
        return model, artifact
    return VideoStudyModel(replace(VideoConfig(), size=size), pretrained=True).eval(), "random"


def main() -> None:
    study = simulate_study(1).to_study()
    study.cines = study.cines[:VIEWS]
    metrics: dict[str, object] = {"views": len(study.cines),
                                  "frames": [c.n_frames for c in study.cines]}
    for size in (224, 112):
        model, weights = model_for(size, None)
        metrics["weights"] = weights
        for threads in (1, 2):
            torch.set_num_threads(threads)
            predict_study(model, study, "bench")  # warm-up
            walls, cpus = [], []
            for _ in range(REPEATS):
                wall, cpu = time.perf_counter(), time.thread_time()
                predict_study(model, study, "bench")
                walls.append(time.perf_counter() - wall)
                cpus.append(time.thread_time() - cpu)
            metrics[f"s_per_study_{size}px_{threads}thread"] = round(sorted(walls)[1], 2)
            if threads == 1:
                metrics[f"cpu_s_per_study_{size}px_1thread"] = round(sorted(cpus)[1], 2)
    record("video_predict", metrics, notes=" ".join(sys.argv[1:]))
    print(metrics)


if __name__ == "__main__":
    main()
