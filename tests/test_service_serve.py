"""`angioscribe serve` as an operator runs it: settings from a YAML file and flags, a separate
process that answers /health, logs JSON lines without patient identifiers, stops on SIGTERM
with exit code 0, and (with workers) sends a study's SR, KOS and PDF to its destination."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from angioscribe.errors import InputError
from angioscribe.service.config import Destination, ServiceConfig, load_config
from angioscribe.service.health import start_health
from angioscribe.service.queue import Job, JobQueue, State
from angioscribe.service.serve import WorkerPool, health_report
from angioscribe.sim.study import simulate_study
from angioscribe.sim.writers import write_dicom
from dicom_network import RecordingDestination, store_files
from orthanc import free_port
from serve_process import start_serve

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def study_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A two-view simulated study (one left, one right coronary cine)."""
    folder = tmp_path_factory.mktemp("study")
    study = simulate_study(21, n_left=1, n_right=1)
    return [write_dicom(study, view, folder / f"{number}.dcm", rle=True)
            for number, view in enumerate(study.views)]


def test_flags_override_the_file_and_relative_paths_follow_it(tmp_path):
    path = tmp_path / "service.yaml"
    path.write_text("ae_title: CATHAI\nport: 104\ndata_dir: data\naccept_from: [PACS, MODALITY]\n"
                    "destinations: ['PACS@pacs.example.org:104']\nworkers: 1\n")
    config = load_config(path, port=11113, destinations=["ARCHIVE@10.0.0.5:4242"])
    assert (config.ae_title, config.port, config.workers) == ("CATHAI", 11113, 1)
    assert config.accept_from == ("PACS", "MODALITY")
    assert config.destinations == (Destination("ARCHIVE", "10.0.0.5", 4242),)
    assert config.data_dir == tmp_path / "data"
    assert config.queue_url == f"sqlite:///{tmp_path / 'data' / 'queue.db'}"
    assert config.calling_ae_title == "CATHAI"


@pytest.mark.parametrize("text", ["PACS@pacs.example.org:104", "PACS@10.0.0.5:4242",
                                  "PACS@[fd00::5]:104"])
def test_a_destination_reads_back_as_written(text):
    assert str(Destination.parse(text)) == text


def test_an_unknown_key_or_bad_value_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "service.yaml"
    path.write_text("ae_title: CATHAI\nstable_second: 5\n")
    with pytest.raises(InputError, match="unknown key 'stable_second'") as raised:
        load_config(path)
    assert raised.value.source == str(path)
    path.write_text("destinations: ['PACS@pacs:not-a-port']\n")
    with pytest.raises(InputError, match="destinations: .*AET@HOST:PORT"):
        load_config(path)
    with pytest.raises(InputError, match="command line: ae_title"):
        load_config(None, ae_title="A TITLE LONGER THAN SIXTEEN")


def test_tls_flags_override_the_file_and_a_certificate_needs_its_key(tmp_path):
    from typer.testing import CliRunner

    from angioscribe.cli import app
    from angioscribe.cli.serve import _tls_flags

    path = tmp_path / "service.yaml"
    path.write_text("tls: {cert: old.pem, key: old.key}\n")
    config = load_config(path, tls=_tls_flags(Path("new.pem"), Path("new.key"), Path("ca.pem")))
    assert config.tls is not None
    assert (config.tls.cert.name, config.tls.key.name, config.tls.ca.name) == (
        "new.pem", "new.key", "ca.pem")
    assert load_config(path, tls=_tls_flags(None, None, None)).tls.cert == tmp_path / "old.pem"
    result = CliRunner().invoke(app, ["serve", "--data", str(tmp_path / "data"),
                                      "--tls-cert", "new.pem", "--port", "0"])
    assert result.exit_code == 3
    assert "command line: tls" in result.output


def test_the_example_config_is_valid():
    config = load_config(REPO / "deploy" / "service.yaml")
    assert config.accept_from and config.destinations and config.health_port


