"""A study's findings and drafts as a DICOM Comprehensive SR, after TID 3800.

The document follows PS3.16 TID 3800 Cardiac Catheterization Report as far as the codes and
angioscribe's findings allow: its title (18745-0, LN), the device that observed (TID 1001/1004),
one Finding group per lesion with its site (CID 3014), % diameter stenosis (TID 300 NUM), QCA
diameters and length, grade, occlusion, thrombus (CID 3714) and calcification (CID 3712/3716)
where assessed, the key frames, and the EN and JA impression and recommendation texts, each
with the algorithm that made it (TID 4019). It does not claim conformance to TID 3800 (no
Content Template Sequence on the root): the template's sections on history, hemodynamics and
procedure have nothing angioscribe knows to fill them. Every code and where its value comes
from in analysis.json is listed in docs/dicom-outputs.md.

The document is marked preliminary and unverified: these are drafts for a cardiologist. The
review page's signature makes a new one (`Verification`): final, verified, its predecessor the
draft.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from angioscribe import __version__
from angioscribe.outputs import codes as c
from angioscribe.outputs.sources import (
    MANUFACTURER,
    SERIES_NUMBERS,
    FrameReference,
    StudySources,
    key_frames,
    object_uid,
)
from angioscribe.report.template import study_clues, treatment_plan

CONTAINS = hd.sr.RelationshipTypeValues.CONTAINS
HAS_CONCEPT_MOD = hd.sr.RelationshipTypeValues.HAS_CONCEPT_MOD
HAS_OBS_CONTEXT = hd.sr.RelationshipTypeValues.HAS_OBS_CONTEXT
INFERRED_FROM = hd.sr.RelationshipTypeValues.INFERRED_FROM

SERIES_DESCRIPTION = "angioscribe draft report (unverified)"
VERIFIED_SERIES_DESCRIPTION = "angioscribe report verified by a cardiologist"


@dataclass(frozen=True)
class Verification:
    """A cardiologist's signature of version `version` of the report: the SR it makes is
    final and verified by `observer` (a DICOM person name) of `organization`, a new instance
    in its own series that names the preliminary SR it replaces (Predecessor Documents)."""

    observer: str
    organization: str
    version: int
    predecessor: Dataset


def write_sr(study: Mapping[str, Any], sources: StudySources, path: Path,
             languages: Sequence[str], verification: Verification | None = None) -> Path:
    """Write the study's Comprehensive SR to `path` (UTF-8 text, ISO_IR 192): the
    preliminary draft, or with `verification` the signed report."""
    kind = "sr" if verification is None else f"sr-verified-{verification.version}"
    series = "sr" if verification is None else "sr-verified"
    document = hd.sr.ComprehensiveSR(
        evidence=list(sources.headers.values()),
        content=CathReport(study, sources, languages, guideline_plan=verification is None),
        series_instance_uid=sources.uid(f"{series}-series"),
        series_number=SERIES_NUMBERS[series],
        sop_instance_uid=sources.uid(kind),
        instance_number=1 if verification is None else verification.version,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=verification is not None,
        is_verified=verification is not None,
        verifying_observer_name=verification and verification.observer,
        verifying_organization=verification and verification.organization,
        previous_versions=verification and [verification.predecessor],
    )
    document.SpecificCharacterSet = "ISO_IR 192"
    document.SeriesDescription = (SERIES_DESCRIPTION if verification is None
                                  else VERIFIED_SERIES_DESCRIPTION)
    document.SoftwareVersions = __version__
    document.save_as(path, enforce_file_format=True)
    return path


class CathReport(hd.sr.ContainerContentItem):
    """The root CONTAINER (18745-0, LN, "Cardiac Catheterization Report"), after TID 3800.

    `guideline_plan` False leaves out the guideline's recommendation: a signed report's plan
    is the one its signer wrote in the impression, which may differ from the guideline's."""

    def __init__(self, study: Mapping[str, Any], sources: StudySources,
                 languages: Sequence[str], guideline_plan: bool = True) -> None:
        super().__init__(name=c.REPORT_TITLE)
        provenance = study.get("provenance") or {}
        items: list[hd.sr.ContentItem] = [
            *language_of(languages[0] if languages else "en"),
            *device_observer(),
            FindingsSection(study.get("study_findings") or [], sources, provenance),
        ]
        drafts = {lang: draft for lang, draft in (study.get("drafts") or {}).items()
                  if lang in languages}
        if drafts:
            items.append(ImpressionsSection(drafts))
            if guideline_plan:
                items.append(RecommendationsSection(study.get("study_findings") or [], drafts))
        frames = [reference for path, frame in key_frames(study)
                  if (reference := sources.frame(path, frame)) is not None]
        if frames:
            items.append(KeyImagesSection(frames, provenance))
        self.ContentSequence = items


def language_of(language: str) -> hd.sr.LanguageOfContentItemAndDescendants:
    """TID 1204: the language of an item and everything below it."""
    return hd.sr.LanguageOfContentItemAndDescendants(hd.sr.CodedConcept.from_code(
        c.LANGUAGES[language]))


