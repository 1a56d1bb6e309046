"""Cine file -> model-ready tensors: angioscribe against a peer toolkit's path, side by side.

The peer is DeepCORO-CLIP's video pipeline, written anew here from its description (no fetched
code): pydicom `pixel_array` -> an OpenCV MJPG AVI at the header's frame rate (or 30) ->
`cv2.VideoCapture` read back -> 16 evenly spaced frames resized to 224 px -> normalised float32
tensor, in one process as the peer runs it. angioscribe's path is the public one the commands
use: `read_cine` (8-bit frames) -> `candidate_frames` -> the key-frame model's preprocessing of
each candidate. Only public functions are called, so the benchmark keeps measuring whatever
the reader does underneath.

Both run on the same files in one interleaved run: each round times every path once, in an
order that alternates between rounds, so drift in the load of the shared machine falls on both.
The first round is the cold start (caches, any worker process the reader starts); it is reported
on its own and left out of the medians. Frames per second count the source frames; the median
over rounds is reported, with the ratio of medians (target >= 2x) and the median of the
per-round ratios. angioscribe decodes on both cores, the peer on one, so the ratio depends on
a second core being free: the share of CPU time left idle during the run is recorded with it.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pydicom
import torch
from record import record

from angioscribe.frames import candidate_frames
from angioscribe.io import read_cine
from angioscribe.keyframes.classify import DEFAULT_MODEL
from angioscribe.models.registry import get_entry

REPO = Path(__file__).resolve().parents[1]
PHANTOM = REPO.parent / "shared" / "data" / "dicom" / "phantom-xa"
FILES = [PHANTOM / f"IM{i}.dcm" for i in range(1, 5)]
ROUNDS = 9
PEER_FRAMES = 16
PEER_PX = 224
PEER_FPS_DEFAULT = 30.0
# Per-channel normalisation of the peer's video loader; any fixed values cost the same.
PEER_MEAN = np.array([0.45, 0.45, 0.45], dtype=np.float32) * 255
PEER_STD = np.array([0.225, 0.225, 0.225], dtype=np.float32) * 255


def header_fps(dataset: pydicom.Dataset) -> float:
    """The frame rate the header states (CineRate, RecommendedDisplayFrameRate, FrameTime)."""
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        if dataset.get(keyword):
            return float(dataset.get(keyword))
    if dataset.get("FrameTime"):
        return 1000.0 / float(dataset.FrameTime)
    return PEER_FPS_DEFAULT


def peer_decode(path: Path) -> tuple[np.ndarray, float]:
    """The peer's first step: the whole pixel array, as 8-bit frames, and the frame rate."""
    dataset = pydicom.dcmread(path)
    pixels = dataset.pixel_array
    if pixels.dtype != np.uint8:
        low, high = float(pixels.min()), float(pixels.max())
        pixels = ((pixels - low) * (255.0 / max(high - low, 1.0))).astype(np.uint8)
    return (pixels if pixels.ndim == 3 else pixels[None]), header_fps(dataset)


def peer_write_avi(frames: np.ndarray, fps: float, target: Path) -> None:
    """DICOM -> MJPG AVI, the peer's storage format (3-channel frames, as OpenCV writes video)."""
    height, width = frames.shape[1:]
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()


def peer_load_tensor(video: Path) -> torch.Tensor:
    """The peer's loader: every frame read back, 16 evenly spaced, 224 px, normalised (C,T,H,W)."""
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if not frames:
        raise RuntimeError(f"{video}: OpenCV read no frames back")
    picks = np.linspace(0, len(frames) - 1, PEER_FRAMES).round().astype(int)
    clip = np.stack([cv2.resize(frames[i], (PEER_PX, PEER_PX)) for i in picks]).astype(np.float32)
    clip = (clip - PEER_MEAN) / PEER_STD
    return torch.from_numpy(clip).permute(3, 0, 1, 2)


def peer_path(paths: list[Path], folder: Path) -> list[torch.Tensor]:
    tensors = []
    for path in paths:
        frames, fps = peer_decode(path)
        video = folder / f"{path.stem}.avi"
        peer_write_avi(frames, fps, video)
        tensors.append(peer_load_tensor(video))
    return tensors


