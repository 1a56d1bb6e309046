"""Segmentation latency: one 512 px ARCADE frame through both models and post-processing.

The target (issue #4) is <= 0.5 s per frame for syntax + stenosis segmentation, region
extraction and the per-segment findings, on this CPU. The median of repeated runs is reported
because the machine is shared and the mean is dominated by other processes' bursts; with one
thread, the CPU time the process used is also reported: it is the wall time the same work takes
on the machine when nothing else runs.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import torch
from record import record

from angioscribe.data.arcade import load_arcade
from angioscribe.findings import segment_frame
from angioscribe.models.registry import WeightsMissingError, create_model
from angioscribe.models.segmenter import Segmenter

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REPEATS = 15


def load(name: str) -> tuple[Segmenter, str]:
    """The shipped weights; random weights of the same network if not built yet (same speed,
    though random maps yield more regions, so post-processing then costs a little more)."""
    try:
        return Segmenter.from_name(name), "shipped"
    except WeightsMissingError:
        return Segmenter(*create_model(name, pretrained=False)), "random"


def analyse(frame, syntax: Segmenter, stenosis: Segmenter) -> int:
    _, findings = segment_frame(frame, syntax, stenosis)
    return len(findings.stenoses)


def main() -> None:
    frame = load_arcade(DATA, "syntax", "val").images[0].load()
    syntax, syntax_weights = load("syntax-seg")
    stenosis, stenosis_weights = load("stenosis-seg")
    metrics: dict[str, float | str | int] = {
        "frame_px": int(frame.shape[0]),
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        "weights": f"syntax={syntax_weights}, stenosis={stenosis_weights}",
    }
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for _ in range(2):
            analyse(frame, syntax, stenosis)
        wall, cpu = [], []
        for _ in range(REPEATS):
            start, start_cpu = time.perf_counter(), time.process_time()
            analyse(frame, syntax, stenosis)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        metrics[f"s_per_frame_{threads}thread"] = round(statistics.median(wall), 3)
        if threads == 1:
            metrics["cpu_s_per_frame_1thread"] = round(statistics.median(cpu), 3)
    path = record("segmentation", metrics,
                  notes=f"median of {REPEATS} runs; both models (traced + frozen) + regions "
                        "+ findings; the load average says whether other jobs ran")
    print(metrics, "->", path)


if __name__ == "__main__":
    main()
