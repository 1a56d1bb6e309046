"""The study's key frames as a DICOM Key Object Selection document (PS3.3 A.35.4, TID 2010).

A PACS viewer without an SR viewer still shows a Key Object Selection: it opens the flagged
cines at the flagged frames. The document title is (113000, DCM, "Of Interest") (CID 7010);
each cine with key frames is one IMAGE reference listing its key frames' numbers (1-based).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import highdicom as hd
from pydicom.sr.codedict import codes

from angioscribe import __version__
from angioscribe.errors import InputError
from angioscribe.outputs import codes as c
from angioscribe.outputs.sources import (
    MANUFACTURER,
    SERIES_NUMBERS,
    StudySources,
    key_frames,
    object_uid,
)

DESCRIPTION = "Key frames chosen by angioscribe's key-frame classifier (draft, unverified)"


def key_frame_numbers(study: Mapping[str, Any], sources: StudySources) -> dict[str, list[int]]:
    """SOP Instance UID -> its key frames' DICOM frame numbers, in the study's order."""
    frames: dict[str, list[int]] = {}
    for path, frame in key_frames(study):
        reference = sources.frame(path, frame)
        if reference is not None:
            frames.setdefault(reference.sop_instance_uid, []).append(reference.frame_number)
    return frames


def write_kos(study: Mapping[str, Any], sources: StudySources, path: Path) -> Path:
    """Write the Key Object Selection of the study's key frames to `path`.

    Raises InputError when the study has no key frame in its DICOM sources: a selection
    must reference at least one object.
    """
    frames = key_frame_numbers(study, sources)
    if not frames:
        raise InputError(study.get("key", "study"), "no key frame in the study's DICOM "
                         "sources; a key object selection needs at least one")
    headers = {str(header.SOPInstanceUID): header for header in sources.headers.values()}
    selection = hd.ko.KeyObjectSelection(
        document_title=c.OF_INTEREST,
        referenced_objects=[headers[uid] for uid in frames],
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device,
            observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
                uid=object_uid(MANUFACTURER, "device"), name=MANUFACTURER)),
        description=DESCRIPTION,
    )
    _add_frame_numbers(selection, frames)
    document = hd.ko.KeyObjectSelectionDocument(
        evidence=list(sources.headers.values()),
        content=selection,
        series_instance_uid=sources.uid("kos-series"),
        series_number=SERIES_NUMBERS["kos"],
        sop_instance_uid=sources.uid("kos"),
        instance_number=1,
        manufacturer=MANUFACTURER,
    )
    document.SeriesDescription = "angioscribe key frames"
    document.SoftwareVersions = __version__
    document.save_as(path, enforce_file_format=True)
    return path


def _add_frame_numbers(selection: hd.ko.KeyObjectSelection,
                       frames: Mapping[str, list[int]]) -> None:
    """Put each reference's frame numbers on its IMAGE item (highdicom references whole
    instances; TID 2010 allows frames, PS3.3 C.18.4 Referenced Frame Number)."""
    for item in selection[0].ContentSequence:
        if item.ValueType == "IMAGE":
            reference = item.ReferencedSOPSequence[0]
            reference.ReferencedFrameNumber = frames[str(reference.ReferencedSOPInstanceUID)]
