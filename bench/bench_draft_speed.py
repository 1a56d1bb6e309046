"""How fast drafts are written: seconds per draft for each drafter, and `angioscribe analyze`
of a 7-view simulator study (5 left + 2 right cines) with its EN and JA drafts, end to end.

Targets (issue 23): the default drafter writes one draft in <= 3 s, and `analyze` of a 7-view
study with EN + JA drafts finishes in <= 60 s, on the project machine (2 CPU cores).

- per draft: the study's key frames (pixels read beforehand), its truth lesions as clues and
  its clinical text, as `report --corpus --clues truth` would give them; one warm-up draft,
  then the median of REPEATS; each language on its own. Loading the drafter is timed apart.
- end to end: `angioscribe analyze STUDY --out OUT` in a new process (Python start, model
  loads, every cine, key frames, segmentation, QCA, both drafts), wall clock.

The machine is shared, so the load average is recorded beside the numbers.

    python bench/bench_draft_speed.py [--drafter NAME_OR_ADAPTER ...] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from record import record

from angioscribe.errors import InputError
from angioscribe.report.corpus import corpus_records, sim_samples
from angioscribe.report.drafters import DEFAULT_DRAFTER, create_drafter
from angioscribe.report.drafting import corpus_requests, with_pixels
from angioscribe.sim.study import simulate_study
from angioscribe.sim.writers import write_study

VIEWS = (5, 2)
REPEATS = 5
TARGET_DRAFT_S = 3.0
TARGET_ANALYZE_S = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drafter", action="append", default=[],
                        help="A registered drafter or an adapter file; repeatable "
                             f"(default: {DEFAULT_DRAFTER}, the default drafter).")
    parser.add_argument("--seed", type=int, default=0, help="The simulated study's seed.")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-draft-speed-") as scratch:
        study = simulate_study(args.seed, *VIEWS)
        write_study(study, Path(scratch), rle=True)
        folder = Path(scratch) / study.study_id
        drafts = [row for source in dict.fromkeys([DEFAULT_DRAFTER, *args.drafter])
                  for row in draft_seconds(source, folder)]
        analyze = analyze_seconds(folder, Path(scratch) / "out")
    default = [row for row in drafts if row["drafter"] == DEFAULT_DRAFTER]
    metrics = {
        "views": sum(VIEWS),
        "seed": args.seed,
        "default_drafter": DEFAULT_DRAFTER,
        "default_ms_per_draft_max": max(row["ms_per_draft_median"] for row in default),
        "target_ms_per_draft": 1000 * TARGET_DRAFT_S,
        **analyze,
        "target_analyze_s": TARGET_ANALYZE_S,
        "load_average_1_5_15_before": [round(value, 2) for value in load_before],
        "load_average_1_5_15_after": [round(value, 2) for value in os.getloadavg()],
        "drafters": drafts,
    }
    path = record("draft_speed", metrics,
                  notes=f"torch threads {args.threads}; a shared 2-core machine: see the load "
                        "average. Per draft: median of 5 after a warm-up; analyze: one run in "
                        "a new process.")
    print(path.read_text())


def draft_seconds(source: str, folder: Path) -> list[dict[str, Any]]:
    """Median seconds per draft of one drafter on the study, per language it writes."""
    rows = []
    records = list(corpus_records(sim_samples(folder)))
    for request_record, request in corpus_requests(records, "truth"):
        start = time.perf_counter()
        try:
            drafter = create_drafter(source, request_record.lang)
        except InputError:  # an adapter of the other language
            continue
        load_s = time.perf_counter() - start
        with_pixels(request)
        drafter.draft(request)  # warm-up: first-call allocations, caches
        seconds = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            text = drafter.draft(request).text
            seconds.append(time.perf_counter() - start)
        rows.append({"drafter": source, "lang": request_record.lang,
                     "load_s": round(load_s, 2),
                     "ms_per_draft_median": round(1000 * statistics.median(seconds), 3),
                     "ms_per_draft_max": round(1000 * max(seconds), 3),
                     "key_frames": len(request.key_frames), "clues": len(request.findings),
                     "characters": len(text)})
    return rows


def analyze_seconds(folder: Path, out: Path) -> dict[str, Any]:
    """Wall and CPU seconds of `angioscribe analyze` on the study's DICOM folder, and what it
    found. On a busy machine the CPU seconds (user + system of the process) are closer to
    what the run takes when nothing else runs."""
    command = [str(Path(sys.executable).with_name("angioscribe")), "analyze",
               str(folder / "dicom"), "--out", str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if run.returncode != 0:
        raise SystemExit(f"analyze failed ({run.returncode}): {run.stderr[-2000:]}")
    [study] = json.loads((out / "analysis.json").read_text())
    return {"analyze_s": round(seconds, 1), "analyze_cpu_s": round(cpu, 1),
            "analyze_drafts": sorted(study["drafts"]),
            "analyze_key_frames": sum(len(frames) for frames in
                                      study["keyframes"].get("keyframes", {}).values()),
            "analyze_study_findings": len(study["study_findings"])}


if __name__ == "__main__":
    main()
