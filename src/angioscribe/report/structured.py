"""What a report says, as data: findings per location and the recommended next step.

These are the report-side types. Image-side findings (from the segmenter and study models) live
in `angioscribe.findings`; both speak SYNTAX segment numbers from `angioscribe.anatomy`, which is
what lets a report be scored against images or against ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from angioscribe.anatomy import SEGMENTS, Laterality, Territory, segment, vessel_territory
from angioscribe.errors import InputError

Recommendation = Literal[
    "cabg", "pci", "further_testing", "treatment_review", "medical", "follow_up"
]
RECOMMENDATIONS: tuple[Recommendation, ...] = get_args(Recommendation)

ReportSide = Literal["LCA", "RCA", "both"]


def representative_segment(vessel: str) -> str:
    """The first SYNTAX segment of a vessel code, which fixes its side and territory.

    A report may name only a vessel ("the LAD", "PDA"); its side and territory are those of the
    vessel's first segment in SYNTAX order, so bare "PDA"/"PL" count as right-sided, matching the
    convention documented in docs/anatomy.md.
    """
    for seg in SEGMENTS.values():
        if seg.vessel == vessel:
            return seg.number
    raise KeyError(f"unknown vessel code {vessel!r}")


@dataclass
class ReportFinding:
    """One location a report describes: a lesion, or (negated) the absence of one.

    `segment` is a SYNTAX number when the report gives or implies one; `vessel` is always filled
    when the location is known (from the segment, or the vessel the report names). A finding
    with neither is a statement about the whole study ("no significant stenosis").
    `stenosis_percent` is the single value the parsing rules resolve (docs/reports.md); `grade`
    keeps the word the report used when there was no number, so the resolution is auditable.
    """

    segment: str | None = None
    vessel: str | None = None
    stenosis_percent: int | None = None
    grade: str | None = None
    cto: bool = False
    thrombus: bool = False
    calcification: bool = False
    negated: bool = False
    uncertain: bool = False
    evidence: str = ""

    def __post_init__(self) -> None:
        if self.segment is not None:
            self.segment = segment(self.segment).number
            self.vessel = SEGMENTS[self.segment].vessel
        elif self.vessel is not None:
            representative_segment(self.vessel)

    @property
    def location(self) -> str | None:
        """Segment number if known, else vessel code, else None (whole study)."""
        return self.segment or self.vessel

    @property
    def laterality(self) -> Laterality | None:
        return SEGMENTS[self._anchor].laterality if self._anchor else None

    @property
    def territory(self) -> Territory | None:
        return vessel_territory(self._anchor) if self._anchor else None

    @property
    def _anchor(self) -> str | None:
        if self.segment:
            return self.segment
        return representative_segment(self.vessel) if self.vessel else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "vessel": self.vessel,
            "stenosis_percent": self.stenosis_percent,
            "grade": self.grade,
            "cto": self.cto,
            "thrombus": self.thrombus,
            "calcification": self.calcification,
            "negated": self.negated,
            "uncertain": self.uncertain,
            "evidence": self.evidence,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "finding") -> ReportFinding:
        """Build from JSON; missing flags default to False, a bad location is an InputError."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        for flag in _FLAGS:
            if flag in known:
                known[flag] = _flag(known[flag])
        percent = known.get("stenosis_percent")
        if percent is not None:
            known["stenosis_percent"] = round(float(percent))
        try:
            return cls(**known)
        except KeyError as error:
            raise InputError(source, str(error).strip('"')) from None


_FLAGS = ("cto", "thrombus", "calcification", "negated", "uncertain")


def _flag(value: Any) -> bool:
    """A yes/no field; a grade word counts as yes ("severe" calcification), "none" as no."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "none", "no", "false", "0")
    return bool(value)


@dataclass
class ParsedReport:
    """A whole report: its findings, what it recommends and declines, and its stated side.

    `recommendations` lists the next steps the text asserts, in text order; `declined` those it
    explicitly rules out ("PCI is not indicated"). `stated_laterality` is the side the text names
    for the image ("left coronary angiogram"), or the truth's image side when loaded as truth.
    """

    text: str = ""
    lang: str = "en"
    findings: list[ReportFinding] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)
    declined: list[Recommendation] = field(default_factory=list)
    stated_laterality: ReportSide | None = None
    vessel_disease: int | None = None

    @property
    def recommendation(self) -> Recommendation | None:
        """The first next step the report asserts.

        Writers lead with the plan and let subordinate steps follow ("PCI to #6 under IVUS
        guidance", "medical therapy; PCI if angina persists"), so the first named step is the
        recommendation and later ones are qualifications.
        """
        return self.recommendations[0] if self.recommendations else None

    @property
    def laterality(self) -> ReportSide | None:
        """The stated side, else the side(s) of every location the findings name."""
        if self.stated_laterality:
            return self.stated_laterality
        sides = {f.laterality for f in self.findings if f.laterality}
        if len(sides) == 2:
            return "both"
        return sides.pop() if sides else None

    @property
    def lesions(self) -> list[ReportFinding]:
        """Findings that assert disease (not negated, with a stenosis or occlusion value)."""
        return [f for f in self.findings if not f.negated and f.stenosis_percent is not None]

    def stenosis_by_location(self) -> dict[str, int]:
        """Worst stated stenosis per location, the input `guideline.recommend` expects.

        Lesions without a location are left out: a rule about vessels cannot place them.
        """
        worst: dict[str, int] = {}
        for lesion in self.lesions:
            if lesion.location is not None:
                worst[lesion.location] = max(worst.get(lesion.location, 0), lesion.stenosis_percent)
        return worst

    def to_dict(self) -> dict[str, Any]:
        return {
            "lang": self.lang,
            "laterality": self.laterality,
            "findings": [f.to_dict() for f in self.findings],
            "recommendation": self.recommendation,
            "recommendations": list(self.recommendations),
            "declined": list(self.declined),
            "vessel_disease": self.vessel_disease,
            "text": self.text,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "report") -> ParsedReport:
        """Load a parsed report or a ground-truth record (docs/reports.md, truth schema).

        A truth record gives one `recommendation`; it becomes the single asserted step.
        """
        side = data.get("laterality")
        if side not in (None, *get_args(ReportSide)):
            raise InputError(source, f"laterality {side!r} is not LCA, RCA, both or null")
        steps = list(data.get("recommendations") or [])
        if not steps and data.get("recommendation"):
            steps = [data["recommendation"]]
        for step in (*steps, *data.get("declined", [])):
            if step not in RECOMMENDATIONS:
                raise InputError(
                    source, f"recommendation {step!r} is not one of {', '.join(RECOMMENDATIONS)}"
                )
        findings = [
            ReportFinding.from_dict(item, f"{source} finding {i + 1}")
            for i, item in enumerate(data.get("findings") or [])
        ]
        return cls(
            text=data.get("text", ""),
            lang=data.get("lang", "en"),
            findings=findings,
            recommendations=steps,
            declined=list(data.get("declined", [])),
            stated_laterality=side,
            vessel_disease=data.get("vessel_disease"),
        )
