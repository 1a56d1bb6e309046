"""Sending result objects to a DICOM node: one association, one C-STORE per file.

Files are sent as they are on disk, in their own transfer syntax, never decoded and
re-encoded. Any failure (no connection, a rejected
association or context, a failure status, no answer) raises `SendError`, so the caller can
keep the study queued and retry: the objects' SOP Instance UIDs are fixed per study, so a
resend replaces rather than duplicates them in the PACS. A warning status (0xB000, 0xB006,
0xB007) means the destination stored the object, so it counts as sent, and is logged.

`instances_held` asks a destination (C-FIND, Study Root, IMAGE level) which of the files it
holds already, so that sending again after a crash can leave out what arrived before it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pynetdicom import AE, build_context
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from angioscribe.errors import AngioscribeError
from angioscribe.service.config import Destination, TLSConfig

log = logging.getLogger(__name__)

# Seconds to wait for the connection, the association answer and each C-STORE response.
TIMEOUT_SECONDS = 30.0


class SendError(AngioscribeError):
    """Results could not be C-STOREd to a destination; says which, and what went wrong."""

    def __init__(self, destination: Destination, problem: str) -> None:
        self.destination = destination
        self.problem = problem
        super().__init__(f"sending to {destination}: {problem}")


def send_files(destination: Destination, files: Sequence[Path], calling_ae: str,
               tls: TLSConfig | None = None) -> None:
    """C-STORE each of `files` to `destination` as `calling_ae` over one association
    (TLS with `tls`); returns when every file is acknowledged, raises SendError otherwise."""
    if not files:
        return
    assoc = _associate(destination, _contexts(destination, files), calling_ae, tls)
    try:
        for path in files:
            _store(assoc, destination, path)
    finally:
        _close(assoc)


def _associate(destination: Destination, contexts: list[PresentationContext],
               calling_ae: str, tls: TLSConfig | None) -> Association:
    """An established association with `destination` (TLS with `tls`), or SendError."""
    ae = AE(ae_title=calling_ae)
    ae.connection_timeout = ae.acse_timeout = ae.dimse_timeout = TIMEOUT_SECONDS
    ae.network_timeout = TIMEOUT_SECONDS
    tls_args = (tls.client_context(), destination.host) if tls is not None else None
    try:
        assoc = ae.associate(destination.host, destination.port, contexts=contexts,
                             ae_title=destination.ae_title, tls_args=tls_args)
    except OSError as error:
        raise SendError(destination, f"cannot connect: {error}") from error
    if not assoc.is_established:
        raise SendError(destination, "association rejected, aborted or never connected")
    return assoc


def instances_held(destination: Destination, files: Sequence[Path], calling_ae: str,
                   tls: TLSConfig | None = None) -> set[Path] | None:
    """Which of `files` `destination` holds already, by a C-FIND per file on the Study Root
    model at IMAGE level (StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID); None when it
    cannot be asked (no connection, association or Query/Retrieve context, or a failed
    query), logged: the caller then sends every file, and the destination replaces the
    instances it had under the same SOP Instance UIDs. A match whose ContentDate or
    ContentTime differ from the file's is another version of the object (the study was
    analysed again after new instances arrived) and does not count as held."""
    if not files:
        return set()
    headers = {path: _header(destination, path) for path in files}
    context = build_context(StudyRootQueryRetrieveInformationModelFind)
    try:
        assoc = _associate(destination, [context], calling_ae, tls)
    except SendError as error:
        return _cannot_ask(destination, error.problem)
    try:
        return {path for path, header in headers.items() if _holds(assoc, header)}
    except _CannotAsk as error:
        return _cannot_ask(destination, str(error))
    finally:
        _close(assoc)


class _CannotAsk(Exception):
    """The destination gave no usable answer to a C-FIND."""


def _cannot_ask(destination: Destination, problem: str) -> None:
    log.warning("the destination cannot be asked which results it holds; sending them all",
                extra={"destination": str(destination), "problem": problem})


_VERSION_KEYWORDS = ("ContentDate", "ContentTime")


def _holds(assoc: Association, header: Dataset) -> bool:
    """Whether the destination has the instance of `header`, in the same version."""
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        setattr(query, keyword, header[keyword].value)
    for keyword in _VERSION_KEYWORDS:  # return keys only: compared here, not matched there
        setattr(query, keyword, "")
    try:
        responses = list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
    except (ValueError, RuntimeError) as error:  # no accepted context, association ended
        raise _CannotAsk(str(error)) from error
    matches = []
    for status, identifier in responses:
        code = getattr(status, "Status", None)
        if code not in (0x0000, 0xFF00, 0xFF01):
            raise _CannotAsk("no answer" if code is None else f"C-FIND status 0x{code:04X}")
        if identifier is not None and code != 0x0000:
            matches.append(identifier)
    return any(_same_version(match, header) for match in matches)


def _same_version(match: Dataset, header: Dataset) -> bool:
    """A match is the file's instance unless it names another content date or time (a
    destination that does not return them is taken at its SOP Instance UID)."""
    return str(match.get("SOPInstanceUID", "")) == str(header.SOPInstanceUID) and all(
        not match.get(keyword) or str(match.get(keyword)) == str(header.get(keyword, ""))
        for keyword in _VERSION_KEYWORDS)


def _close(assoc: Association) -> None:
    if assoc.is_established:
        assoc.release()
    else:
        assoc.abort()


def _store(assoc: Association, destination: Destination, path: Path) -> None:
    """One C-STORE; the status checked."""
    try:
        status = assoc.send_c_store(path)
    except (ValueError, AttributeError, OSError) as error:  # no accepted context, bad file
        raise SendError(destination, f"cannot send {path.name}: {error}") from error
    code = getattr(status, "Status", None)
    if code is None:
        raise SendError(destination, f"no response to the C-STORE of {path.name} "
                                      "(timed out or aborted)")
    if code in _WARNINGS:
        log.warning("result stored with a warning status", extra={
            "destination": str(destination), "file": path.name, "status": f"0x{code:04X}"})
    elif code != 0x0000:
        raise SendError(destination, f"C-STORE of {path.name} failed with status 0x{code:04X}")


_WARNINGS = frozenset({0xB000, 0xB006, 0xB007})


def _contexts(destination: Destination, files: Sequence[Path]) -> list[PresentationContext]:
    """One presentation context per (SOP class, transfer syntax) among `files`: a context
    carries one accepted transfer syntax, and each file goes out in its own."""
    pairs: dict[tuple[str, str], None] = {}
    for path in files:
        header = _header(destination, path)
        pairs[str(header.SOPClassUID), str(header.file_meta.TransferSyntaxUID)] = None
    return [build_context(sop_class, [syntax]) for sop_class, syntax in pairs]


def _header(destination: Destination, path: Path) -> Dataset:
    """The file's header without its pixel data or document; SendError when unreadable."""
    try:
        return dcmread(path, stop_before_pixels=True, specific_tags=[
            "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
            *_VERSION_KEYWORDS])
    except (OSError, InvalidDicomError) as error:
        raise SendError(destination, f"cannot read {path}: {error}") from error