def device_observer() -> hd.sr.ObserverContext:
    """TID 1002 with TID 1004: angioscribe as the observing device (software)."""
    return hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=object_uid(MANUFACTURER, "device"),
            name=MANUFACTURER,
            manufacturer_name=MANUFACTURER,
            model_name=f"{MANUFACTURER} {__version__}",
        ),
    )


def algorithm(name: str, parameters: Sequence[str] = ()) -> hd.sr.AlgorithmIdentification:
    """TID 4019 Algorithm Identification: `name`, angioscribe's version, the model names."""
    return hd.sr.AlgorithmIdentification(name=name, version=__version__,
                                         parameters=list(parameters) or None)


def model_parameters(provenance: Mapping[str, Any], roles: Sequence[str]) -> list[str]:
    """The models that made a result ("syntax: syntax-seg sha256 9160b013227f")."""
    models = provenance.get("models") or {}
    return [f"{role}: {models[role]['name']} sha256 {models[role].get('sha256') or 'unknown'}"
            for role in roles if role in models]


class FindingsSection(hd.sr.ContainerContentItem):
    """CONTAINER (121070, DCM, "Findings"): one `LesionFinding` per study finding, with the
    algorithm that found and measured them."""

    def __init__(self, findings: Sequence[Mapping[str, Any]], sources: StudySources,
                 provenance: Mapping[str, Any]) -> None:
        super().__init__(name=c.FINDINGS, relationship_type=CONTAINS)
        self.ContentSequence = [
            *algorithm(MANUFACTURER, model_parameters(provenance, ("syntax", "stenosis"))),
            *(LesionFinding(finding, sources) for finding in findings),
        ]


class LesionFinding(hd.sr.ContainerContentItem):
    """CONTAINER (121071, DCM, "Finding"): one lesion (a `study_findings` entry).

    Its site is a HAS CONCEPT MOD Finding Site (TID 300) with the CID 3014 code, its SYNTAX
    label a Tracking Identifier (TID 1501); QCA values are TID 300 NUMs, the % stenosis inferred
    from the frame it was measured in. Thrombus and calcification appear only when assessed;
    otherwise a Comment says they were not, so "not assessed" never reads as "none".
    """

    def __init__(self, finding: Mapping[str, Any], sources: StudySources) -> None:
        super().__init__(name=c.FINDING, relationship_type=CONTAINS)
        site = c.segment_site(str(finding["segment"]))
        items: list[hd.sr.ContentItem] = [
            hd.sr.CodeContentItem(c.FINDING_SITE, site.code, HAS_CONCEPT_MOD),
            hd.sr.TextContentItem(c.TRACKING_IDENTIFIER, site.label, HAS_OBS_CONTEXT),
        ]
        measured = finding.get("measured_in") or {}
        source = sources.frame(measured["path"], measured["frame"]) if measured else None
        if finding.get("stenosis_percent") is not None:
            items.append(stenosis_item(float(finding["stenosis_percent"]), source))
        items += qca_items(finding)
        items += grade_items(finding)
        items += morphology_items(finding)
        if finding.get("confidence") is not None:
            items.append(num(c.CERTAINTY_OF_FINDING, 100.0 * float(finding["confidence"]),
                             c.PERCENT))
        self.ContentSequence = items


def num(name: Code, value: float, unit: Code,
        modifiers: Sequence[hd.sr.ContentItem] = ()) -> hd.sr.NumContentItem:
    """A NUM item (TID 300 measurement) with its modifiers, rounded to 0.01."""
    item = hd.sr.NumContentItem(name=name, value=round(value, 2), unit=unit,
                                relationship_type=CONTAINS)
    if modifiers:
        item.ContentSequence = list(modifiers)
    return item


def image_item(name: Code, frame: FrameReference,
               relationship: hd.sr.RelationshipTypeValues) -> hd.sr.ImageContentItem:
    """An IMAGE reference to one frame of a source cine."""
    return hd.sr.ImageContentItem(name=name, referenced_sop_class_uid=frame.sop_class_uid,
                                  referenced_sop_instance_uid=frame.sop_instance_uid,
                                  referenced_frame_numbers=[frame.frame_number],
                                  relationship_type=relationship)


def stenosis_item(percent: float, source: FrameReference | None) -> hd.sr.NumContentItem:
    """NUM (408715008, SCT, "Lumen Diameter Stenosis") in %, diameter based (CID 3804),
    inferred from the frame it was measured in."""
    modifiers: list[hd.sr.ContentItem] = [
        hd.sr.CodeContentItem(c.MEASUREMENT_METHOD, c.DIAMETER_BASED_METHOD, HAS_CONCEPT_MOD)]
    if source is not None:
        modifiers.append(image_item(c.SOURCE_OF_MEASUREMENT, source, INFERRED_FROM))
    return num(c.LUMEN_DIAMETER_STENOSIS, percent, c.PERCENT, modifiers)


