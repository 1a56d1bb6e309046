"""A real worker with the shipped models on a small simulated study; writing the DICOM objects
and sending them are recorded instead (the outputs and sender have their own tests)."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from angioscribe.service.config import Destination, ServiceConfig
from angioscribe.service.queue import JobQueue, State
from angioscribe.service.worker import Models, Worker

PACS, ARCHIVE = Destination.parse("PACS@127.0.0.1:4242"), Destination.parse("ARCH@127.0.0.1:4243")


@dataclass
class Objects:
    """What `write_study_objects` returns, as far as the worker uses it."""

    sr: Path
    kos: Path
    fhir: Path

    def dicom(self) -> list[Path]:
        return [self.sr, self.kos]


class Outputs:
    """Records each study the worker writes objects for, and writes stand-in files."""

    def __init__(self) -> None:
        self.studies: list[dict] = []

    def __call__(self, study: dict, analysis_dir: Path, out_dir: Path,
                 languages: tuple[str, ...]) -> Objects:
        self.studies.append(study)
        out_dir.mkdir(parents=True)
        for name in ("sr.dcm", "kos.dcm"):
            (out_dir / name).write_text(study["key"])
        (out_dir / "fhir.json").write_text(json.dumps(bundle(study["key"])))
        return Objects(out_dir / "sr.dcm", out_dir / "kos.dcm", out_dir / "fhir.json")


def bundle(study_uid: str) -> dict:
    return {"resourceType": "Bundle", "id": f"bundle-{study_uid}"}


class Sender:
    """Records each file acknowledged, as (destination, file name); the (destination, file
    name) pairs in `refusing` fail, once each; those in `dying` are acknowledged and then fail
    before the worker can mark them (as a kill would), once each. `held` answers which files
    a destination has, as `sender.instances_held` does."""

    def __init__(self, refusing: tuple[tuple[Destination, str], ...] = (),
                 dying: tuple[tuple[Destination, str], ...] = ()) -> None:
        self.sent: list[tuple[str, str]] = []
        self.refusing = set(refusing)
        self.dying = set(dying)

    def __call__(self, destination: Destination, files: list[Path], calling_ae: str,
                 tls: object = None) -> None:
        for file in files:
            if (destination, file.name) in self.refusing:
                self.refusing.discard((destination, file.name))
                raise OSError(f"{destination} refused {file.name}")
            self.sent.append((str(destination), file.name))
            if (destination, file.name) in self.dying:
                self.dying.discard((destination, file.name))
                raise OSError(f"died after {destination} acknowledged {file.name}")

    def held(self, destination: Destination, files: list[Path], calling_ae: str,
             tls: object = None) -> set[Path]:
        return {file for file in files if (str(destination), file.name) in self.sent}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[Path]]:
    """A simulated study with one view per side: its StudyInstanceUID and DICOM files."""
    from angioscribe.sim.study import simulate_study
    from angioscribe.sim.writers import write_study

    simulated = simulate_study(5, n_left=1, n_right=1)
    out = tmp_path_factory.mktemp("sim")
    write_study(simulated, out)
    return simulated.study_instance_uid, sorted((out / simulated.study_id).rglob("*.dcm"))


@pytest.fixture(scope="module")
def models() -> Models:
    """The models, loaded once for every worker in this module."""
    return Models.load(ServiceConfig())


class FhirServer(ThreadingHTTPServer):
    """A FHIR endpoint on loopback that records each PUT (path, JSON body)."""

    def __init__(self) -> None:
        self.puts: list[tuple[str, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # noqa: N802 (the handler's name for PUT)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.puts.append((self.path, json.loads(body)))
                self.send_response(201)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/fhir"


@pytest.fixture
def fhir_server() -> Iterator[FhirServer]:
    server = FhirServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def config(tmp_path: Path, fhir_server: FhirServer) -> ServiceConfig:
    return ServiceConfig(data_dir=tmp_path / "data", destinations=(PACS, ARCHIVE),
                         max_attempts=2, fhir_dir=tmp_path / "fhir", fhir_endpoint=fhir_server.url)


def arrived(config: ServiceConfig, study_uid: str, files: list[Path]) -> JobQueue:
    """The study's files in the incoming folder, recorded and complete in the queue."""
    queue = JobQueue(config.queue_url)
    folder = config.incoming_dir / study_uid
    folder.mkdir(parents=True)
    for file in files:
        shutil.copy(file, folder / file.name)
        queue.record_instance(study_uid, folder / file.name)
    queue.complete(study_uid)
    return queue


def test_a_received_study_is_analysed_and_sent_once_to_each_destination(config, models, study,
                                                                         fhir_server):
    study_uid, files = study
    queue = arrived(config, study_uid, files)
    outputs, sender = Outputs(), Sender()
    worker = Worker(config, name="w1", models=models, write_objects=outputs, send=sender)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        _wait_for(lambda: queue.job(study_uid).state == State.SENT)
    finally:
        stop.set()
        thread.join(30)
    analysis = json.loads((config.results_dir / study_uid / "analysis.json").read_text())
    assert [entry["key"] for entry in analysis] == [study_uid]
    assert len(analysis[0]["cines"]) == len(files)
    assert outputs.studies == [analysis[0]]
    assert sender.sent == [(str(PACS), "sr.dcm"), (str(PACS), "kos.dcm"),
                           (str(ARCHIVE), "sr.dcm"), (str(ARCHIVE), "kos.dcm")]
    assert fhir_server.puts == [(f"/fhir/Bundle/bundle-{study_uid}", bundle(study_uid))]
    assert json.loads((config.fhir_dir / f"{study_uid}.json").read_text()) == bundle(study_uid)
    job = queue.job(study_uid)
    assert (job.attempts, job.worker) == (1, None)
    assert job.sent_to == sorted([str(PACS), str(ARCHIVE), fhir_server.url])
    assert not worker.run_once()


