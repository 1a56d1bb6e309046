"""Sending result objects to a DICOM node: one association, one C-STORE per file.

Files are sent as they are on disk, in their own transfer syntax, never decoded and
re-encoded. Any failure (no connection, a rejected
association or context, a failure status, no answer) raises `SendError`, so the caller can
keep the study queued and retry: the objects' SOP Instance UIDs are fixed per study, so a
resend replaces rather than duplicates them in the PACS. A warning status (0xB000, 0xB006,
0xB007) means the destination stored the object, so it counts as sent, and is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from pynetdicom import AE, build_context
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext

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
    contexts = _contexts(destination, files)
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
    try:
        for path in files:
            _store(assoc, destination, path)
    finally:
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
        try:
            header = dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
        except (OSError, InvalidDicomError) as error:
            raise SendError(destination, f"cannot read {path}: {error}") from error
        pairs[str(header.SOPClassUID), str(header.file_meta.TransferSyntaxUID)] = None
    return [build_context(sop_class, [syntax]) for sop_class, syntax in pairs]
