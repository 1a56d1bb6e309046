"""The job queue's states and transitions, on SQLite and on a throwaway PostgreSQL server."""

from __future__ import annotations

import json
import multiprocessing
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from typer.testing import CliRunner

from angioscribe.cli import app
from angioscribe.errors import InputError
from angioscribe.service.queue import ERROR_CHARS, JobQueue, State, metadata

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
FILE = Path("instance.dcm")  # where an instance lies; the queue keeps only the count


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server on loopback in a temp folder, for this test session.

    initdb refuses to run as root, so as root the server runs as the `postgres` user (made by
    Debian's package), or as `nobody`."""
    if not (POSTGRES_BIN / "initdb").is_file():
        pytest.skip(f"PostgreSQL not installed ({POSTGRES_BIN} has no initdb)")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="angioscribe-pg-"))
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root and runuser is missing: initdb cannot run as root")
        user = "postgres" if _user_exists("postgres") else "nobody"
        as_user = ["runuser", "-u", user, "--"]
        shutil.chown(folder, user)
    data, port = folder / "data", _free_port()
    subprocess.run([*as_user, POSTGRES_BIN / "initdb", "-D", data, "-U", "postgres",
                    "--auth=trust", "--no-sync"], check=True, capture_output=True)
    subprocess.run([*as_user, POSTGRES_BIN / "pg_ctl", "-D", data, "-l", folder / "log", "-w",
                    "-o", f"-k {folder} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off",
                    "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, POSTGRES_BIN / "pg_ctl", "-D", data, "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty queue's URL on each database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'queue.db'}"
    server = request.getfixturevalue("postgres_url")
    engine = create_engine(server)
    metadata.drop_all(engine)
    engine.dispose()
    return server


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(url: str, clock: Clock) -> Iterator[JobQueue]:
    queue = JobQueue(url, clock=clock)
    yield queue
    queue.close()


def received(queue: JobQueue, *study_uids: str) -> None:
    """Studies that arrived (one instance each) and are complete."""
    for study_uid in study_uids:
        queue.record_instance(study_uid, FILE)
        queue.complete(study_uid)


def test_instances_count_and_a_study_is_received_after_the_stable_wait(queue, clock):
    queue.record_instance("1.1", FILE)
    clock.advance(4)
    queue.record_instance("1.1", FILE)
    queue.record_instance("1.2", FILE)
    clock.advance(9)
    assert queue.promote_stable(10) == []
    clock.advance(2)
    assert queue.promote_stable(10) == ["1.1", "1.2"]
    job = queue.job("1.1")
    assert (job.state, job.instances, job.attempts) == (State.RECEIVED, 2, 0)
    assert job.last_instance_at == clock.now - timedelta(seconds=11)
    assert job.updated_at == clock.now


def test_complete_on_demand_only_from_receiving(queue):
    queue.record_instance("1.1", FILE)
    queue.complete("1.1")
    assert queue.job("1.1").state == State.RECEIVED
    with pytest.raises(InputError, match="received, not receiving"):
        queue.complete("1.1")
    with pytest.raises(InputError, match="no such study"):
        queue.complete("9.9")


def test_a_job_goes_to_sent_once_every_destination_acknowledged_it(queue):
    received(queue, "1.1")
    job = queue.claim("w1")
    assert (job.study_uid, job.state, job.attempts, job.worker) == ("1.1", State.ANALYSING, 1,
                                                                     "w1")
    assert queue.claim("w2") is None
    queue.drafted("1.1", [Path("sr.dcm"), Path("kos.dcm")], ["A@h:1", "B@h:2"])
    queue.stored("1.1", "B@h:2", "sr.dcm")
    queue.stored("1.1", "A@h:1", "kos.dcm")
    queue.stored("1.1", "B@h:2", "kos.dcm")
    queue.sent("1.1", "B@h:2")
    job = queue.job("1.1")
    assert (job.state, job.outputs, job.sent_to) == (State.DRAFTED, ["sr.dcm", "kos.dcm"],
                                                    ["B@h:2"])
    assert job.stored == {"A@h:1": ["kos.dcm"], "B@h:2": ["kos.dcm", "sr.dcm"]}
    queue.sent("1.1", "A@h:1")
    assert queue.job("1.1").state == State.SENT
    assert queue.job("1.1").worker is None


def test_with_no_destination_a_drafted_job_is_done(queue):
    received(queue, "1.1")
    queue.claim("w1")
    queue.drafted("1.1", [Path("sr.dcm")], [])
    assert queue.job("1.1").state == State.SENT


def test_claims_take_the_oldest_received_job_first(queue, clock):
    for study_uid in ("1.3", "1.1", "1.2"):
        received(queue, study_uid)
        clock.advance(1)
    assert [queue.claim("w").study_uid for _ in range(3)] == ["1.3", "1.1", "1.2"]
    assert queue.claim("w") is None


def test_a_failed_analysis_is_tried_again_then_failed_at_max_attempts(queue, clock):
    received(queue, "1.1")
    for attempt in (1, 2):
        assert queue.claim("w").attempts == attempt
        queue.fail("1.1", f"attempt {attempt} broke", max_attempts=3)
        job = queue.job("1.1")
        assert (job.state, job.error, job.worker) == (State.RECEIVED, f"attempt {attempt} broke",
                                                      None)
    queue.claim("w")
    queue.fail("1.1", "x" * (ERROR_CHARS + 500), max_attempts=3)
    job = queue.job("1.1")
    assert (job.state, job.attempts, len(job.error)) == (State.FAILED, 3, ERROR_CHARS)
    assert queue.claim("w") is None


def test_a_retry_delay_keeps_a_failed_job_back_until_it_has_passed(queue, clock):
    received(queue, "1.1")
    queue.claim("w")
    queue.fail("1.1", "broke", max_attempts=3, retry_seconds=30)
    assert queue.claim("w") is None
    clock.advance(31)
    assert queue.claim("w").study_uid == "1.1"


def sent_to_one_of_two(queue: JobQueue, max_attempts: int) -> None:
    """A study analysed and drafted; A acknowledged it, sending to B failed."""
    received(queue, "1.1")
    queue.claim("w1")
    queue.drafted("1.1", [Path("sr.dcm")], ["A@h:1", "B@h:2"])
    queue.sent("1.1", "A@h:1")
    queue.fail("1.1", "B@h:2 refused", max_attempts=max_attempts)


def test_a_failed_send_stays_drafted_and_is_claimed_for_sending_only(queue):
    sent_to_one_of_two(queue, max_attempts=3)
    job = queue.claim("w2")
    assert (job.state, job.attempts, job.sent_to, job.worker) == (State.DRAFTED, 2, ["A@h:1"],
                                                                  "w2")
    assert queue.claim("w1") is None  # held by w2 while it sends


def test_retry_starts_a_failed_study_again_keeping_its_acknowledged_sends(queue):
    sent_to_one_of_two(queue, max_attempts=1)
    assert queue.job("1.1").state == State.FAILED
    queue.retry("1.1")
    job = queue.job("1.1")
    assert (job.state, job.attempts, job.error, job.sent_to) == (State.RECEIVED, 0, None,
                                                                 ["A@h:1"])
    with pytest.raises(InputError, match="received, not failed"):
        queue.retry("1.1")


def test_recover_releases_only_the_named_workers_jobs_counting_the_attempt(queue):
    received(queue, "1.1", "1.2", "1.3")
    queue.claim("w1")
    queue.claim("w2")
    queue.drafted("1.2", [Path("sr.dcm")], ["A@h:1"])
    assert queue.recover(worker="w1") == ["1.1"]
    job = queue.job("1.1")
    assert (job.state, job.attempts, job.worker) == (State.RECEIVED, 1, None)
    assert "worker stopped" in job.error
    assert queue.job("1.2").worker == "w2"
    assert queue.recover() == ["1.2"]
    assert (queue.job("1.2").state, queue.job("1.2").worker) == (State.DRAFTED, None)


def test_a_study_that_kills_its_workers_ends_failed_and_never_blocks_the_others(queue, clock):
    received(queue, "1.1")
    for _ in range(3):  # the worker claims it, dies; the next one starts with recover()
        assert queue.claim("w").study_uid == "1.1"
        queue.recover(worker="w", max_attempts=3)
    clock.advance(1)
    received(queue, "1.2")
    assert queue.job("1.1").state == State.FAILED
    assert queue.claim("w").study_uid == "1.2"


def test_a_new_instance_starts_a_sent_study_over(queue):
    received(queue, "1.1")
    queue.claim("w")
    queue.drafted("1.1", [Path("sr.dcm")], ["A@h:1"])
    queue.stored("1.1", "A@h:1", "sr.dcm")
    queue.sent("1.1", "A@h:1")
    queue.record_instance("1.1", FILE)
    job = queue.job("1.1")
    assert (job.state, job.instances, job.attempts, job.sent_to, job.stored, job.outputs) == (
        State.RECEIVING, 2, 0, [], {}, [])


def test_list_by_state(queue):
    received(queue, "1.1", "1.2")
    queue.record_instance("1.3", FILE)
    queue.claim("w")
    assert [job.study_uid for job in queue.jobs()] == ["1.1", "1.2", "1.3"]
    assert [job.study_uid for job in queue.jobs(State.RECEIVED)] == ["1.2"]
    assert queue.counts() == {**dict.fromkeys(State, 0), State.RECEIVING: 1, State.RECEIVED: 1,
                              State.ANALYSING: 1}
    assert queue.job("9.9") is None


def _claim_all(url: str, worker: str, results: multiprocessing.Queue) -> None:
    """A worker process: claim until nothing is left, report what it got."""
    queue = JobQueue(url)
    claimed = []
    while (job := queue.claim(worker)) is not None:
        claimed.append(job.study_uid)
    queue.close()
    results.put(claimed)


def _record_many(url: str, study_uid: str, count: int) -> None:
    queue = JobQueue(url)
    for _ in range(count):
        queue.record_instance(study_uid, FILE)
    queue.close()


def _in_processes(target, *args_per_process) -> None:
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=target, args=args) for args in args_per_process]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0


