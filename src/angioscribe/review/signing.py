"""A signed report back to the PACS: a new SR that supersedes the preliminary draft.

When the studies are the service's, signing writes the signed text as a Comprehensive SR
(the outputs package's builder, `outputs.sr.write_sr` with a `Verification`): Completion
COMPLETE, Verification VERIFIED with the signer as Verifying Observer, its Predecessor Documents
Sequence naming the preliminary SR the service sent (`objects/sr.dcm`). It is C-STOREd to each
of the service's destinations with the service's AE title and TLS settings. Its SOP Instance
UID is derived from the study and the version signed, so a resend replaces it in the PACS.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from angioscribe.errors import InputError

PRELIMINARY_SR = Path("objects") / "sr.dcm"


def signed_study(study: Mapping[str, Any], texts: Mapping[str, str],
                 signer: str) -> dict[str, Any]:
    """The study's analysis with the signed texts as its drafts; a draft the signer changed
    names them beside the drafter that wrote it."""
    drafts = {}
    for lang, text in texts.items():
        draft = dict((study.get("drafts") or {}).get(lang) or {})
        model = str(draft.get("model") or "angioscribe")
        edited = text != draft.get("text")
        drafts[lang] = {**draft, "text": text,
                        "model": f"{model}, edited by {signer}" if edited else model}
    return {**study, "drafts": drafts}


def write_signed_sr(study: Mapping[str, Any], analysis_dir: Path, texts: Mapping[str, str],
                    signer: str, organization: str, version: int) -> Path:
    """Write `objects/sr-signed-v<version>.dcm` beside the preliminary SR and return it.

    Raises InputError when the preliminary SR is missing or unreadable: a signed report must
    name the draft it replaces.
    """
    import pydicom

    from angioscribe.outputs.sources import read_sources
    from angioscribe.outputs.sr import Verification, write_sr

    preliminary = analysis_dir / PRELIMINARY_SR
    try:
        predecessor = pydicom.dcmread(preliminary)
    except (OSError, pydicom.errors.InvalidDicomError) as error:
        raise InputError(preliminary, f"cannot read the preliminary SR: {error}") from None
    path = preliminary.with_name(f"sr-signed-v{version}.dcm")
    # A user name is one name component; the trailing caret says so in a DICOM person name.
    verification = Verification(f"{signer}^", organization, version, predecessor)
    return write_sr(signed_study(study, texts, signer), read_sources(study), path,
                    list(texts), verification)


def send_signed(path: Path, service: Any,
                send: Callable[..., None] | None = None) -> Sequence[str]:
    """C-STORE the signed SR to each DICOM destination of the service config; returns them.
    Raises the sender's SendError on a failure (the signature stays recorded)."""
    if send is None:
        from angioscribe.service.sender import send_files as send
    for destination in service.destinations:
        send(destination, [path], service.calling_ae_title, service.tls)
    return [str(d) for d in service.destinations]
