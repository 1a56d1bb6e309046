"""`serve`: the whole service in one process tree, started and stopped like a daemon.

The main process runs the DICOM listener (threads), the health endpoint (a thread) and, once a
second, the housekeeping: RECEIVING studies without a new instance for `stable_seconds` become
RECEIVED, a worker whose study has been analysing longer than `analysis_timeout_seconds` is
ended, and a worker process that died is replaced (its study goes back to the queue, counting
the attempt). `workers` worker processes (spawned, so none inherits the listener's
threads or sockets) each load the models once and analyse one study at a time.

At start the queue is recovered first: what a killed service was analysing or sending goes
back to the queue. SIGTERM or SIGINT stops the listener from accepting, lets the open
associations end (each instance already acknowledged is on disk), asks the workers to stop
after their current study, ends those still busy after `shutdown_seconds` (their study is
released, to be analysed again at the next start) and returns. Workers ignore the signals
(a Ctrl-C or systemd's SIGTERM reaches the whole process group; the main process decides) and
exit on their own if the main process disappears (kill -9), so no orphan sends results
that a restarted service sends again.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from angioscribe.errors import InputError
from angioscribe.service.config import ServiceConfig
from angioscribe.service.health import start_health
from angioscribe.service.jsonlog import configure_json_logging, exception_fields
from angioscribe.service.queue import Job, JobQueue, State
from angioscribe.service.scp import start_scp

if TYPE_CHECKING:
    from multiprocessing.context import SpawnProcess
    from multiprocessing.synchronize import Event as ProcessEvent

log = logging.getLogger(__name__)
T = TypeVar("T")

HOUSEKEEPING_SECONDS = 1.0
RESTART_DELAY_SECONDS = 5.0  # a worker that keeps dying at start is not restarted in a loop
PARENT_CHECK_SECONDS = 0.2


def serve(config: ServiceConfig, verbose: bool = False) -> None:
    """Run the service until SIGTERM or SIGINT (see the module docstring)."""
    configure_json_logging(verbose)
    queue = JobQueue(str(config.queue_url))
    for study_uid in queue.recover(max_attempts=config.max_attempts):
        log.warning("study released: the service stopped while it was in work",
                    extra={"study_uid": study_uid})
    stop_requested = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, frame: stop_requested.set())
    started = time.monotonic()
    workers = WorkerPool(config, queue)
    scp = _listen("DICOM", config.host, config.port, lambda: start_scp(config, queue))
    host, port = scp.server_address[:2]

    def health() -> dict[str, Any]:
        return health_report(scp.socket.fileno() >= 0, queue, workers, config.workers,
                             time.monotonic() - started)

    health_server = None
    if config.health_port is not None:
        health_port = config.health_port
        health_server = _listen("the health endpoint", config.host, health_port,
                                lambda: start_health(config.host, health_port, health))
    try:
        workers.start()
        log.info(f"listening on {host}:{port}", extra={
            "ae_title": config.ae_title, "tls": config.tls is not None,
            "workers": config.workers,
            "accept_from": list(config.accept_from) or "loopback callers",
            "destinations": [str(destination) for destination in config.destinations],
            "health_port": health_server.server_address[1] if health_server else None})
        warn_about_setup(config)
        while not stop_requested.wait(HOUSEKEEPING_SECONDS):
            housekeeping(queue, config.stable_seconds, workers)
    finally:
        log.info("stopping: no new associations")
        deadline = time.monotonic() + config.shutdown_seconds
        scp.shutdown()
        _end_associations(scp, deadline)
        workers.stop(deadline)
        if health_server is not None:
            health_server.shutdown()
        log.info("stopped")


def warn_about_setup(config: ServiceConfig) -> None:
    """Say at start what a working setup would not do silently."""
    if not config.destinations:
        log.warning("no destinations: results are kept in the data folder only",
                    extra={"results_dir": str(config.results_dir)})
    if not config.accept_from and config.host not in ("127.0.0.1", "::1", "localhost"):
        log.warning("no accept_from: only callers on this machine will be accepted",
                    extra={"host": config.host})


def _listen(what: str, host: str, port: int, start: Callable[[], T]) -> T:
    """`start()` a listener; a port in use or an address not on this machine is an
    InputError naming the address, for the command to report."""
    try:
        return start()
    except OSError as error:
        raise InputError(f"{host}:{port}", f"cannot listen for {what}: "
                         f"{error.strerror or error}") from error


def housekeeping(queue: JobQueue, stable_seconds: float, workers: WorkerPool) -> None:
    """The once-a-second duties: complete stable studies, end workers stuck on a study,
    replace dead workers; a failure is logged and tried again next second (a database that is
    briefly away must not stop us)."""
    try:
        for study_uid in queue.promote_stable(stable_seconds):
            log.info("study complete: queued for analysis", extra={"study_uid": study_uid})
        workers.end_overdue(queue.jobs(State.ANALYSING))
        workers.replace_dead()
    except Exception as error:
        log.error("housekeeping failed", extra=exception_fields(error))


def health_report(listening: bool, queue: JobQueue, workers: WorkerPool, configured: int,
                  uptime_s: float) -> dict[str, Any]:
    """What GET /health answers: "ok" when the listener and every configured worker are up."""
    counts = queue.counts()
    alive = workers.alive()
    up = listening and alive >= configured
    return {"status": "ok" if up else "down", "listening": listening,
            "queue": {state.value: count for state, count in counts.items()},
            "workers": {"alive": alive, "configured": configured},
            "uptime_s": round(uptime_s, 1)}


def _end_associations(scp: Any, deadline: float) -> None:
    """Let the open associations finish until `deadline`, then abort them: an instance not
    yet acknowledged is the sender's to send again."""
    while scp.active_associations and time.monotonic() < deadline:
        time.sleep(0.1)
    for association in scp.active_associations:
        association.abort()


