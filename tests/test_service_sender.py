"""Asking a destination which results it holds before sending them again (C-FIND, Study Root,
IMAGE level), against a recording destination on loopback: what it holds is left out, what it
holds in another version is not, and a destination that cannot be asked gets everything; a
worker sending a killed worker's study again leaves out what was acknowledged but not marked;
and Orthanc, configured as deploy/orthanc documents, answers angioscribe's AE title and no
other."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import BasicTextSRStorage, ExplicitVRLittleEndian, generate_uid

from angioscribe.service.config import Destination, ServiceConfig
from angioscribe.service.queue import JobQueue, State
from angioscribe.service.sender import instances_held, send_files
from angioscribe.service.worker import Models, Worker
from dicom_network import RecordingDestination
from orthanc import orthanc_available, running_orthanc

CALLING_AE = "ANGIOSCRIBE"


def result_file(path: Path, study_uid: str, content_time: str = "101500") -> Path:
    """A small SR of `study_uid` in its own series, written as a DICOM file at `path`."""
    dataset = Dataset()
    dataset.SOPClassUID = BasicTextSRStorage
    dataset.SOPInstanceUID = generate_uid()
    dataset.StudyInstanceUID = study_uid
    dataset.SeriesInstanceUID = generate_uid()
    dataset.Modality = "SR"
    dataset.ContentDate = "20261206"
    dataset.ContentTime = content_time
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    study_uid = generate_uid()
    return [result_file(tmp_path / name, study_uid) for name in ("sr.dcm", "kos.dcm")]


@pytest.fixture
def recording() -> Iterator[RecordingDestination]:
    destination = RecordingDestination().start()
    yield destination
    destination.stop()


def as_destination(recording: RecordingDestination) -> Destination:
    return Destination(recording.ae_title, "127.0.0.1", recording.port)


def resend(destination: Destination, files: list[Path]) -> None:
    """What the worker does on an attempt that sends again: ask, then send the rest."""
    held = instances_held(destination, files, CALLING_AE) or set()
    send_files(destination, [path for path in files if path not in held], CALLING_AE)


def times_received(recording: RecordingDestination) -> list[int]:
    counts: dict[str, int] = {}
    for item in recording.snapshot():
        counts[item.sop_instance_uid] = counts.get(item.sop_instance_uid, 0) + 1
    return sorted(counts.values())


def test_a_destination_holding_one_of_two_files_gets_only_the_other(files, recording):
    destination = as_destination(recording)
    send_files(destination, files[:1], CALLING_AE)  # acknowledged, then the worker died
    assert instances_held(destination, files, CALLING_AE) == {files[0]}
    resend(destination, files)
    assert times_received(recording) == [1, 1]
    assert instances_held(destination, files, CALLING_AE) == set(files)


def test_another_version_of_a_held_instance_is_not_held(files, recording, tmp_path):
    destination = as_destination(recording)
    send_files(destination, files[:1], CALLING_AE)
    newer = tmp_path / "sr-newer.dcm"
    newer.write_bytes(files[0].read_bytes().replace(b"101500", b"101501"))
    assert instances_held(destination, [newer], CALLING_AE) == set()


def test_a_destination_without_c_find_cannot_be_asked_and_gets_both(files, caplog):
    recording = RecordingDestination(answers_find=False).start()
    try:
        destination = as_destination(recording)
        send_files(destination, files[:1], CALLING_AE)
        with caplog.at_level(logging.WARNING, logger="angioscribe.service.sender"):
            assert instances_held(destination, files, CALLING_AE) is None
        assert "cannot be asked" in caplog.text
        resend(destination, files)
        assert times_received(recording) == [1, 2]  # the held one again, same SOP Instance UID
    finally:
        recording.stop()



def test_a_result_acknowledged_before_a_kill_is_not_sent_again(files, recording, tmp_path):
    destination = as_destination(recording)
    config = ServiceConfig(ae_title=CALLING_AE, data_dir=tmp_path / "data",
                           destinations=[destination])
    queue = JobQueue(config.queue_url)
    study_uid = str(dcmread(files[0]).StudyInstanceUID)
    queue.record_instance(study_uid, files[0])
    queue.complete(study_uid)
    queue.claim("killed")
    queue.drafted(study_uid, files, [str(destination)])
    send_files(destination, files[:1], CALLING_AE)  # acknowledged, then the worker was killed
    queue.recover()
    nothing_to_analyse = Models(classifier=None, segmenters=None, drafters={})
    assert Worker(config, name="restarted", models=nothing_to_analyse).run_once()
    job = queue.job(study_uid)
    assert (job.state, job.stored[str(destination)]) == (State.SENT, ["kos.dcm", "sr.dcm"])
    assert times_received(recording) == [1, 1]

@pytest.mark.skipif(not orthanc_available(),
                    reason="Orthanc is not installed (Debian package orthanc)")
def test_orthanc_tells_angioscribe_and_no_stranger_what_it_holds(files, tmp_path):
    with running_orthanc(tmp_path / "orthanc", CALLING_AE, angioscribe_port=11112) as orthanc:
        destination = Destination(orthanc.ae_title, "127.0.0.1", orthanc.dicom_port)
        send_files(destination, files[:1], CALLING_AE)
        assert instances_held(destination, files, CALLING_AE) == {files[0]}
        assert instances_held(destination, files, "STRANGER") is None
