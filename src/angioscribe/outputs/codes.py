"""The coded concepts angioscribe's DICOM and FHIR outputs use, each with its source.

Every code here is taken from DICOM PS3.16 (the context groups, CIDs, and the DICOM
controlled terminology, DCM) or from SNOMED CT as PS3.16 lists it; pydicom's code dictionary
(`pydicom.sr.codedict.codes`, generated from PS3.16) supplies them, so a code that is not in
the standard cannot slip in. No code is invented: a SYNTAX segment that has no code of its own
in CID 3014 is coded by its parent vessel, and its SYNTAX number goes alongside as text
(`SegmentSite.exact` says which), see `segment_site`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from angioscribe.anatomy import segment as syntax_segment

# --- Document and sections -------------------------------------------------------------------

REPORT_TITLE = codes.LN.CardiacCatheterizationReport
"""(18745-0, LN, "Cardiac Catheterization Report"): CID 7000 Diagnostic Imaging Report Document
Title; the root concept of TID 3800 Cardiac Catheterization Report."""

FINDINGS = codes.DCM.Findings
"""(121070, DCM, "Findings"): the section title of TID 2000-style reports."""

FINDING = codes.DCM.Finding
"""(121071, DCM, "Finding"): CID 3419 Finding Title; one lesion's group, and the concept of
the occlusion statement inside it."""

IMPRESSIONS = codes.DCM.Impressions
"""(121072, DCM, "Impressions"): the section holding the impression texts."""

IMPRESSION = codes.DCM.Impression
"""(121073, DCM, "Impression"): CID 7002 Diagnostic Imaging Report Element; the draft report."""

RECOMMENDATIONS = codes.DCM.Recommendations
"""(121074, DCM, "Recommendations"): the section holding the recommendation texts."""

RECOMMENDATION = codes.DCM.Recommendation
"""(121075, DCM, "Recommendation"): CID 7002; the guideline's treatment sentence."""

KEY_IMAGES = codes.DCM.KeyImages
"""(121180, DCM, "Key Images"): the section of key-frame references."""

OF_INTEREST = codes.DCM.OfInterest
"""(113000, DCM, "Of Interest"): CID 7010 Key Object Selection Document Title."""

SOURCE = Code("260753009", "SCT", "Source")
"""(260753009, SCT, "Source"): the generic name PS3.3 C.17.3 suggests for an image reference
whose purpose the template does not name (highdicom's key object selection uses it too)."""

SOURCE_OF_MEASUREMENT = codes.DCM.SourceOfMeasurement
"""(121112, DCM, "Source of Measurement"): CID 7003; the frame a lesion was measured in."""

# --- One lesion --------------------------------------------------------------------------------

FINDING_SITE = codes.SCT.FindingSite
"""(363698007, SCT, "Finding Site"): TID 300's site modifier; its value is a CID 3014 code."""

TRACKING_IDENTIFIER = codes.DCM.TrackingIdentifier
"""(112039, DCM, "Tracking Identifier"): TID 1501's human-readable lesion label; here the SYNTAX
segment ("SYNTAX #7 mid LAD"), which also carries the segment number where CID 3014 has no
code of its own."""

LUMEN_DIAMETER_STENOSIS = codes.SCT.LumenDiameterStenosis
"""(408715008, SCT, "Lumen Diameter Stenosis"): CID 12119/12121; % diameter stenosis by QCA."""

MEASUREMENT_METHOD = codes.SCT.MeasurementMethod
"""(370129005, SCT, "Measurement Method"): TID 300 modifier of the % stenosis."""

DIAMETER_BASED_METHOD = codes.DCM.DiameterBasedMethod
"""(122651, DCM, "Diameter Based Method"): CID 3804 Stenosis Measurement Method."""

VESSEL_LUMEN_DIAMETER = codes.SCT.VesselLumenDiameter
"""(397413000, SCT, "Vessel lumen diameter"): CID 3481; the MLD and the reference diameter."""

DERIVATION = codes.DCM.Derivation
"""(121401, DCM, "Derivation"): TID 300 modifier; with `MINIMUM` it marks the MLD."""

