"""A study's source DICOM headers, and the identifiers of the objects written into its study.

The SR, the key object selection and the encapsulated PDF go into the study they describe, so
a PACS files them beside its cines: they copy the patient and study modules from the source
headers and reference the cines by their SOP Class and Instance UIDs. Their own UIDs are
derived from the study, angioscribe's version and the object's kind, so writing them again
(a resend after a crash) gives the same instances: a PACS replaces them, never duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from angioscribe import __version__
from angioscribe.errors import InputError

MANUFACTURER = "angioscribe"

# Series numbers of the objects angioscribe adds to a study, high enough to sort after the
# acquisition series a modality numbers from 1.
SERIES_NUMBERS = {"sr": 9901, "kos": 9902, "pdf": 9903, "sr-verified": 9904}

PATIENT_STUDY_ATTRIBUTES = (
    "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
    "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
    "AccessionNumber", "StudyDescription",
)
"""The Patient and General Study module attributes copied from the source header (PS3.3
C.7.1.1, C.7.2.1)."""


@dataclass(frozen=True)
class FrameReference:
    """One frame of a source cine: its header and the frame's DICOM number (1-based)."""

    header: Dataset
    frame_number: int

    @property
    def sop_class_uid(self) -> str:
        return str(self.header.SOPClassUID)

    @property
    def sop_instance_uid(self) -> str:
        return str(self.header.SOPInstanceUID)


@dataclass(frozen=True)
class StudySources:
    """The readable DICOM source headers of one analysed study, by source path."""

    study_uid: str
    headers: dict[str, Dataset]

    @property
    def first(self) -> Dataset:
        """The header the patient and study modules are copied from."""
        return next(iter(self.headers.values()))

    def frame(self, path: str, frame: int) -> FrameReference | None:
        """The reference to frame `frame` (0-based, as analysis.json counts) of the cine at
        `path`, or None when that cine is not one of the study's DICOM sources."""
        header = self.headers.get(str(path))
        return None if header is None else FrameReference(header, int(frame) + 1)

    def uid(self, kind: str) -> str:
        """The deterministic UID of `kind` ("sr", "sr-series", ...) in this study."""
        return object_uid(self.study_uid, kind)


def object_uid(study_uid: str, kind: str) -> str:
    """A UID derived from the study, angioscribe's version and the object kind: the same
    inputs always give the same UID (pydicom's root and a hash of the inputs)."""
    return str(generate_uid(entropy_srcs=[study_uid, __version__, kind]))


def read_sources(study: Mapping[str, Any]) -> StudySources:
    """The headers (no pixels) of a study's DICOM cines that belong to one study.

    Cines read from video or image files, and files no longer readable, are left out; the
    objects reference only the DICOM instances found. Raises InputError when none is left, as
    there is no study to put the objects in.
    """
    headers: dict[str, Dataset] = {}
    for cine in study.get("cines", []):
        header = _dicom_header(Path(cine["source"]))
        if header is not None and "StudyInstanceUID" in header and "SOPInstanceUID" in header:
            headers[str(cine["source"])] = header
    if not headers:
        raise InputError(study.get("key", "study"),
                         "no DICOM source with a StudyInstanceUID among the study's cines; "
                         "DICOM results need the study they belong to")
    study_uid = str(next(iter(headers.values())).StudyInstanceUID)
    return StudySources(study_uid, {path: header for path, header in headers.items()
                                    if str(header.StudyInstanceUID) == study_uid})


def _dicom_header(path: Path) -> Dataset | None:
    """The file's DICOM header, or None when it is not a readable DICOM file."""
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except (OSError, pydicom.errors.InvalidDicomError):
        return None


def copy_patient_study(target: Dataset, source: Dataset) -> None:
    """Copy the patient and study module attributes the source has onto `target`."""
    for keyword in PATIENT_STUDY_ATTRIBUTES:
        if keyword in source:
            setattr(target, keyword, source[keyword].value)


def key_frames(study: Mapping[str, Any]) -> list[tuple[str, int]]:
    """The study's key frames as (source path, 0-based frame), LCA side first."""
    chosen = (study.get("keyframes") or {}).get("keyframes") or {}
    return [(str(frame["path"]), int(frame["frame"]))
            for side in sorted(chosen) for frame in chosen[side]]