def asking_worker(config: ServiceConfig, models: Models, outputs: Outputs, sender: Sender,
                  name: str) -> Worker:
    """A worker that asks `sender` what it holds before resending, and retries at once."""
    return Worker(config, name=name, models=models, write_objects=outputs, send=sender,
                  ask=sender.held, retry_seconds=0)


def test_a_failed_send_is_retried_with_only_what_was_not_acknowledged(config, models, study):
    study_uid, files = study
    queue = arrived(config, study_uid, files)
    outputs, sender = Outputs(), Sender(refusing=((ARCHIVE, "kos.dcm"),))
    worker = asking_worker(config, models, outputs, sender, "w1")
    assert worker.run_once()
    job = queue.job(study_uid)
    assert (job.state, job.sent_to) == (State.DRAFTED, [str(PACS)])
    assert job.stored[str(ARCHIVE)] == ["sr.dcm"]
    assert "OSError at" in job.error  # not the message: it could quote a header value
    assert "refused" not in job.error
    restarted = asking_worker(config, models, outputs, sender, "w2")
    assert restarted.run_once()
    assert queue.job(study_uid).state == State.SENT
    assert sender.sent == [(str(PACS), "sr.dcm"), (str(PACS), "kos.dcm"),
                           (str(ARCHIVE), "sr.dcm"), (str(ARCHIVE), "kos.dcm")]
    assert len(outputs.studies) == 1  # sending again needs no new analysis


def test_a_file_acknowledged_but_not_marked_is_not_sent_again(config, models, study):
    study_uid, files = study
    queue = arrived(config, study_uid, files)
    outputs, sender = Outputs(), Sender(dying=((ARCHIVE, "kos.dcm"),))
    worker = asking_worker(config, models, outputs, sender, "w1")
    assert worker.run_once()
    assert queue.job(study_uid).stored[str(ARCHIVE)] == ["sr.dcm"]  # kos.dcm arrived unmarked
    assert worker.run_once()
    job = queue.job(study_uid)
    assert (job.state, job.stored[str(ARCHIVE)]) == (State.SENT, ["kos.dcm", "sr.dcm"])
    assert sorted(sender.sent) == sorted(set(sender.sent))
    assert len(sender.sent) == 4


def test_a_study_held_by_a_killed_worker_is_analysed_again_when_it_restarts(config, models,
                                                                             study):
    study_uid, files = study
    queue = arrived(config, study_uid, files)
    queue.claim("w1")  # and then the worker process was killed
    sender = Sender()
    worker = Worker(config, name="w1", models=models, write_objects=Outputs(), send=sender)
    stop = threading.Event()
    stop.set()  # run() only recovers, then stops at once
    worker.run(stop)
    assert queue.job(study_uid).state == State.RECEIVED
    assert worker.run_once()
    job = queue.job(study_uid)
    assert (job.state, job.attempts) == (State.SENT, 2)
    assert len(sender.sent) == 4


def test_a_study_of_unreadable_files_ends_failed_after_max_attempts(config, models, tmp_path):
    broken = []
    for number in range(3):
        broken.append(tmp_path / f"broken{number}.dcm")
        broken[-1].write_bytes(b"DICM" + bytes(range(256)) * 4)
    queue = arrived(config, "1.2.3.4", broken)
    sender = Sender()
    worker = Worker(config, name="w1", models=models, write_objects=Outputs(), send=sender,
                    retry_seconds=0)
    assert worker.run_once() and worker.run_once()
    assert not worker.run_once()
    job = queue.job("1.2.3.4")
    assert (job.state, job.attempts) == (State.FAILED, 2)
    assert "none of the study's 3 instances could be read" in job.error
    assert sender.sent == []


def _wait_for(condition, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_study_that_starts_over_during_its_analysis_leaves_the_results_folder_alone(
        config, models, study):
    """A new instance arriving mid-analysis restarts the study: the stale attempt neither
    sends nor replaces the results folder the next attempt owns."""
    study_uid, files = study
    queue = arrived(config, study_uid, files)
    results = config.results_dir / study_uid
    results.mkdir(parents=True)
    (results / "next-attempt.txt").write_text("owned by the attempt after the new instance")
    outputs, sender = Outputs(), Sender()

    def new_instance_then_write(study: dict, *args: Any, **kwargs: Any) -> Objects:
        queue.record_instance(study_uid, config.incoming_dir / study_uid / files[0].name)
        return outputs(study, *args, **kwargs)

    worker = Worker(config, name="w1", models=models, write_objects=new_instance_then_write,
                    send=sender)
    assert worker.run_once()
    assert queue.job(study_uid).state == State.RECEIVING
    assert sender.sent == []
    assert [path.name for path in results.iterdir()] == ["next-attempt.txt"]
    assert [path.name for path in config.results_dir.iterdir()] == [study_uid]
