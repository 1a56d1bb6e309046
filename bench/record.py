"""Write a benchmark's measurements with the machine and date, so results stay comparable.

Every benchmark script calls `record(name, metrics)`; results land in bench/results/<name>.json
and a one-line summary is appended to bench/results/HISTORY.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """CPU model, core count, memory and library versions of the machine that measured."""
    import numpy
    import torch

    cpu = platform.processor() or ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_gb, 1),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def revision() -> str:
    """The commit of the angioscribe source that ran, '+dirty' when it has uncommitted edits.

    Taken from where `angioscribe` was imported, so a run against another checkout says so.
    """
    import angioscribe

    source = Path(angioscribe.__file__).resolve().parent

    def git(*args: str) -> str:
        run = subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True)
        return run.stdout.strip() if run.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--", ".") else "")


def record(name: str, metrics: dict[str, Any], notes: str = "") -> Path:
    """Store `metrics` for benchmark `name`; returns the JSON file written."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    when = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    payload = {
        "benchmark": name,
        "date": when,
        "machine": machine(),
        "revision": revision(),
        "metrics": metrics,
        "notes": notes,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    summary = ", ".join(
        f"{k}={_fmt(v)}" for k, v in metrics.items() if not isinstance(v, dict | list)
    )
    with (RESULTS / "HISTORY.md").open("a") as history:
        where = (f"{payload['machine']['cpu']}, {payload['machine']['cores']} cores, "
                 f"angioscribe {payload['revision']}")
        history.write(f"- {when} {name} ({where}): {summary}\n")
    return path


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def median_ms(call: Callable[[], Any], items: int, repeats: int, warmups: int = 3,
              clock: Callable[[], float] = time.perf_counter) -> float:
    """Median milliseconds per item of `call()` (which handles `items` items) over `repeats`
    calls after `warmups`; `clock=time.thread_time` gives the CPU time one thread spends,
    whatever else holds the shared cores."""
    for _ in range(warmups):
        call()
    times = []
    for _ in range(repeats):
        start = clock()
        call()
        times.append(clock() - start)
    return statistics.median(times) * 1000 / items