def qca_items(finding: Mapping[str, Any]) -> list[hd.sr.ContentItem]:
    """MLD, reference diameter and lesion length in mm, each only when known (the cine's
    calibration known, a vessel through the lesion)."""
    items: list[hd.sr.ContentItem] = []
    if finding.get("mld_mm") is not None:
        items.append(num(c.VESSEL_LUMEN_DIAMETER, float(finding["mld_mm"]), c.MILLIMETER, [
            hd.sr.CodeContentItem(c.DERIVATION, c.MINIMUM, HAS_CONCEPT_MOD)]))
    if finding.get("reference_mm") is not None:
        items.append(num(c.VESSEL_LUMEN_DIAMETER, float(finding["reference_mm"]),
                         c.MILLIMETER, [hd.sr.CodeContentItem(
                             c.REFERENCE_METHOD, c.INTERPOLATED_LOCAL_REFERENCE,
                             HAS_CONCEPT_MOD)]))
    if finding.get("length_mm") is not None:
        items.append(num(c.LESION_LENGTH, float(finding["length_mm"]), c.MILLIMETER))
    return items


def occluded(finding: Mapping[str, Any]) -> bool:
    """A total occlusion: QCA's `cto` flag or grade."""
    return bool(finding.get("cto")) or finding.get("grade") == "occluded"


def grade_items(finding: Mapping[str, Any]) -> list[hd.sr.ContentItem]:
    """The QCA grade as Severity (CID 3716), or an occlusion as Finding = Occlusion of artery."""
    if occluded(finding):
        return [hd.sr.CodeContentItem(c.FINDING, c.OCCLUSION_OF_ARTERY, CONTAINS)]
    severity = c.GRADE_SEVERITY.get(str(finding.get("grade")))
    return [] if severity is None else [hd.sr.CodeContentItem(c.SEVERITY, severity, CONTAINS)]


def morphology_items(finding: Mapping[str, Any]) -> list[hd.sr.ContentItem]:
    """Thrombus (122131 with CID 3714) and calcification (122134 Calcified, 122132 with CID
    3716) where assessed; a Comment naming what was not assessed."""
    items: list[hd.sr.ContentItem] = []
    not_assessed = []
    if finding.get("thrombus_assessed"):
        items.append(hd.sr.CodeContentItem(
            c.DEGREE_OF_THROMBUS, c.THROMBUS[bool(finding.get("thrombus"))], CONTAINS))
    else:
        not_assessed.append("thrombus")
    calcification = finding.get("calcification")
    if finding.get("calcification_assessed") and calcification in c.CALCIFICATION_SEVERITY:
        if calcification != "none":
            items.append(hd.sr.CodeContentItem(c.VESSEL_MORPHOLOGY, c.CALCIFIED, CONTAINS))
        items.append(hd.sr.CodeContentItem(
            c.SEVERITY_OF_CALCIFICATION, c.CALCIFICATION_SEVERITY[calcification], CONTAINS))
    else:
        not_assessed.append("calcification")
    if not_assessed:
        items.append(hd.sr.TextContentItem(
            c.COMMENT, f"Not assessed: {', '.join(not_assessed)}.", CONTAINS))
    return items


class ImpressionsSection(hd.sr.ContainerContentItem):
    """CONTAINER (121072, DCM, "Impressions"): each language's draft as an Impression TEXT
    (121073), with its language (TID 1204) and the drafter that wrote it (TID 4019)."""

    def __init__(self, drafts: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__(name=c.IMPRESSIONS, relationship_type=CONTAINS)
        self.ContentSequence = [
            text_in(c.IMPRESSION, str(draft["text"]), lang, str(draft.get("model")))
            for lang, draft in drafts.items()]


class RecommendationsSection(hd.sr.ContainerContentItem):
    """CONTAINER (121074, DCM, "Recommendations"): the guideline's treatment sentence
    (`report.template.treatment_plan`, the sentence the template drafter ends with) as a
    Recommendation TEXT (121075) in each draft's language."""

    def __init__(self, findings: Sequence[Mapping[str, Any]],
                 drafts: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__(name=c.RECOMMENDATIONS, relationship_type=CONTAINS)
        plan = treatment_plan(study_clues(findings))
        self.ContentSequence = [
            text_in(c.RECOMMENDATION, plan.sentence(lang), lang, "angioscribe guideline")
            for lang in drafts]


def text_in(name: Code, text: str, language: str, made_by: str) -> hd.sr.TextContentItem:
    """A TEXT item with its language and the algorithm that wrote it."""
    item = hd.sr.TextContentItem(name=name, value=text, relationship_type=CONTAINS)
    item.ContentSequence = [*language_of(language), *algorithm(made_by)]
    return item


class KeyImagesSection(hd.sr.ContainerContentItem):
    """CONTAINER (121180, DCM, "Key Images"): an IMAGE reference per key frame, with the
    referenced frame number, chosen by the key-frame classifier (TID 4019)."""

    def __init__(self, frames: Sequence[FrameReference],
                 provenance: Mapping[str, Any]) -> None:
        super().__init__(name=c.KEY_IMAGES, relationship_type=CONTAINS)
        self.ContentSequence = [
            *algorithm(MANUFACTURER, model_parameters(provenance, ("keyframe",))),
            *(image_item(c.SOURCE, frame, CONTAINS) for frame in frames)]