def health(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as answer:
        return answer.code, json.loads(answer.read())


def test_serve_receives_answers_health_and_stops_on_sigterm(tmp_path, study_files):
    health_port = free_port()
    service = start_serve(tmp_path / "data", [], workers=0, stable_seconds=0.5,
                          extra=("--health-port", str(health_port)))
    try:
        code, report = health(health_port)
        assert (code, report["status"], report["listening"]) == (200, "ok", True)
        results = store_files(study_files, service.port, service.ae_title)
        assert [result.status for result in results] == [0x0000, 0x0000]
        time.sleep(2.0)  # the stable wait and a housekeeping round
        code, report = health(health_port)
        assert report["queue"]["received"] == 1
    finally:
        assert service.stop() == 0
    events = service.log_events()
    assert [event["event"] for event in events][-1] == "stopped"
    header = dcmread(study_files[0], stop_before_pixels=True)
    assert any(event.get("study_uid") == header.StudyInstanceUID for event in events)
    for identifier in (str(header.PatientName), header.PatientID):
        assert identifier not in service.log()


@pytest.mark.slow  # the models load in the worker: tens of seconds on 2 busy cores
def test_serve_sends_sr_kos_and_pdf_to_the_destination(tmp_path, study_files):
    destination = RecordingDestination().start()
    service = start_serve(tmp_path / "data", [destination.address], workers=1,
                          stable_seconds=0.5)
    try:
        store_files(study_files, service.port, service.ae_title)
        deadline = time.monotonic() + 120
        while len(destination.snapshot()) < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        assert service.stop() == 0
        destination.stop()
    received = destination.snapshot()
    study_uid = dcmread(study_files[0], stop_before_pixels=True).StudyInstanceUID
    assert sorted(item.modality for item in received) == ["DOC", "KO", "SR"]
    assert {item.study_uid for item in received} == {study_uid}
    assert {item.calling_ae for item in received} == {service.ae_title}


def test_a_dead_worker_is_replaced_and_workers_end_with_the_service(tmp_path):
    service = start_serve(tmp_path / "data", [], workers=1)
    try:
        first = wait_for_event(service, "worker started")["pid"]
        os.kill(first, signal.SIGKILL)
        wait_for_event(service, "worker died; starting a new one", timeout=30)
        second = wait_for_event(service, "worker started", timeout=30,
                                where=lambda entry: entry["pid"] != first)["pid"]
        assert process_alive(second)
    finally:
        service.kill()  # as kill -9 or a power cut: no shutdown runs
    deadline = time.monotonic() + 30  # it may still be importing when the service dies
    while process_alive(second) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not process_alive(second), "a worker outlived the service it belonged to"


def wait_for_event(service: Any, event: str, timeout: float = 30,
                   where: Callable[[dict[str, Any]], bool] = lambda entry: True
                   ) -> dict[str, Any]:
    """The latest log entry of `event` that `where` accepts; the child processes log on their
    own time, so a test waits for the entry rather than reading the log once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [entry for entry in service.log_events()
                 if entry["event"] == event and where(entry)]
        if found:
            return found[-1]
        time.sleep(0.1)
    raise AssertionError(f"no {event!r} in the log:\n{service.log()[-3000:]}")


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")  # a zombie (exited, not yet reaped) is not alive
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


class _Workers:
    def __init__(self, alive: int) -> None:
        self._alive = alive

    def alive(self) -> int:
        return self._alive


@pytest.mark.parametrize(("listening", "alive", "code"), [
    (True, 2, 200), (True, 1, 503), (False, 2, 503)])
def test_health_is_503_when_the_listener_or_a_worker_is_down(tmp_path, listening, alive, code):
    queue = JobQueue(f"sqlite:///{tmp_path / 'queue.db'}")
    queue.record_instance("1.2.3", tmp_path / "1.dcm")
    server = start_health("127.0.0.1", 0, lambda: health_report(
        listening, queue, _Workers(alive), configured=2, uptime_s=5.0))
    try:
        answer_code, report = health(server.server_address[1])
    finally:
        server.shutdown()
    assert answer_code == code
    assert report["queue"]["receiving"] == 1
    assert report["workers"] == {"alive": alive, "configured": 2}


def test_a_worker_analysing_one_study_past_the_timeout_is_ended(tmp_path):
    """A hung analysis never raises: the housekeeping ends its worker by the clock, and only
    that one (replace_dead then releases the study, counting the attempt)."""
    config = ServiceConfig(data_dir=tmp_path, analysis_timeout_seconds=600)
    pool = WorkerPool(config, JobQueue(str(config.queue_url)))
    context = multiprocessing.get_context("spawn")
    now = datetime.now(UTC)
    jobs = []
    for name, claimed_ago in (("hung", 601), ("busy", 30)):
        pool.processes[name] = context.Process(target=time.sleep, args=(120,), name=name)
        pool.processes[name].start()
        claimed = now - timedelta(seconds=claimed_ago)
        jobs.append(Job(f"1.2.3.{len(jobs)}", State.ANALYSING, 1, 1, None, claimed, claimed,
                        claimed, worker=name))
    try:
        assert pool.end_overdue(jobs, now) == ["hung"]
        assert not pool.processes["hung"].is_alive() and pool.processes["busy"].is_alive()
    finally:
        for process in pool.processes.values():
            process.kill()
            process.join()
