"""The study's results as a FHIR R4 Bundle: a DiagnosticReport and one Observation per finding.

For teams whose systems take FHIR rather than DICOM SR. Plain JSON, no FHIR library: the
resources are small and their shape is fixed by the R4 specification (DiagnosticReport,
Observation, Bundle of type "collection"). The report is "preliminary", as the SR is
unverified: `conclusion` is the English draft, `presentedForm` the report PDF and the drafts as
text. Each Observation is one `study_findings` entry: `bodySite` the SNOMED CT segment code the
SR uses (CID 3014), `valueQuantity` the % diameter stenosis (UCUM "%"). Resource ids are
derived from the study like the DICOM UIDs, so writing again gives the same ids.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydicom.sr.coding import Code

from angioscribe import __version__
from angioscribe.outputs import codes as c
from angioscribe.outputs.sources import StudySources
from angioscribe.outputs.sr import occluded

SYSTEMS = {
    "SCT": "http://snomed.info/sct",
    "DCM": "http://dicom.nema.org/resources/ontology/DCM",
    "LN": "http://loinc.org",
    "UCUM": "http://unitsofmeasure.org",
}
DICOM_UID = "urn:dicom:uid"
CATEGORY_CATH = {"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "CTH",
                 "display": "Cardiac Catheterization"}
CATEGORY_IMAGING = {"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "imaging", "display": "Imaging"}
DATA_ABSENT_UNKNOWN = {"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                       "code": "unknown", "display": "Unknown"}


def coding(code: Code) -> dict[str, str]:
    """A DICOM-style code as a FHIR Coding."""
    return {"system": SYSTEMS[code.scheme_designator], "code": code.value,
            "display": code.meaning}


def quantity(value: float, unit: Code) -> dict[str, Any]:
    """A UCUM Quantity."""
    return {"value": round(float(value), 2), "unit": unit.value, "system": SYSTEMS["UCUM"],
            "code": unit.value}


def resource_id(study_uid: str, kind: str) -> str:
    """A UUID derived from the study, angioscribe's version and the resource kind."""
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{study_uid}/{__version__}/{kind}"))


