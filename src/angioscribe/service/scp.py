"""The DICOM Storage SCP: receives a cath lab's instances, keeps the XA ones, queues studies.

Handlers are plain functions bound to pynetdicom events. An XA instance is acknowledged
(0x0000) only once it is on disk and in the queue: written to a hidden temporary file beside
its final name, flushed and fsynced, renamed over
`incoming/<StudyInstanceUID>/<SOPInstanceUID>.dcm`, and the folder fsynced, so a crash or a
power cut leaves either the whole file or none, and a sender that got 0x0000 never has to send
again. When that fails the sender gets a failure status and keeps the instance: 0xA700 (out of
resources) when the disk or the queue cannot take it, 0xC210 (cannot understand) when the
dataset has no usable Study/SOP Instance UID or cannot be parsed. A handler never raises.
An instance already stored with the same content is acknowledged and nothing else: a PACS
routing the study again (say, when the results arrive in it) does not start an analysed study
over; a changed or new instance does.

What a cath lab sends alongside the cines (dose reports, secondary captures, presentation
states, other modalities) is accepted with 0x0000 and dropped, so a PACS routing a whole study
does not see failures for the parts angioscribe has no use for.

Callers: with `accept_from` configured only those calling AE titles may associate; with none,
only callers on the loopback address (a service reachable from the network must name its
peers).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydicom.uid import UID
from pynetdicom import (
    AE,
    ALL_TRANSFER_SYNTAXES,
    StoragePresentationContexts,
    build_context,
    evt,
)
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import EnhancedXAImageStorage, Verification, XRayAngiographicImageStorage

from angioscribe.io.dicom import READABLE_TRANSFER_SYNTAXES
from angioscribe.service.jsonlog import exception_fields

if TYPE_CHECKING:
    from pynetdicom.events import Event
    from pynetdicom.transport import ThreadedAssociationServer

    from angioscribe.service.config import ServiceConfig

log = logging.getLogger(__name__)

XA_STORAGE = frozenset({XRayAngiographicImageStorage, EnhancedXAImageStorage})


# Senders served at once; one more is rejected as transient (local limit) and retries.
MAX_ASSOCIATIONS = 16

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC210
PROCESSING_FAILURE = 0x0110

# A-ASSOCIATE-RJ: rejected permanent, by the service user, calling AE title not recognised.
_REJECT_CALLING_AE = (0x01, 0x01, 0x03)


class InstanceQueue(Protocol):
    """What the SCP needs from the job queue (`service.queue.JobQueue`)."""

    def record_instance(self, study_uid: str, path: Path) -> None: ...

    def job(self, study_uid: str) -> object | None: ...


def presentation_contexts() -> list[PresentationContext]:
    """XA and Enhanced XA in every transfer syntax the readers decode; the other storage SOP
    classes in any transfer syntax (they are dropped, never decoded); Verification (C-ECHO)."""
    contexts = [build_context(uid, list(READABLE_TRANSFER_SYNTAXES)) for uid in sorted(XA_STORAGE)]
    contexts += [build_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
                 for context in StoragePresentationContexts
                 if context.abstract_syntax not in XA_STORAGE]
    contexts.append(build_context(Verification))
    return contexts


def start_scp(config: ServiceConfig, queue: InstanceQueue) -> ThreadedAssociationServer:
    """Listen on `config.host:config.port` (port 0: any free port; the server's
    `server_address` says which) in background threads, one per association."""
    ae = AE(ae_title=config.ae_title)
    ae.supported_contexts = presentation_contexts()
    ae.maximum_associations = MAX_ASSOCIATIONS
    handlers: list[Any] = [
        (evt.EVT_REQUESTED, handle_requested, [config.accept_from]),
        (evt.EVT_C_STORE, handle_store, [config.incoming_dir, queue]),
    ]
    context: ssl.SSLContext | None = config.tls.server_context() if config.tls else None
    return ae.start_server((config.host, config.port), block=False, ssl_context=context,
                           evt_handlers=handlers)


def caller_refusal(calling_ae: str, address: str, accept_from: tuple[str, ...]) -> str | None:
    """Why a caller may not associate, or None when it may."""
    if accept_from:
        return None if calling_ae in accept_from else "calling AE title not configured"
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = False
    return None if loopback else "not on loopback and no calling AE titles configured"


def handle_requested(event: Event, accept_from: tuple[str, ...]) -> None:
    """EVT_REQUESTED: reject a caller `caller_refusal` refuses, before any negotiation."""
    try:
        calling_ae = str(event.assoc.requestor.primitive.calling_ae_title).strip()
        address = event.assoc.requestor.address
        refusal = caller_refusal(calling_ae, address, accept_from)
        if refusal is not None:
            log.warning("association rejected", extra={
                "calling_ae": calling_ae, "address": address, "reason": refusal})
            event.assoc.acse.send_reject(*_REJECT_CALLING_AE)
    except Exception as error:  # a handler never raises: refuse the caller instead
        log.error("association check failed", extra=exception_fields(error))
        event.assoc.abort()


def handle_store(event: Event, incoming: Path, queue: InstanceQueue) -> int:
    """EVT_C_STORE: store an XA instance and queue its study, drop any other SOP class;
    the status says which, or why not (module docstring)."""
    try:
        sop_class = UID(event.request.AffectedSOPClassUID)
        if sop_class not in XA_STORAGE:
            log.info("instance dropped: not XA", extra={"sop_class": sop_class.name})
            return SUCCESS
        return _store_xa(event, incoming, queue)
    except Exception as error:  # a handler never raises: the sender gets a failure status
        log.error("instance not stored: unexpected error", extra=exception_fields(error))
        return PROCESSING_FAILURE


def _store_xa(event: Event, incoming: Path, queue: InstanceQueue) -> int:
    """An XA instance on disk and its study in the queue, in that order; the status."""
    uids = _instance_uids(event)
    if uids is None:
        return CANNOT_UNDERSTAND
    study_uid, sop_uid = uids
    path = incoming / study_uid / f"{sop_uid}.dcm"
    dataset = event.encoded_dataset(include_meta=False)
    if already_stored(path, dataset) and queue.job(study_uid) is not None:
        log.info("instance already stored: acknowledged, study not started over",
                 extra={"study_uid": study_uid, "sop_uid": sop_uid})
        return SUCCESS
    try:
        write_atomically(event.encoded_dataset(), path)
    except OSError as error:
        log.error("instance not stored: cannot write", extra={
            "study_uid": study_uid, "reason": error.strerror or type(error).__name__})
        return OUT_OF_RESOURCES
    try:
        queue.record_instance(study_uid, path)
    except Exception as error:
        log.error("instance stored but not queued", extra={
            "study_uid": study_uid, **exception_fields(error)})
        return OUT_OF_RESOURCES
    log.info("instance stored", extra={"study_uid": study_uid, "sop_uid": sop_uid})
    return SUCCESS


def _instance_uids(event: Event) -> tuple[str, str] | None:
    """The dataset's (StudyInstanceUID, SOPInstanceUID) when both are valid UIDs (they name
    a folder and a file, so nothing else may pass), else None, logged as not understood."""
    try:
        dataset = event.dataset
        uids = (str(dataset.get("StudyInstanceUID", "")), str(dataset.get("SOPInstanceUID", "")))
    except Exception as error:
        log.warning("instance not understood: unreadable dataset", extra=exception_fields(error))
        return None
    if not all(UID(uid).is_valid for uid in uids):
        log.warning("instance not understood: missing or invalid Study/SOP Instance UID")
        return None
    return uids


def already_stored(path: Path, dataset: bytes) -> bool:
    """True when `path` holds this encoded dataset (after its own file meta, which may name
    another sender): a PACS routing the same study again, or a sender repeating instances after
    a lost acknowledgement. Such a copy is acknowledged without starting a study that was
    analysed and sent over again (`queue.record_instance` would), so a route that forwards a
    study again when the results arrive in it cannot loop."""
    try:
        size = path.stat().st_size
    except OSError:
        return False
    if size < len(dataset):
        return False
    with path.open("rb") as stream:
        stream.seek(size - len(dataset))
        return stream.read() == dataset


def write_atomically(data: bytes, final: Path) -> None:
    """`final` holding `data`, whole or not at all: a hidden temporary file in the same
    folder (so the rename cannot cross file systems, and readers skip it), fsynced, renamed
    over the name, then the folder fsynced so the rename itself survives a power cut."""
    folder = final.parent
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{final.name}.{threading.get_ident()}.tmp"  # one per thread
    try:
        with temporary.open("wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
