"""De-identification: nothing that leaves angioscribe for a corpus or an export names a patient.

`deidentify` applies the DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile
to a pydicom Dataset, for the attributes an XA study carries:

- patient, physician, operator and institution identifiers removed or emptied; the patient's
  name and id replaced by one pseudonym, so a patient's studies still group together;
- every instance UID (study, series, SOP instance, frame of reference, references) replaced by
  a hash of itself: the same UID gives the same new UID in every file, so references between
  files stay intact; class UIDs (1.2.840.10008.*) are kept;
- dates shifted by a per-patient number of days (the profile's "Retain Longitudinal Temporal
  Information with Modified Dates" option: intervals between a patient's studies survive), or
  emptied with `shift_dates=False`; times emptied;
- private tags and overlays removed; PatientIdentityRemoved = YES and the method recorded.

Pixels are untouched: a file whose pixels carry burned-in annotation (BurnedInAnnotation YES)
is refused rather than exported, since text in the image is beyond this profile.

Pseudonyms are keyed hashes (HMAC-SHA-256) with a secret salt: without the salt a pseudonym
cannot be traced back by trying likely patient ids. The salt comes from ANGIOSCRIBE_DEID_SALT,
else from a random per-installation file created on first use (`site_salt`); keep it to get the
same pseudonyms next time, keep it private so nobody else can.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from angioscribe import __version__
from angioscribe.errors import InputError

SALT_ENV = "ANGIOSCRIBE_DEID_SALT"
DICOM_ROOT = "1.2.840.10008."  # class and transfer-syntax UIDs: no patient information
MAX_DATE_SHIFT_DAYS = 3650
METHOD = "PS3.15 E.1 Basic Profile"  # DeidentificationMethod values are LO: 64 characters
DATES_OPTION = "Retain Longitudinal Temporal Information Modified Dates Option"

# Basic profile, action X (remove), for the attributes XA files carry. Person names (PN),
# instance UIDs, dates and times are handled by value representation, so they need no entry.
REMOVE = frozenset({
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName",
    "InstitutionCodeSequence", "StationName", "DeviceSerialNumber", "PlateID",
    "DetectorID", "GantryID", "PatientAge", "PatientSize", "PatientWeight", "PatientAddress",
    "PatientTelephoneNumbers", "PatientMotherBirthName", "OtherPatientIDs",
    "OtherPatientIDsSequence", "OtherPatientNames", "PatientBirthName", "PatientBirthTime",
    "MilitaryRank", "BranchOfService", "EthnicGroup", "Occupation", "CountryOfResidence",
    "RegionOfResidence", "PatientReligiousPreference", "MedicalRecordLocator",
    "AdditionalPatientHistory", "PatientComments", "AdmittingDiagnosesDescription",
    "IssuerOfPatientID", "PatientInsurancePlanCodeSequence", "MedicalAlerts", "Allergies",
    "PregnancyStatus", "SmokingStatus", "LastMenstrualDate", "StudyDescription",
    "SeriesDescription", "ProtocolName", "ImageComments", "DerivationDescription",
    "RequestAttributesSequence", "RequestedProcedureID", "RequestedProcedureDescription",
    "ScheduledProcedureStepID", "ScheduledProcedureStepDescription",
    "PerformedProcedureStepID", "PerformedProcedureStepDescription", "PerformedLocation",
    "PerformedStationName", "PerformedStationAETitle", "ReferencedPatientSequence",
    "ReferencedStudySequence", "ReferencedPerformedProcedureStepSequence",
    "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers",
    "PhysiciansOfRecordIdentificationSequence", "PerformingPhysicianIdentificationSequence",
    "OperatorIdentificationSequence", "ReferringPhysicianIdentificationSequence",
    "RequestingService", "CurrentPatientLocation", "PatientState", "ResponsiblePerson",
    "ResponsibleOrganization", "TextComments", "AcquisitionComments", "ContentSequence",
    "DigitalSignaturesSequence", "OriginalAttributesSequence", "FrameComments",
    "VisitComments", "AdmissionID", "ServiceEpisodeID", "ServiceEpisodeDescription",
})
# Basic profile, action Z (keep, emptied): type 2 attributes a valid file must still have.
EMPTY = frozenset({"AccessionNumber", "StudyID", "ReferringPhysicianName", "PatientBirthDate",
                   "PatientSex", "ContentCreatorName"})
# Replaced by the patient's pseudonym (action D), so that studies still group by patient.
PSEUDONYMISED = frozenset({"PatientName", "PatientID"})


def site_salt() -> str:
    """This installation's secret salt: ANGIOSCRIBE_DEID_SALT, else a random one kept in
    $XDG_CONFIG_HOME/angioscribe/deid-salt (created on first use, readable only by its owner)."""
    if os.environ.get(SALT_ENV):
        return os.environ[SALT_ENV]
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    path = config / "angioscribe" / "deid-salt"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def _digest(value: str, salt: str, purpose: str) -> bytes:
    return hmac.new(salt.encode(), f"{purpose}\0{value}".encode(), hashlib.sha256).digest()


def pseudonym(patient_id: str, salt: str | None = None, prefix: str = "P") -> str:
    """A stable pseudonymous patient id ("P-1a2b3c4d5e6f7a8b"): same id and salt, same
    pseudonym; another salt gives unrelated ones."""
    key = site_salt() if salt is None else salt
    return f"{prefix}-{_digest(patient_id, key, 'patient').hex()[:16]}"


def pseudonymous_uid(uid: str, salt: str) -> str:
    """A new UID for an instance UID, in the 2.25 (UUID) form: one UID, one replacement."""
    return f"2.25.{int.from_bytes(_digest(uid, salt, 'uid')[:16], 'big')}"


def date_shift_days(patient_id: str, salt: str) -> int:
    """How many days this patient's dates move back (1 to 3650), the same in every file."""
    return 1 + int.from_bytes(_digest(patient_id, salt, "date")[:4], "big") % MAX_DATE_SHIFT_DAYS


