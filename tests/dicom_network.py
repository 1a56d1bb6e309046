"""Both DICOM network ends of the service tests: a C-STORE sender for files (the cath lab or a
PACS pushing a study to the service) and a Storage SCP that records every instance the service
sends back (the destination PACS), so a test can count what arrived and how often, and that
answers C-FIND queries about what it holds, as a PACS does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, StoragePresentationContexts, _config, evt
from pynetdicom.association import Association
from pynetdicom.dsutils import split_dataset
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind
from pynetdicom.transport import ThreadedAssociationServer

# Files go out as stored (pynetdicom reads only their file meta): a damaged file reaches the
# receiver damaged, which is what the network fuzz test needs.
_config.STORE_SEND_CHUNKED_DATASET = True
MAX_CONTEXTS = 100  # per association; the standard allows 128
# How long the sender waits for a status: twice pynetdicom's 30 s default, because on a shared
# machine a receiver's fsync can wait many seconds behind other processes' writes; a slow
# status is an answer, an association that ends without one is not.
STATUS_TIMEOUT_S = 60.0

# Why a file got no DIMSE status (StoreResult.problem)
NOT_SENDABLE = "not sendable"  # too broken for the sender to frame (no readable file meta)
CONTEXT_REFUSED = "context refused"  # the receiver accepted no presentation context for it
NO_ANSWER = "no answer"  # the association was refused or aborted before a status came


@dataclass(frozen=True)
class StoreResult:
    """What the receiver answered for one file: its DIMSE status, or why there was none
    (`problem`, one of the constants above, and `detail`), and how long the send took."""

    path: Path
    sop_instance_uid: str
    status: int | None
    problem: str = ""
    detail: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class _Outgoing:
    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str

    @property
    def context(self) -> tuple[str, str]:
        return self.sop_class_uid, self.transfer_syntax


def store_files(files: list[Path], port: int, called_ae: str, calling_ae: str = "CATHLAB",
                host: str = "127.0.0.1") -> list[StoreResult]:
    """C-STORE each file in order (one association per up to MAX_CONTEXTS kinds of file, a new
    one when the receiver aborts); returns one result per file, in order."""
    results: dict[Path, StoreResult] = {}
    outgoing = []
    for path in files:
        try:
            meta, _ = split_dataset(path)
            outgoing.append(_Outgoing(path, str(meta.MediaStorageSOPClassUID),
                                      str(meta.MediaStorageSOPInstanceUID),
                                      str(meta.TransferSyntaxUID)))
        except Exception as error:  # a file too broken to frame: the sender's problem
            results[path] = StoreResult(path, "", None, NOT_SENDABLE, str(error))
    for batch in _batches(outgoing):
        for item, result in zip(batch, _store_batch(batch, host, port, called_ae, calling_ae),
                                strict=True):
            results[item.path] = result
    return [results[path] for path in files]


def _batches(outgoing: list[_Outgoing]) -> list[list[_Outgoing]]:
    batches: list[list[_Outgoing]] = [[]]
    contexts: set[tuple[str, str]] = set()
    for item in outgoing:
        if item.context not in contexts and len(contexts) == MAX_CONTEXTS:
            batches.append([])
            contexts = set()
        contexts.add(item.context)
        batches[-1].append(item)
    return [batch for batch in batches if batch]


def _store_batch(batch: list[_Outgoing], host: str, port: int, called_ae: str,
                 calling_ae: str) -> list[StoreResult]:
    ae = AE(calling_ae)
    ae.dimse_timeout = STATUS_TIMEOUT_S
    for sop_class, syntax in dict.fromkeys(item.context for item in batch):
        if UID(sop_class).is_valid and UID(syntax).is_valid:
            ae.add_requested_context(sop_class, syntax)
    results = []
    association: Association | None = None
    try:
        for item in batch:
            if association is None or not association.is_established:
                association = ae.associate(host, port, ae_title=called_ae)
            results.append(_store_one(association, item))
    finally:
        if association is not None and association.is_established:
            association.release()
    return results


def _store_one(association: Association, item: _Outgoing) -> StoreResult:
    started = time.monotonic()
    result = _send(association, item)
    return replace(result, seconds=round(time.monotonic() - started, 3))


def _send(association: Association, item: _Outgoing) -> StoreResult:
    if not association.is_established:
        return StoreResult(item.path, item.sop_instance_uid, None, NO_ANSWER,
                           "association refused or aborted")
    try:
        status = association.send_c_store(item.path)
    except ValueError as error:  # pynetdicom: no presentation context accepted for the file
        return StoreResult(item.path, item.sop_instance_uid, None, CONTEXT_REFUSED, str(error))
    except AttributeError as error:  # pynetdicom: file meta without the UIDs it needs
        return StoreResult(item.path, item.sop_instance_uid, None, NOT_SENDABLE, str(error))
    if "Status" not in status:
        return StoreResult(item.path, item.sop_instance_uid, None, NO_ANSWER,
                           "the association ended before the status")
    return StoreResult(item.path, item.sop_instance_uid, int(status.Status))


@dataclass(frozen=True)
class Received:
    """One instance a recording destination received, and when (`time.monotonic()`, taken
    just before the destination acknowledges it)."""

    study_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    modality: str
    calling_ae: str
    at: float
    series_uid: str = ""
    content_date: str = ""
    content_time: str = ""


@dataclass
class RecordingDestination:
    """A Storage SCP on loopback that accepts every storage SOP class in every transfer syntax
    and records each instance in arrival order (a resend is recorded again: that is the point).
    With `folder`, the received files are kept there as <SOPInstanceUID>.dcm. With
    `answers_find`, it answers Study Root C-FIND queries at IMAGE level from what it recorded
    (study, series and SOP Instance UIDs matched, content date and time returned).
    `on_received` is called with each instance once it is recorded and before its status goes
    back (a test kills the sender there)."""

    ae_title: str = "DESTINATION"
    folder: Path | None = None
    answers_find: bool = True
    on_received: Callable[[Received], None] | None = None
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadedAssociationServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the destination first"
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        """As `angioscribe serve --destination` takes it."""
        return f"{self.ae_title}@127.0.0.1:{self.port}"

    def start(self) -> RecordingDestination:
        ae = AE(self.ae_title)
        for context in StoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        handlers = [(evt.EVT_C_STORE, self._on_store)]
        if self.answers_find:
            ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
            handlers.append((evt.EVT_C_FIND, self._on_find))
        self._server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def _on_store(self, event: evt.Event) -> int:
        dataset = event.dataset
        dataset.file_meta = event.file_meta
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            dataset.save_as(self.folder / f"{dataset.SOPInstanceUID}.dcm", enforce_file_format=True)
        item = Received(
            str(dataset.StudyInstanceUID), str(dataset.SOPInstanceUID),
            str(dataset.SOPClassUID), str(dataset.get("Modality", "")),
            event.assoc.requestor.ae_title, time.monotonic(),
            str(dataset.get("SeriesInstanceUID", "")), str(dataset.get("ContentDate", "")),
            str(dataset.get("ContentTime", "")))
        with self._lock:
            self.received.append(item)
        if self.on_received is not None:
            self.on_received(item)
        return 0x0000

    def _on_find(self, event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        query = event.identifier
        if query.get("QueryRetrieveLevel") != "IMAGE":
            yield 0xA900, None  # identifier does not match SOP class: only IMAGE is answered
            return
        wanted = {"study_uid": "StudyInstanceUID", "series_uid": "SeriesInstanceUID",
                  "sop_instance_uid": "SOPInstanceUID"}
        held = {item.sop_instance_uid: item for item in self.snapshot()}  # a resend replaces
        for item in held.values():
            if all(not query.get(keyword) or str(query.get(keyword)) == getattr(item, name)
                   for name, keyword in wanted.items()):
                yield 0xFF00, _identifier(item)


def _identifier(item: Received) -> Dataset:
    """A C-FIND answer for one instance the destination holds."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "IMAGE"
    identifier.StudyInstanceUID = item.study_uid
    identifier.SeriesInstanceUID = item.series_uid
    identifier.SOPInstanceUID = item.sop_instance_uid
    identifier.ContentDate = item.content_date
    identifier.ContentTime = item.content_time
    return identifier
