"""`angioscribe serve` as the system tests and benchmarks run it: a separate process started
through the command line with the contract's flags, killed with SIGKILL or stopped with SIGTERM
like an operator (or a power cut) would, and asked about its queue through `angioscribe queue`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ANGIOSCRIBE = Path(sys.executable).with_name("angioscribe")
READY = re.compile(r'"listening on [^"]*:(\d+)"')  # the ready line, with the port it took
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0


@dataclass
class ServeProcess:
    """A running `angioscribe serve`; its JSON log lines go to `log_path` (appended on each
    start, so a restarted service's log tells the whole story)."""

    process: subprocess.Popen[bytes]
    data_dir: Path
    ae_title: str
    port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_events(self) -> list[dict[str, Any]]:
        """The structured log lines (other lines, e.g. a library's warning, are left out)."""
        events = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return events

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash or `kill -9` would end it: no handler runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        """SIGTERM and wait: the graceful shutdown; returns the exit code."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_serve(data_dir: Path, destinations: list[str], *, port: int = 0,
                ae_title: str = "ANGIOSCRIBE", stable_seconds: float = 1.0, workers: int = 2,
                extra: tuple[str, ...] = ()) -> ServeProcess:
    """Start `angioscribe serve` on loopback and wait until it logs that it listens; port 0
    lets it take any free port (read back from its "listening on HOST:PORT" line), so tests
    running at once never race for one."""
    command = [str(ANGIOSCRIBE), "serve", "--data", str(data_dir), "--port", str(port),
               "--ae-title", ae_title, "--stable-seconds", str(stable_seconds),
               "--workers", str(workers), *extra]
    for destination in destinations:
        command += ["--destination", destination]
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}-serve.log"
    log_start = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    serve = ServeProcess(process, data_dir, ae_title, port, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while (ready := READY.search(serve.log()[log_start:])) is None:
        if not serve.alive() or time.monotonic() > deadline:
            serve.stop()
            raise RuntimeError(f"angioscribe serve did not start ({' '.join(command)}):\n"
                               + serve.log()[log_start:][-3000:])
        time.sleep(0.1)
    serve.port = int(ready.group(1))
    return serve


def queue_jobs(data_dir: Path) -> list[dict[str, Any]]:
    """`angioscribe queue list --data DIR --json` (a JSON object per line): every job with its
    state and attempts."""
    run = subprocess.run([str(ANGIOSCRIBE), "queue", "list", "--data", str(data_dir), "--json"],
                         capture_output=True, text=True, check=True)
    return [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
