"""The service's DICOM ends, over real associations on loopback: the Storage SCP stores XA
instances byte for byte before acknowledging them and queues their study, answers what it
cannot store with the contract's failure statuses, drops other storage classes, refuses
callers it does not know, speaks TLS; the sender C-STOREs results and names what failed."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
from pynetdicom import AE
from pynetdicom.dsutils import split_dataset
from pynetdicom.sop_class import Verification

from angioscribe.errors import AngioscribeError
from angioscribe.service.config import Destination, ServiceConfig, TLSConfig
from angioscribe.service.queue import JobQueue, State
from angioscribe.service.scp import (
    CANNOT_UNDERSTAND,
    OUT_OF_RESOURCES,
    READABLE_TRANSFER_SYNTAXES,
    SUCCESS,
    XA_STORAGE,
    caller_refusal,
    presentation_contexts,
    start_scp,
)
from angioscribe.service.sender import SendError, send_files
from angioscribe.sim.study import simulate_study
from angioscribe.sim.writers import write_dicom
from dicom_network import RecordingDestination, store_files

SCP_AE = "ANGIOSCRIBE"


@pytest.fixture(scope="module")
def study_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A two-view simulated study: one cine uncompressed, one RLE."""
    folder = tmp_path_factory.mktemp("study")
    study = simulate_study(11, n_left=1, n_right=1)
    return [write_dicom(study, view, folder / f"{number}.dcm", rle=number == 1)
            for number, view in enumerate(study.views)]