@dataclass
class WorkerPool:
    """The worker processes, by name (the name the queue records on the jobs they hold)."""

    config: ServiceConfig
    queue: JobQueue
    stop_event: ProcessEvent = field(init=False)
    processes: dict[str, SpawnProcess] = field(default_factory=dict)
    started_at: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self.stop_event = self._context.Event()

    def start(self) -> None:
        prefix = f"{socket.gethostname()[:40]}-{os.getpid()}"
        for number in range(1, self.config.workers + 1):
            self._start(f"{prefix}-w{number}")

    def _start(self, name: str) -> None:
        process = self._context.Process(target=run_worker, name=name, args=(
            self.config, name, self.stop_event, os.getpid()))
        process.start()
        self.processes[name] = process
        self.started_at[name] = time.monotonic()
        log.info("worker started", extra={"worker": name, "pid": process.pid})

    def alive(self) -> int:
        return sum(process.is_alive() for process in self.processes.values())

    def replace_dead(self) -> None:
        """Start a new process for each one that ended (not sooner than RESTART_DELAY_SECONDS
        after its start); what it held goes back to the queue, counting the attempt."""
        for name, process in list(self.processes.items()):
            waited = time.monotonic() - self.started_at[name]
            if process.is_alive() or self.stop_event.is_set() or waited < RESTART_DELAY_SECONDS:
                continue
            log.error("worker died; starting a new one",
                      extra={"worker": name, "exit_code": process.exitcode})
            self._release(name)
            self._start(name)

    def end_overdue(self, analysing: Iterable[Job], now: datetime | None = None) -> list[str]:
        """Kill the workers whose study has been analysing longer than the configured timeout
        (a hung model or codec never raises, so only the clock can tell); `replace_dead` then
        releases the study, counting the attempt, and starts a new worker. Returns their names."""
        now = now or datetime.now(UTC)
        ended = []
        for job in overdue(analysing, now, self.config.analysis_timeout_seconds):
            process = self.processes.get(job.worker or "")
            if process is None or not process.is_alive():
                continue
            log.error("analysis took too long; ending its worker", extra={
                "study_uid": job.study_uid, "worker": job.worker,
                "timeout_s": self.config.analysis_timeout_seconds})
            process.kill()
            process.join()
            ended.append(job.worker)
        return ended

    def stop(self, deadline: float) -> None:
        """Ask every worker to stop after its study; end those still busy at `deadline`."""
        self.stop_event.set()
        for process in self.processes.values():
            process.join(max(0.0, deadline - time.monotonic()))
        for name, process in self.processes.items():
            if process.is_alive():
                log.warning("worker still busy at shutdown: ended", extra={"worker": name})
                process.kill()
                process.join()
                self._release(name)

    def _release(self, name: str) -> None:
        for study_uid in self.queue.recover(worker=name, max_attempts=self.config.max_attempts):
            log.warning("study released: its worker ended",
                        extra={"study_uid": study_uid, "worker": name})


def overdue(analysing: Iterable[Job], now: datetime, timeout_s: float) -> list[Job]:
    """The analysing jobs claimed (their last change) more than `timeout_s` before `now`."""
    return [job for job in analysing
            if (now - job.updated_at).total_seconds() > timeout_s]


def run_worker(config: ServiceConfig, name: str, stop: ProcessEvent, parent_pid: int) -> None:
    """A worker process: the service's logging, the signals left to the main process, an exit
    as soon as the main process is gone, then `Worker.run` until `stop` is set."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)
    configure_json_logging()
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    from angioscribe.service.worker import Worker

    Worker(config, name=name).run(stop)


def _exit_with_parent(parent_pid: int) -> None:
    """End this process at once when its parent is gone (it was killed: the restarted service
    takes the study over, so this one must not finish and send it too)."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)
