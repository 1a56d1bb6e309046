"""Decode + candidate-frame throughput on the shared real DICOMs and the real cine folder.

Reports frames per second for decoding alone and for decoding plus candidate selection,
best of several repeats (the machine is shared, so the best run is the least disturbed).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from record import record

from angioscribe.frames import candidate_frames
from angioscribe.io import find_inputs, read_cine

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
REPEATS = 5


def sources() -> list[Path]:
    paths = find_inputs([SHARED / "dicom", SHARED / "cine"])
    if not paths:
        sys.exit(f"no inputs under {SHARED}: this benchmark needs the shared real data")
    return paths


def best_of(repeats: int, work) -> float:
    """Seconds of the fastest of `repeats` runs of `work()`."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    paths = sources()
    cines = [read_cine(path) for path in paths]
    frames = sum(cine.n_frames for cine in cines)
    decode_s = best_of(REPEATS, lambda: [read_cine(path) for path in paths])
    select_s = best_of(REPEATS, lambda: [candidate_frames(cine.frames) for cine in cines])
    record(
        "decode_frames",
        {
            "inputs": len(paths),
            "frames": frames,
            "decode_fps": round(frames / decode_s, 1),
            "candidates_fps": round(frames / select_s, 1),
            "decode_plus_candidates_fps": round(frames / (decode_s + select_s), 1),
        },
        notes="shared/data/dicom (JPEG lossless, RLE; 512^2 and 1024^2) + the 37-frame JPEG cine "
        "folder; best of 5 runs on a machine shared with other work",
    )


if __name__ == "__main__":
    main()