class Listener:
    """The SCP as `serve` starts it, on a free loopback port, with its queue."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.queue = JobQueue(str(config.queue_url))
        self.server = start_scp(config, self.queue)
        self.port = int(self.server.server_address[1])

    def store(self, files: list[Path], calling_ae: str = "CATHLAB") -> list[int | None]:
        return [result.status for result in store_files(files, self.port, SCP_AE, calling_ae)]


@pytest.fixture
def listen(tmp_path: Path) -> Iterator:
    listeners: list[Listener] = []

    def start(**settings: object) -> Listener:
        listeners.append(Listener(ServiceConfig(port=0, data_dir=tmp_path / "data", **settings)))
        return listeners[-1]

    yield start
    for listener in listeners:
        listener.server.shutdown()


def dataset_bytes(path: Path) -> bytes:
    """The encoded dataset after the file meta: what a C-STORE carries."""
    _, offset = split_dataset(path)
    return path.read_bytes()[offset:]


def test_xa_instances_arrive_byte_equal_and_queue_their_study(listen, study_files, caplog):
    listener = listen()
    with caplog.at_level("INFO", logger="angioscribe"):
        assert listener.store(study_files) == [SUCCESS, SUCCESS]
    header = dcmread(study_files[0], stop_before_pixels=True)
    folder = listener.config.incoming_dir / header.StudyInstanceUID
    for sent in study_files:
        stored = folder / f"{dcmread(sent, stop_before_pixels=True).SOPInstanceUID}.dcm"
        assert dataset_bytes(stored) == dataset_bytes(sent)
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        f"{dcmread(sent, stop_before_pixels=True).SOPInstanceUID}.dcm" for sent in study_files)
    job = listener.queue.job(header.StudyInstanceUID)
    assert (job.state, job.instances) == (State.RECEIVING, 2)
    logged = "\n".join(record.getMessage() + str(record.__dict__) for record in caplog.records)
    assert header.StudyInstanceUID in logged
    for identifier in (str(header.PatientName), header.PatientID):
        assert identifier and identifier not in logged


def test_the_same_instances_again_do_not_start_a_sent_study_over(listen, study_files, tmp_path):
    listener = listen()
    study_uid = str(dcmread(study_files[0], stop_before_pixels=True).StudyInstanceUID)
    assert listener.store(study_files) == [SUCCESS, SUCCESS]
    listener.queue.complete(study_uid)
    listener.queue.claim("test")
    listener.queue.drafted(study_uid, [])  # no destinations: SENT at once
    assert listener.store(study_files) == [SUCCESS, SUCCESS]
    assert listener.queue.job(study_uid).state == State.SENT
    changed = tmp_path / "changed.dcm"
    dataset = dcmread(study_files[0])
    dataset.SeriesDescription = "reprocessed"
    dataset.save_as(changed)
    assert listener.store([changed]) == [SUCCESS]
    assert listener.queue.job(study_uid).state == State.RECEIVING


def test_other_storage_classes_are_acknowledged_and_dropped(listen, tmp_path):
    secondary_capture = tmp_path / "sc.dcm"
    dataset = Dataset()
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.SOPInstanceUID = generate_uid()
    dataset.StudyInstanceUID = generate_uid()
    dataset.Modality = "OT"
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.save_as(secondary_capture, enforce_file_format=True)
    listener = listen()
    assert listener.store([secondary_capture]) == [SUCCESS]
    assert not listener.config.incoming_dir.exists()
    assert listener.queue.jobs() == []


def test_an_instance_without_sop_instance_uid_cannot_be_understood(listen, study_files,
                                                                    tmp_path):
    broken = tmp_path / "no-uid.dcm"
    dataset = dcmread(study_files[0])
    del dataset.SOPInstanceUID  # the file meta still names it, so it can be sent
    dataset.save_as(broken)
    listener = listen()
    assert listener.store([broken]) == [CANNOT_UNDERSTAND]
    assert listener.queue.jobs() == []


def test_an_unwritable_data_folder_answers_out_of_resources(listen, study_files, tmp_path):
    listener = listen()
    listener.config.incoming_dir.write_text("a file where the folder should be")
    assert listener.store(study_files[:1]) == [OUT_OF_RESOURCES]
    assert listener.queue.jobs() == []


def test_only_configured_calling_ae_titles_may_associate(listen, study_files):
    listener = listen(accept_from=("PACS",))
    assert listener.store(study_files[:1], calling_ae="STRANGER") == [None]
    assert listener.queue.jobs() == []
    assert listener.store(study_files[:1], calling_ae="PACS") == [SUCCESS]


def test_c_echo_answers_success(listen):
    listener = listen()
    ae = AE("CATHLAB")
    ae.add_requested_context(Verification)
    association = ae.associate("127.0.0.1", listener.port, ae_title=SCP_AE)
    assert association.is_established
    try:
        assert association.send_c_echo().Status == SUCCESS
    finally:
        association.release()


def test_without_accept_from_only_loopback_callers_are_accepted():
    assert caller_refusal("ANY", "127.0.0.1", ()) is None
    assert caller_refusal("ANY", "::1", ()) is None
    assert caller_refusal("ANY", "10.1.2.3", ()) is not None
    assert caller_refusal("PACS", "10.1.2.3", ("PACS",)) is None
    assert caller_refusal("ANY", "127.0.0.1", ("PACS",)) is not None


def test_xa_is_offered_in_every_transfer_syntax_the_readers_decode():
    for syntax in READABLE_TRANSFER_SYNTAXES:
        assert not syntax.is_compressed or get_decoder(syntax).is_available, syntax.name
    offered = {str(context.abstract_syntax): set(context.transfer_syntax)
               for context in presentation_contexts()}
    for sop_class in XA_STORAGE:
        assert offered[sop_class] == set(READABLE_TRANSFER_SYNTAXES)
    assert SecondaryCaptureImageStorage in offered


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> TLSConfig:
    """A self-signed certificate for 127.0.0.1, used as its own CA (mutual TLS)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
                   check=True, capture_output=True)
    return TLSConfig(folder / "cert.pem", folder / "key.pem", folder / "cert.pem")


def test_tls_associations_store_and_plain_ones_do_not(listen, study_files, certificate):
    listener = listen(tls=certificate)
    destination = Destination(SCP_AE, "127.0.0.1", listener.port)
    send_files(destination, study_files, "CATHLAB", tls=certificate)
    study_uid = dcmread(study_files[0], stop_before_pixels=True).StudyInstanceUID
    assert listener.queue.job(study_uid).instances == 2
    with pytest.raises(SendError):
        send_files(destination, study_files[:1], "CATHLAB")


def test_send_files_delivers_every_file(study_files):
    destination = RecordingDestination().start()
    try:
        send_files(Destination(destination.ae_title, "127.0.0.1", destination.port),
                   study_files, "ANGIOSCRIBE")
    finally:
        destination.stop()
    assert sorted(item.sop_instance_uid for item in destination.snapshot()) == sorted(
        str(dcmread(path, stop_before_pixels=True).SOPInstanceUID) for path in study_files)
    assert {item.calling_ae for item in destination.snapshot()} == {"ANGIOSCRIBE"}


def test_send_files_names_the_destination_that_refused(listen, study_files):
    listener = listen(accept_from=("PACS",))
    destination = Destination(SCP_AE, "127.0.0.1", listener.port)
    with pytest.raises(SendError, match=str(destination).replace(".", r"\.")) as raised:
        send_files(destination, study_files[:1], "STRANGER")
    assert isinstance(raised.value, AngioscribeError)