def angioscribe_path(paths: list[Path]) -> list[torch.Tensor]:
    """File -> 8-bit frames -> candidate frames -> the key-frame model's input tensors."""
    preprocess = get_entry(DEFAULT_MODEL).preprocess
    tensors = []
    for path in paths:
        frames = read_cine(path).frames
        candidates = candidate_frames(frames)
        tensors.append(torch.stack([preprocess(frames[c.index]) for c in candidates]))
    return tensors


def interleaved_seconds(paths_to_time: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
    """Seconds per round for each path, order alternating; round 0 is the cold first run."""
    names = list(paths_to_time)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(ROUNDS + 1):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            start = time.perf_counter()
            paths_to_time[name]()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def cpu_times() -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return values[3] + values[4], sum(values)


def paired_ratio(peer_seconds: list[float], our_seconds: list[float]) -> float:
    """Median over rounds of peer time / angioscribe time: each round's pair saw the same load."""
    ratios = [p / o for p, o in zip(peer_seconds, our_seconds, strict=True)]
    return round(statistics.median(ratios), 2)


def main() -> None:
    missing = [str(path) for path in FILES if not path.is_file()]
    if missing:
        sys.exit(f"missing inputs {missing}: this benchmark needs the shared real data")
    frames = sum(int(pydicom.dcmread(path, stop_before_pixels=True).NumberOfFrames)
                 for path in FILES)
    load_before = os.getloadavg()[0]
    idle_before, total_before = cpu_times()
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as folder:
        seconds = interleaved_seconds({
            "peer": lambda: peer_path(FILES, Path(folder)),
            "angioscribe": lambda: angioscribe_path(FILES),
            "peer_decode": lambda: [peer_decode(path) for path in FILES],
            "angioscribe_decode": lambda: [read_cine(path) for path in FILES],
        })
    idle_after, total_after = cpu_times()
    first = {name: frames / runs.pop(0) for name, runs in seconds.items()}
    fps = {name: frames / statistics.median(runs) for name, runs in seconds.items()}
    metrics = {
        "inputs": len(FILES),
        "frames": frames,
        "rounds": ROUNDS,
        "load_average_1min_at_start": round(load_before, 2),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "cpu_idle_percent_during_run": round(
            100 * (idle_after - idle_before) / max(total_after - total_before, 1)),
        "peer_fps": round(fps["peer"], 1),
        "angioscribe_fps": round(fps["angioscribe"], 1),
        "ratio": round(fps["angioscribe"] / fps["peer"], 2),
        "ratio_median_of_rounds": paired_ratio(seconds["peer"], seconds["angioscribe"]),
        "peer_decode_fps": round(fps["peer_decode"], 1),
        "angioscribe_decode_fps": round(fps["angioscribe_decode"], 1),
        "decode_ratio": round(fps["angioscribe_decode"] / fps["peer_decode"], 2),
        "decode_ratio_median_of_rounds": paired_ratio(
            seconds["peer_decode"], seconds["angioscribe_decode"]),
        "peer_first_round_fps": round(first["peer"], 1),
        "angioscribe_first_round_fps": round(first["angioscribe"], 1),
        "seconds_per_round": {name: [round(s, 3) for s in runs] for name, runs in seconds.items()},
    }
    record(
        "decode_peer",
        metrics,
        notes="shared phantom-xa IM1-IM4 (JPEG Lossless SV1, 8-bit 512^2, 48 frames); peer = "
        "DeepCORO-CLIP's DICOM -> MJPG AVI -> VideoCapture -> 16x224 px float32 path written "
        "from its description, single process; angioscribe = read_cine -> candidate_frames -> "
        f"key-frame preprocessing; median of {ROUNDS} interleaved rounds after a cold first round "
        "(reported apart), on a machine shared with other work",
    )
    print({k: v for k, v in metrics.items() if k != "seconds_per_round"})


if __name__ == "__main__":
    main()
