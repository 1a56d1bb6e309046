"""Key-frame classifier latency: one 224 px frame, preprocessing included, on this CPU.

The target (issue #3) is <= 15 ms per frame for the shipped default. Measured single-frame
(the latency a viewer waits for) and per frame in a batch of 8 (a cine's candidates, the way
`keyframes` runs), with 1 and 2 torch threads; the median of repeated runs is reported because
the machine is shared and the mean is dominated by other processes' bursts. On a shared machine
wall time also counts the time other jobs hold the core, so the single-thread CPU time
(`time.thread_time`) is recorded too: the compute one frame costs, whatever else is running.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from record import median_ms, record

from angioscribe.keyframes.classify import KeyframeClassifier
from angioscribe.models.registry import WeightsMissingError, create_model

MODEL = "keyframe-effnetl0"
FRAME_PX = 224
REPEATS = 60


def load() -> tuple[KeyframeClassifier, str]:
    """The shipped weights; random weights of the same network if not built yet (same speed)."""
    try:
        return KeyframeClassifier.load(MODEL), "shipped"
    except WeightsMissingError:
        return KeyframeClassifier(*create_model(MODEL, pretrained=False)), "random"


def main() -> None:
    classifier, weights = load()
    rng = np.random.default_rng(0)
    single = rng.integers(0, 256, (1, FRAME_PX, FRAME_PX), dtype=np.uint8)
    batch = rng.integers(0, 256, (8, FRAME_PX, FRAME_PX), dtype=np.uint8)
    metrics: dict[str, float | str | int] = {"model": MODEL, "weights": weights,
                                             "frame_px": FRAME_PX,
                                             "input_px": int(classifier.preprocess.size or 0)}
    torch.set_num_threads(1)
    metrics["cpu_ms_per_frame_single_1thread"] = round(
        median_ms(lambda: classifier.probabilities(single), len(single), REPEATS, 5,
                  clock=time.thread_time), 2)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        metrics[f"ms_per_frame_single_{threads}thread"] = round(median_ms(
            lambda: classifier.probabilities(single), len(single), REPEATS, 5), 2)
        metrics[f"ms_per_frame_batch8_{threads}thread"] = round(median_ms(
            lambda: classifier.probabilities(batch), len(batch), REPEATS, 5), 2)
    path = record("keyframe", metrics, notes="median of 60 runs; machine shared with training jobs")
    print(metrics, "->", path)


if __name__ == "__main__":
    main()