def test_two_processes_never_claim_the_same_job(queue, url):
    uids = [f"1.{n}" for n in range(40)]
    received(queue, *uids)
    results = multiprocessing.get_context("fork").Queue()
    _in_processes(_claim_all, (url, "w1", results), (url, "w2", results))
    first, second = results.get(timeout=5), results.get(timeout=5)
    assert sorted(first + second) == sorted(uids)
    assert not set(first) & set(second)


def test_instances_recorded_from_two_processes_are_all_counted(queue, url):
    _in_processes(_record_many, (url, "1.1", 25), (url, "1.1", 25))
    assert queue.job("1.1").instances == 50


def test_a_study_started_over_while_analysed_ignores_that_attempts_end(queue):
    received(queue, "1.1")
    queue.claim("w")
    queue.record_instance("1.1", FILE)
    queue.fail("1.1", "broke", max_attempts=1)
    with pytest.raises(InputError, match="receiving, not analysing"):
        queue.drafted("1.1", [Path("sr.dcm")], ["A@h:1"])
    job = queue.job("1.1")
    assert (job.state, job.attempts, job.error) == (State.RECEIVING, 0, None)


def test_queue_command_lists_retries_and_completes(tmp_path: Path):
    queue = JobQueue(f"sqlite:///{tmp_path / 'queue.db'}")
    received(queue, "1.1")
    queue.claim("w")
    queue.fail("1.1", "InputError: broke", max_attempts=1)
    queue.record_instance("1.2", FILE)
    runner, data = CliRunner(), ["--data", str(tmp_path)]

    listed = runner.invoke(app, ["queue", "list", "--json", *data])
    assert listed.exit_code == 0
    records = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["study_uid"], r["state"], r["error"]) for r in records] == [
        ("1.1", "failed", "InputError: broke"), ("1.2", "receiving", None)]
    failed = runner.invoke(app, ["queue", "list", "--state", "failed", *data])
    assert "1.1" in failed.stdout and "1.2" not in failed.stdout

    retried = runner.invoke(app, ["queue", "retry", "1.1", "1.2", "--json", *data])
    assert retried.exit_code == 1  # 1.2 is not failed
    assert [json.loads(line) for line in retried.stdout.splitlines()] == [
        {"study_uid": "1.1", "state": "received"},
        {"path": "1.2", "error": "the study is receiving, not failed"}]
    assert runner.invoke(app, ["queue", "complete", "1.2", *data]).exit_code == 0
    assert queue.job("1.2").state == State.RECEIVED


def test_queue_command_refuses_a_data_folder_without_a_queue(tmp_path: Path):
    result = CliRunner().invoke(app, ["queue", "list", "--data", str(tmp_path)])
    assert result.exit_code == 3
    assert "no queue there" in result.stderr
    assert not (tmp_path / "queue.db").exists()


def test_a_queue_table_of_another_version_is_refused_by_name(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE angioscribe_jobs (study_uid VARCHAR PRIMARY KEY)")
    engine.dispose()
    with pytest.raises(InputError, match="lacks the columns state, instances"):
        JobQueue(url)