def deidentify(dataset: Dataset, salt: str | None = None, shift_dates: bool = True,
               source: str | Path = "dataset") -> Dataset:
    """De-identify `dataset` in place with the basic profile (see the module doc); returns it.

    A dataset with burned-in annotation is an InputError naming `source`: its pixels may show
    the patient's name, and this profile leaves pixels untouched.
    """
    if str(dataset.get("BurnedInAnnotation", "")).upper() == "YES":
        raise InputError(source, "pixels carry burned-in annotation (BurnedInAnnotation YES): "
                                 "not de-identified, not exported")
    key = site_salt() if salt is None else salt
    patient = str(dataset.get("PatientID", "") or dataset.get("PatientName", "") or "")
    shift = date_shift_days(patient, key) if shift_dates else None
    dataset.remove_private_tags()
    _clean(dataset, _element_rule(pseudonym(patient, key), key, shift))
    meta = getattr(dataset, "file_meta", None)
    if meta is not None and "MediaStorageSOPInstanceUID" in meta and "SOPInstanceUID" in dataset:
        meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = [METHOD, *([DATES_OPTION] if shift else []),
                                      f"angioscribe {__version__}"]
    dataset.DeidentificationMethodCodeSequence = Sequence(
        [_code("113100", "Basic Application Confidentiality Profile")]
        + ([_code("113107", DATES_OPTION)] if shift else []))
    return dataset


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
    return item


Rule = Callable[[DataElement], str | None]  # an element's new value ("" empties); None keeps it


def _clean(dataset: Dataset, rule: Rule) -> None:
    """Apply `rule` to every element, inside sequences too; overlays (60xx) are removed."""
    for tag in list(dataset.keys()):
        element = dataset[tag]
        if _is_overlay(tag) or element.keyword in REMOVE:
            del dataset[tag]
        elif element.VR == "SQ":
            for item in element.value:
                _clean(item, rule)
        else:
            new = rule(element)
            if new is not None:
                element.value = new


def _element_rule(patient_pseudonym: str, salt: str, shift: int | None) -> Rule:
    def rule(element: DataElement) -> str | None:
        if element.keyword in PSEUDONYMISED:
            return patient_pseudonym
        if element.keyword in EMPTY or element.VR in ("PN", "TM"):
            return ""
        if element.VR == "UI":
            return _map_uids(element.value, salt)
        if element.VR in ("DA", "DT"):
            return "" if shift is None or not element.value else _shifted(element.value, shift)
        return None

    return rule


def _map_uids(value: object, salt: str) -> str | None:
    """Instance UIDs replaced (each value of a multi-valued element); None when all are class
    UIDs, which stay."""
    values = [str(value)] if isinstance(value, str) else [str(v) for v in value]
    if all(not v or v.startswith(DICOM_ROOT) for v in values):
        return None
    return "\\".join(v if v.startswith(DICOM_ROOT) else pseudonymous_uid(v, salt)
                      for v in values if v)


def _shifted(value: str, days: int) -> str:
    """A DA/DT value moved back `days` days (date only: a DT's time of day is dropped); an
    unreadable date is emptied rather than kept."""
    try:
        date = dt.datetime.strptime(str(value)[:8], "%Y%m%d").date()
    except ValueError:
        return ""
    return (date - dt.timedelta(days=days)).strftime("%Y%m%d")


def _is_overlay(tag: BaseTag) -> bool:
    return 0x6000 <= tag.group <= 0x60FF and tag.group % 2 == 0
