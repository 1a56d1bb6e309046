"""Fault scenarios run against `angioscribe serve` through its command line and the network,
shared by the test suite (small) and the benchmarks (the issue's full sizes): each returns what
happened, and the caller asserts (tests) or records (benchmarks) it.

- `kill_and_restart`: studies from concurrent senders, SIGKILL once some results are out (at
  the arrival of an SR, before the service has its acknowledgement), a restart on the same data
  folder; counts what was lost and what reached the destination twice.
- `fuzz_stream`: mutated instances and good studies sent at once; counts the statuses and
  whether the service stayed up and the good studies came back.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from pydicom.uid import ComprehensiveSRStorage

from angioscribe.service.serve import PARENT_CHECK_SECONDS
from angioscribe.sim.study import simulate_study
from angioscribe.sim.writers import write_study
from dicom_network import NO_ANSWER, Received, RecordingDestination, StoreResult, store_files
from serve_process import ServeProcess, start_serve

RESULTS_TIMEOUT_S = 600.0
WORKERS_GONE_S = 10 * PARENT_CHECK_SECONDS  # a worker checks for its parent this often
Studies = dict[str, list[Path]]  # StudyInstanceUID -> its DICOM files


def write_sim_studies(folder: Path, seeds: range, views: tuple[int, int] = (1, 0)) -> Studies:
    """Simulated studies (RLE) with `views` (left, right) cines each, one per seed."""
    studies = {}
    for seed in seeds:
        study = simulate_study(seed, *views)
        write_study(study, folder, rle=True)
        studies[study.study_instance_uid] = sorted(
            (folder / study.study_id / "dicom").glob("*.dcm"))
    return studies


def send_concurrently(studies: list[list[Path]], senders: int, serve: ServeProcess
                      ) -> list[StoreResult]:
    """Each sender C-STOREs its share of the studies (one association per study), at once."""
    shares = [studies[number::senders] for number in range(senders)]

    def send(share: list[list[Path]]) -> list[StoreResult]:
        return [result for files in share
                for result in store_files(files, serve.port, serve.ae_title)]

    with ThreadPoolExecutor(senders) as pool:
        return [result for results in pool.map(send, shares) for result in results]


def studies_with_sr(received: list[Received]) -> set[str]:
    return {item.study_uid for item in received if item.sop_class_uid == ComprehensiveSRStorage}


def studies_with_all_results(received: list[Received], data: Path) -> set[str]:
    """The studies whose every DICOM result (SR, Encapsulated PDF, and the KOS when the study
    has key frames) arrived: as many instances as the service wrote under
    `data/results/<study>/objects/`."""
    results: dict[str, set[str]] = {}
    for item in received:
        results.setdefault(item.study_uid, set()).add(item.sop_instance_uid)
    return {study for study, uids in results.items()
            if 0 < _results_written(data, study) <= len(uids)}


def _results_written(data: Path, study: str) -> int:
    return len(list((data / "results" / study / "objects").glob("*.dcm")))


def wait_for_sr(destination: RecordingDestination, studies: set[str], count: int,
                serve: ServeProcess, timeout_s: float = RESULTS_TIMEOUT_S,
                arrived: Callable[[list[Received]], set[str]] = studies_with_sr) -> set[str]:
    """Wait until `count` of `studies` have their SR (or what `arrived` asks for) at the
    destination (or the service died, or time ran out); returns those that have."""
    deadline = time.monotonic() + timeout_s
    done = arrived(destination.snapshot()) & studies
    while len(done) < count and serve.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
        done = arrived(destination.snapshot()) & studies
    return done


@dataclass
class KillRestartOutcome:
    """What a kill-and-restart run did: statuses the senders got, results at the kill, and what
    was lost (not all of its results: SR, PDF, and KOS when it has key frames) or repeated (a
    SOP instance received more than once)."""

    studies: int
    statuses: Counter[int | None]
    reports_at_kill: int
    lost: list[str]
    repeated: dict[str, int]
    reports_per_study: Counter[str]
    exit_code: int
    seconds: float
    log_tail: str = field(repr=False, default="")


def _kill_at_sr(destination: RecordingDestination, serve: ServeProcess,
                count: int) -> Callable[[Received], None]:
    """What the destination calls on each instance: SIGKILL `serve` at the `count`th SR, and
    hold that SR's status until its workers, which exit when they see their parent gone, are
    gone too (so none of them gets the status and marks the SR)."""
    def on_received(item: Received) -> None:
        if (item.sop_class_uid == ComprehensiveSRStorage and serve.alive()
                and len(studies_with_sr(destination.snapshot())) >= count):
            serve.kill()
            time.sleep(WORKERS_GONE_S)
    return on_received


def kill_and_restart(studies: Studies, senders: int, kill_after: int, folder: Path,
                     workers: int = 2, stable_seconds: float = 1.0) -> KillRestartOutcome:
    """Send every study from `senders` at once, SIGKILL the service when `kill_after` studies
    have their SR at the destination (the last one's C-STORE still waiting for its status: the
    destination has it and the service cannot have marked it), start it again on the same
    data folder and port, and wait for every study's results (a study with a result missing is
    lost); a graceful stop ends the run."""
    started = time.monotonic()
    destination = RecordingDestination().start()
    data = folder / "data"
    serve = start_serve(data, [destination.address], stable_seconds=stable_seconds,
                        workers=workers)
    destination.on_received = _kill_at_sr(destination, serve, kill_after)
    try:
        sent = send_concurrently(list(studies.values()), senders, serve)
        wait_for_sr(destination, set(studies), kill_after, serve)
        serve.kill()  # at once if no SR arrived in time
        destination.on_received = None
        reports_at_kill = len(studies_with_sr(destination.snapshot()))
        serve = start_serve(data, [destination.address], port=serve.port,
                            stable_seconds=stable_seconds, workers=workers)
        done = wait_for_sr(destination, set(studies), len(studies), serve,
                           arrived=partial(studies_with_all_results, data=data))
    finally:
        exit_code = serve.stop()
        destination.stop()
    received = destination.snapshot()
    per_instance = Counter(item.sop_instance_uid for item in received)
    return KillRestartOutcome(
        studies=len(studies), statuses=Counter(result.status for result in sent),
        reports_at_kill=reports_at_kill, lost=sorted(set(studies) - done),
        repeated={uid: count for uid, count in per_instance.items() if count > 1},
        reports_per_study=Counter(item.study_uid for item in received
                                  if item.sop_class_uid == ComprehensiveSRStorage),
        exit_code=exit_code, seconds=time.monotonic() - started, log_tail=serve.log()[-3000:])


@dataclass
class FuzzOutcome:
    """What a fuzz stream did: each mutated file's status (or why none), whether the service
    stayed up, and which good studies came back."""

    instances: int
    statuses: Counter[int | None]
    problems: Counter[str]
    unanswered: list[str]
    alive_after_stream: bool
    good_statuses: Counter[int | None]
    good_back: int
    good_studies: int
    exit_code: int
    seconds: float
    log_tail: str = field(repr=False, default="")


def fuzz_stream(mutated: list[Path], good: Studies, folder: Path, workers: int = 1,
                stable_seconds: float = 1.0) -> FuzzOutcome:
    """Send the mutated files on one association stream and the good studies on another, at
    once; then wait for the good studies' SRs and stop the service gracefully."""
    started = time.monotonic()
    destination = RecordingDestination().start()
    serve = start_serve(folder / "data", [destination.address], stable_seconds=stable_seconds,
                        workers=workers)
    try:
        with ThreadPoolExecutor(2) as pool:
            fuzzed = pool.submit(store_files, mutated, serve.port, serve.ae_title)
            good_sent = pool.submit(send_concurrently, list(good.values()), 1, serve)
            fuzz_results, good_results = fuzzed.result(), good_sent.result()
        alive = serve.alive()
        done = wait_for_sr(destination, set(good), len(good), serve)
    finally:
        exit_code = serve.stop()
        destination.stop()
    return FuzzOutcome(
        instances=len(mutated), statuses=Counter(result.status for result in fuzz_results),
        problems=Counter(result.problem for result in fuzz_results if result.problem),
        unanswered=[f"{result.path.name}: {result.detail} after {result.seconds} s"
                    for result in fuzz_results if result.problem == NO_ANSWER],
        alive_after_stream=alive,
        good_statuses=Counter(result.status for result in good_results),
        good_back=len(done), good_studies=len(good), exit_code=exit_code,
        seconds=time.monotonic() - started, log_tail=serve.log()[-3000:])


def write_mutations(folder: Path, seeds_folder: Path, count: int) -> list[Path]:
    """`count` mutated real XA files (tests/dicom_mutations.py), one file each, in order."""
    from dicom_mutations import mutations, real_seeds

    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for mutation in mutations(real_seeds(seeds_folder), count):
        files.append(folder / f"{mutation.name.split()[0]}.dcm")
        files[-1].write_bytes(mutation.data)
    return files
