"""Peak memory of reading a long cine: 2,000 frames of 512 px, 500 MiB once decoded to 8 bits.

Target (issue 21): `read_cine` raises the process's peak memory over its baseline by at most
1.2x the decoded size, i.e. about one copy of the cine plus a frame. The file is a simulated
XA view (the simulator's 8-bit MONOCHROME2 frames, played back and forth to 2,000 frames, so each
frame compresses like a real one), written as JPEG Lossless (dcmtk's `dcmcjpeg`, when installed)
and RLE Lossless (pydicom's encoder). Making the files takes a minute; they are kept in the
system's temporary folder for later runs.

Each file is measured in a fresh interpreter: imports first, then the baseline resident memory,
then the kernel's peak marker (VmHWM) is reset, so the peak counts the read alone. A sampler
thread also follows the resident memory of any worker processes the reader starts, since the
machine pays for those too; "with workers" adds their peak to the reader's (an upper bound, the
two peaks need not coincide). `candidate_frames` on the decoded cine is measured the same way,
on top of the memory the cine already holds.
"""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from record import record

FRAMES = 2000
MIB = 2**20
CACHE = Path(tempfile.gettempdir()) / "angioscribe-bench" / f"read-memory-{FRAMES}-frames"
SIM_SEED = 0
SAMPLE_S = 0.005
TARGET = 1.2


def long_dataset():
    """The simulator's first left view, its frames played back and forth to FRAMES frames."""
    from angioscribe.sim.study import simulate_study
    from angioscribe.sim.writers import xa_dataset

    study = simulate_study(SIM_SEED, 1, 0)
    view = study.views[0]
    loop = np.concatenate([view.cine.frames, view.cine.frames[-2:0:-1]])
    frames = loop[np.arange(FRAMES) % len(loop)]
    dataset = xa_dataset(study, view)
    dataset.NumberOfFrames = FRAMES
    dataset.StopTrim = FRAMES
    dataset.PixelData = frames.tobytes()
    return dataset


def cached_cines() -> dict[str, Path]:
    """{encoding: path} of the long cine, written on first use."""
    from pydicom.uid import RLELossless

    CACHE.mkdir(parents=True, exist_ok=True)
    paths = {"rle_lossless": CACHE / "rle.dcm"}
    if shutil.which("dcmcjpeg"):
        paths["jpeg_lossless_sv1"] = CACHE / "jpeg-lossless.dcm"
    if all(path.exists() for path in paths.values()):
        return paths
    print(f"writing the {FRAMES}-frame test cines to {CACHE} (once)...", flush=True)
    dataset = long_dataset()
    uncompressed = CACHE / "uncompressed.dcm"
    dataset.save_as(uncompressed, enforce_file_format=True)
    if "jpeg_lossless_sv1" in paths:
        partial = paths["jpeg_lossless_sv1"].with_suffix(".partial")
        subprocess.run(["dcmcjpeg", str(uncompressed), str(partial)], check=True)
        partial.rename(paths["jpeg_lossless_sv1"])
    uncompressed.unlink()
    dataset.compress(RLELossless, encoding_plugin="pylibjpeg")
    dataset.save_as(paths["rle_lossless"], enforce_file_format=True)
    return paths


def status_kib(field: str, pid: int | str = "self") -> int:
    """A VmRSS/VmHWM line of /proc/<pid>/status, in KiB (0 once the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) if found else 0


def reset_peak() -> None:
    """Make VmHWM start again from the current resident size (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


def children(pid: int) -> list[int]:
    """Direct and indirect child processes of `pid`."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found + [grandchild for child in found for grandchild in children(child)]


class WorkerPeak:
    """Highest summed resident memory of this process's children while the block runs."""

    def __enter__(self) -> WorkerPeak:
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            total = sum(status_kib("VmRSS", pid) for pid in children(os.getpid()))
            self.peak_kib = max(self.peak_kib, total)


def measured(work) -> tuple[object, dict[str, float]]:
    """Run `work()`; its result and the memory it took over what the process held before."""
    gc.collect()
    before_kib = status_kib("VmRSS")
    workers_before_kib = sum(status_kib("VmRSS", pid) for pid in children(os.getpid()))
    reset_peak()
    start = time.perf_counter()
    with WorkerPeak() as workers:
        result = work()
    seconds = time.perf_counter() - start
    return result, {
        "baseline_mib": before_kib / 1024,
        "peak_over_baseline_mib": (status_kib("VmHWM") - before_kib) / 1024,
        "workers_peak_over_baseline_mib": max(0, workers.peak_kib - workers_before_kib) / 1024,
        "seconds": seconds,
    }


def measure(path: Path) -> dict[str, object]:
    """In this (fresh) process: read the cine, then pick its candidate frames."""
    from angioscribe.frames import candidate_frames
    from angioscribe.io import read_cine

    cine, read = measured(lambda: read_cine(path))
    decoded_mib = cine.frames.nbytes / MIB
    _, candidates = measured(lambda: candidate_frames(cine.frames))
    return {"frames": cine.n_frames, "decoded_mib": decoded_mib, "read": read,
            "candidates": candidates}


def measure_in_fresh_process(path: Path) -> dict[str, object]:
    run = subprocess.run([sys.executable, __file__, "--measure", str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def metrics_for(encoding: str, path: Path, result: dict) -> dict[str, float | int | str]:
    decoded = result["decoded_mib"]
    read, candidates = result["read"], result["candidates"]
    return {
        f"{encoding}_file_mib": round(path.stat().st_size / MIB, 1),
        f"{encoding}_read_peak_mib": round(read["peak_over_baseline_mib"], 1),
        f"{encoding}_read_peak_per_decoded": round(read["peak_over_baseline_mib"] / decoded, 2),
        f"{encoding}_read_workers_peak_mib": round(read["workers_peak_over_baseline_mib"], 1),
        f"{encoding}_read_peak_with_workers_per_decoded": round(
            (read["peak_over_baseline_mib"] + read["workers_peak_over_baseline_mib"]) / decoded, 2),
        f"{encoding}_read_s": round(read["seconds"], 1),
        f"{encoding}_candidates_peak_mib": round(candidates["peak_over_baseline_mib"], 1),
        f"{encoding}_candidates_peak_per_decoded": round(
            candidates["peak_over_baseline_mib"] / decoded, 2),
        f"{encoding}_candidates_s": round(candidates["seconds"], 1),
    }


def main() -> None:
    metrics: dict[str, float | int | str] = {"frames": FRAMES, "target_peak_per_decoded": TARGET}
    for encoding, path in cached_cines().items():
        result = measure_in_fresh_process(path)
        metrics["decoded_mib"] = round(result["decoded_mib"], 1)
        metrics["baseline_mib"] = round(result["read"]["baseline_mib"], 1)
        metrics.update(metrics_for(encoding, path, result))
    record(
        "read_memory",
        metrics,
        notes=f"{FRAMES}-frame 512^2 8-bit XA (simulated view looped), JPEG Lossless SV1 via "
        "dcmcjpeg and RLE via pydicom; each read in a fresh process, peak = VmHWM after reset "
        "minus VmRSS before the read (baseline after imports); candidates = candidate_frames "
        "on the decoded cine, on top of it; workers = sampled resident memory of child "
        "processes",
    )
    print(metrics)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        print(json.dumps(measure(Path(sys.argv[2]))))
    else:
        main()