MINIMUM = codes.SCT.Minimum
"""(255605001, SCT, "Minimum"): CID 3488 Min/Max/Mean."""

REFERENCE_METHOD = codes.DCM.ReferenceMethod
"""(122430, DCM, "Reference Method"): modifier of the reference diameter (XA QCA templates)."""

INTERPOLATED_LOCAL_REFERENCE = codes.DCM.InterpolatedLocalReference
"""(122490, DCM, "Interpolated Local Reference"): CID 3465 QA Reference Method; angioscribe's
QCA fits the healthy diameters on both sides and reads the fit at the MLD (docs/qca.md)."""

LESION_LENGTH = codes.DCM.LengthLuminalSegment
"""(122510, DCM, "Length Luminal Segment"): the lesion length along the centre line."""

SEVERITY = Code("246112005", "SCT", "Severity")
"""(246112005, SCT, "Severity"): the stenosis grade; values from CID 3716 Severity."""

GRADE_SEVERITY: dict[str, Code] = {
    "mild": codes.SCT.Mild,  # 255604002
    "moderate": codes.SCT.Moderate,  # 6736007
    "severe": codes.SCT.Severe,  # 24484000
}
"""QCA grades (docs/qca.md) as CID 3716 Severity values; "occluded" is stated as an occlusion
(`OCCLUSION_OF_ARTERY`) instead, as CID 3716 has no occlusion."""

OCCLUSION_OF_ARTERY = codes.SCT.OcclusionOfArtery
"""(1386000, SCT, "Occlusion of artery"): CID 3413/3754; a total occlusion (`cto`)."""

DEGREE_OF_THROMBUS = codes.DCM.DegreeOfThrombus
"""(122131, DCM, "Degree of Thrombus"): its values are CID 3714 Thrombus."""

THROMBUS: dict[bool, Code] = {
    True: codes.SCT.DefiniteThrombus,  # 373142009
    False: codes.SCT.NoThrombus,  # 373140001
}
"""An assessed thrombus flag as its CID 3714 value. CID 3714 has no "not assessed": an
unassessed lesion gets no Degree of Thrombus item at all, and a `COMMENT` that says so."""

VESSEL_MORPHOLOGY = codes.DCM.VesselMorphology
"""(122134, DCM, "Vessel Morphology"): its values are CID 3712 Vessel Descriptor."""

CALCIFIED = codes.SCT.Calcified
"""(237897009, SCT, "Calcified"): CID 3712; written only for an assessed, calcified lesion."""

SEVERITY_OF_CALCIFICATION = codes.DCM.SeverityOfCalcification
"""(122132, DCM, "Severity of Calcification"): its values are CID 3716 Severity."""

CALCIFICATION_SEVERITY: dict[str, Code] = {**GRADE_SEVERITY, "none": codes.SCT.None_}
"""Assessed calcification ("none", "mild", "moderate", "severe") as CID 3716 values."""

CERTAINTY_OF_FINDING = codes.DCM.CertaintyOfFinding
"""(111012, DCM, "Certainty of Finding"): CID 6048's CAD concept; the stenosis model's
confidence that a lesion is there, in %."""

COMMENT = codes.DCM.Comment
"""(121106, DCM, "Comment"): free text, used for what was not assessed."""

# --- Units, language, algorithm ----------------------------------------------------------------

PERCENT = codes.UCUM.Percent
"""("%", UCUM, "Percent")."""

MILLIMETER = codes.UCUM.Millimeter
"""("mm", UCUM, "mm")."""

LANGUAGE = codes.DCM.LanguageOfContentItemAndDescendants
"""(121049, DCM, "Language of Content Item and Descendants"): TID 1204."""

LANGUAGES: dict[str, Code] = {
    "en": Code("en", "RFC5646", "English"),
    "ja": Code("ja", "RFC5646", "Japanese"),
}
"""CID 5000 Language values (RFC 5646 tags) of the draft languages angioscribe writes."""

# --- Coronary segments -------------------------------------------------------------------------

_CID_3014 = codes.cid3014
_CID_3604 = codes.cid3604