def write_fhir(study: Mapping[str, Any], sources: StudySources, report_pdf: Path,
               path: Path, languages: Sequence[str]) -> Path:
    """Write the study's FHIR R4 Bundle (JSON, UTF-8) to `path`."""
    path.write_text(json.dumps(fhir_bundle(study, sources, report_pdf, languages),
                               ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def fhir_bundle(study: Mapping[str, Any], sources: StudySources, report_pdf: Path,
                languages: Sequence[str]) -> dict[str, Any]:
    """The Bundle: the DiagnosticReport first, then its Observations."""
    context = _context(sources.first)
    observations = [observation(finding, index, sources.study_uid, context)
                    for index, finding in enumerate(study.get("study_findings") or [])]
    report = diagnostic_report(study, sources, report_pdf, languages, context,
                               [entry["fullUrl"] for entry in observations])
    return {"resourceType": "Bundle", "id": resource_id(sources.study_uid, "bundle"),
            "type": "collection", "entry": [report, *observations]}


def diagnostic_report(study: Mapping[str, Any], sources: StudySources, report_pdf: Path,
                      languages: Sequence[str], context: Mapping[str, Any],
                      results: Sequence[str]) -> dict[str, Any]:
    """The DiagnosticReport entry: preliminary, the English draft as its conclusion."""
    drafts = study.get("drafts") or {}
    identifier = resource_id(sources.study_uid, "diagnostic-report")
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": identifier,
        "identifier": [{"system": DICOM_UID, "value": f"urn:oid:{sources.uid('sr')}"}],
        "status": "preliminary",
        "category": [{"coding": [CATEGORY_CATH]}],
        "code": {"coding": [coding(c.REPORT_TITLE)], "text": c.REPORT_TITLE.meaning},
        **context,
        "issued": datetime.now(UTC).isoformat(timespec="seconds"),
        "imagingStudy": [{"identifier": {"system": DICOM_UID,
                                         "value": f"urn:oid:{sources.study_uid}"}}],
        "result": [{"reference": url} for url in results],
        "presentedForm": [attachment(report_pdf.read_bytes(), "application/pdf", "en",
                                     "angioscribe draft report (PDF)")],
    }
    if "en" in drafts and "en" in languages:
        resource["conclusion"] = drafts["en"]["text"]
    resource["presentedForm"] += [
        attachment(drafts[lang]["text"].encode("utf-8"), "text/plain; charset=utf-8", lang,
                   f"Draft report ({lang})") for lang in languages if lang in drafts]
    return {"fullUrl": f"urn:uuid:{identifier}", "resource": resource}


def attachment(data: bytes, content_type: str, language: str, title: str) -> dict[str, Any]:
    """An Attachment with its data inline (base64), size and SHA-1 hash as R4 defines them."""
    return {"contentType": content_type, "language": language,
            "data": base64.b64encode(data).decode("ascii"), "size": len(data),
            "hash": base64.b64encode(hashlib.sha1(data).digest()).decode("ascii"),
            "title": title}


def observation(finding: Mapping[str, Any], index: int, study_uid: str,
                context: Mapping[str, Any]) -> dict[str, Any]:
    """One finding's Observation: % diameter stenosis at its SNOMED CT segment site."""
    site = c.segment_site(str(finding["segment"]))
    identifier = resource_id(study_uid, f"observation-{index}-{site.number}")
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": identifier,
        "status": "preliminary",
        "category": [{"coding": [CATEGORY_IMAGING]}],
        "code": {"coding": [coding(c.LUMEN_DIAMETER_STENOSIS)],
                 "text": "Lumen diameter stenosis"},
        **context,
        "bodySite": {"coding": [coding(site.code)], "text": site.label},
        "method": {"coding": [coding(c.DIAMETER_BASED_METHOD)]},
    }
    if finding.get("stenosis_percent") is not None:
        resource["valueQuantity"] = quantity(finding["stenosis_percent"], c.PERCENT)
    else:
        resource["dataAbsentReason"] = {"coding": [DATA_ABSENT_UNKNOWN],
                                        "text": "not measured (no vessel through the lesion)"}
    resource["component"] = qca_components(finding)
    resource["note"] = [{"text": note} for note in _notes(finding)]
    return {"fullUrl": f"urn:uuid:{identifier}",
            "resource": {key: value for key, value in resource.items() if value != []}}


def qca_components(finding: Mapping[str, Any]) -> list[dict[str, Any]]:
    """MLD, reference diameter and lesion length in mm, those known."""
    parts = (("mld_mm", c.VESSEL_LUMEN_DIAMETER, "Minimum lumen diameter (MLD)"),
             ("reference_mm", c.VESSEL_LUMEN_DIAMETER, "Reference diameter (interpolated)"),
             ("length_mm", c.LESION_LENGTH, "Lesion length"))
    return [{"code": {"coding": [coding(code)], "text": text},
             "valueQuantity": quantity(finding[key], c.MILLIMETER)}
            for key, code, text in parts if finding.get(key) is not None]


def _notes(finding: Mapping[str, Any]) -> list[str]:
    """Grade or occlusion, and what was not assessed, as the SR states them."""
    notes = ["total occlusion" if occluded(finding) else f"grade {finding['grade']}"
             ] if occluded(finding) or finding.get("grade") else []
    not_assessed = [name for name in ("thrombus", "calcification")
                    if not finding.get(f"{name}_assessed")]
    if not_assessed:
        notes.append(f"not assessed: {', '.join(not_assessed)}")
    return notes


def _context(header: Any) -> dict[str, Any]:
    """The subject (by the source's Patient ID) and the study date, those the header has.

    Only the date: a FHIR dateTime with a time needs a time zone, which DICOM's StudyTime
    does not give."""
    context: dict[str, Any] = {}
    if header.get("PatientID"):
        context["subject"] = {"identifier": {"value": str(header.PatientID)}}
    date = str(header.get("StudyDate", ""))
    if len(date) == 8 and date.isdigit():
        context["effectiveDateTime"] = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    return context