# SYNTAX number -> (code, exact). exact False: CID 3014 has no code for the segment itself; the
# code is its parent vessel's and the SYNTAX number is given beside it (Tracking Identifier).
_SEGMENT_CODES: dict[str, tuple[Code, bool]] = {
    "1": (_CID_3014.ProximalRightCoronaryArtery, True),  # 91083009
    "2": (_CID_3014.MidRightCoronaryArtery, True),  # 450960006
    "3": (_CID_3014.DistalRightCoronaryArtery, True),  # 41879009
    "4": (_CID_3014.PosteriorDescendingRightCoronaryArtery, True),  # 53655008
    # CID 3604 Arterial Lesion Location: the posterolateral branch as a whole
    "16": (_CID_3604.PosterolateralBranchOfRightCoronaryArtery, True),  # 17269004
    "16a": (_CID_3014._1stRightPosterolateralCoronaryArtery, True),  # 91761002
    "16b": (_CID_3014._2ndRightPosterolateralCoronaryArtery, True),  # 91762009
    "16c": (_CID_3014._3rdRightPosterolateralCoronaryArtery, True),  # 91763004
    "5": (_CID_3014.LeftMainCoronaryArtery, True),  # 3227004
    "6": (_CID_3014.ProximalLeftAnteriorDescendingCoronaryArtery, True),  # 68787002
    "7": (_CID_3014.MidLeftAnteriorDescendingCoronaryArtery, True),  # 91748002
    "8": (_CID_3014.DistalLeftAnteriorDescendingCoronaryArtery, True),  # 36672000
    "9": (_CID_3014._1stDiagonalCoronaryArtery, True),  # 91750005
    "9a": (_CID_3014._1stDiagonalCoronaryArtery, False),
    "10": (_CID_3014._2ndDiagonalCoronaryArtery, True),  # 91751009
    "10a": (_CID_3014._2ndDiagonalCoronaryArtery, False),
    "11": (_CID_3014.ProximalCircumflexCoronaryArtery, True),  # 52433000
    "12": (_CID_3014.IntermediateArteryRamus, True),  # 244252004
    "12a": (_CID_3014._1stMarginalCoronaryArtery, True),  # 91754001
    "12b": (_CID_3014._2ndMarginalCoronaryArtery, True),  # 91755000
    "13": (_CID_3014.DistalCircumflexCoronaryArtery, True),  # 6511003
    # CID 3604: the left posterolateral branch as a whole
    "14": (_CID_3604.LeftPosterolateralCircumflexCoronaryArtery, True),  # 57823005
    "14a": (_CID_3604.LeftPosterolateralCircumflexCoronaryArtery, False),
    "14b": (_CID_3604.LeftPosterolateralCircumflexCoronaryArtery, False),
    "15": (_CID_3014.LeftPosteriorDescendingCircumflexCoronaryArtery, True),  # 91760001
}


@dataclass(frozen=True)
class SegmentSite:
    """Where a lesion is, coded: a SNOMED CT finding site and the SYNTAX label beside it.

    `exact` is False where the standard has no code for the SYNTAX segment itself (9a, 10a, the
    lettered left posterolateral branches 14a/14b): `code` is then the parent vessel's and only
    `label` tells the segment apart.
    """

    number: str
    code: Code
    exact: bool
    label: str  # "SYNTAX #7 mid LAD"


def segment_site(number: str) -> SegmentSite:
    """The coded finding site of SYNTAX segment `number` ("7", "12b").

    Sources: CID 3014 Coronary Artery Segments; 16 and 14 (the right and left posterolateral
    branches as a whole) are from CID 3604 Arterial Lesion Location, which includes CID 3014.
    Raises KeyError for a number that is not a SYNTAX segment.
    """
    segment = syntax_segment(number)
    code, exact = _SEGMENT_CODES[segment.number]
    return SegmentSite(segment.number, code, exact, f"SYNTAX #{segment.number} {segment.name_en}")


def segment_table() -> list[tuple[str, str, Code, bool]]:
    """Every SYNTAX segment with its code, for the docs: (number, name, code, exact)."""
    return [(number, syntax_segment(number).name_en, code, exact)
            for number, (code, exact) in _SEGMENT_CODES.items()]
