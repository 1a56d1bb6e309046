"""The clinician's five error categories (CAG-VLM Table 4), counted automatically.

A draft report is parsed (`angioscribe.report`) and compared with the truth: structured findings,
the image's side, and a recommendation (given, or the guideline's for the truth findings). The
written definitions, which these functions implement literally, are in docs/reports.md:

- laterality: a lesion placed on the wrong coronary side (vs the image's side, or vs the true
  lesion it stands for), or the draft names the wrong side for the image;
- vessel (numbering): a significant lesion that exists in the truth is attributed to the wrong
  segment on the right side, or to no segment at all;
- stenosis detection: a significant true lesion missed, a significant lesion invented, or a
  lesion found at the right place but on the wrong side of the significance threshold;
- treatment plan: the draft's recommendation is not one the truth's plan allows, or is missing;
- logical consistency: the draft contradicts itself (a lesion it calls significant where it also
  says there is none; a plan its own findings do not support; a step both advised and declined).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from angioscribe.report.guideline import SIGNIFICANT_PERCENT, is_significant, recommend
from angioscribe.report.structured import ParsedReport, Recommendation, ReportFinding

# The plans a draft may give when the truth's plan is the key. "treatment_review" ("consider the
# treatment plan in context ...", the paper's own reference wording) defers an invasive decision,
# so it fits any revascularisation truth; testing before PCI fits a PCI truth; neither fits a
# truth of medical therapy, where watchful waiting or medical therapy are the consistent plans.
ACCEPTABLE: dict[Recommendation, frozenset[Recommendation]] = {
    "cabg": frozenset({"cabg", "treatment_review"}),
    "pci": frozenset({"pci", "treatment_review", "further_testing"}),
    "medical": frozenset({"medical", "follow_up"}),
    "follow_up": frozenset({"follow_up", "medical"}),
    "further_testing": frozenset({"further_testing", "treatment_review"}),
    "treatment_review": frozenset({"treatment_review", "pci", "cabg", "further_testing"}),
}
REVASCULARISATION: frozenset[Recommendation] = frozenset({"pci", "cabg"})
CONSERVATIVE: frozenset[Recommendation] = frozenset({"medical", "follow_up"})


@dataclass
class ReportErrors:
    """Error counts of one draft, in Table 4's column order, with the reason for each."""

    laterality: int = 0
    vessel: int = 0
    treatment: int = 0
    logical: int = 0
    stenosis: int = 0
    reasons: list[str] = field(default_factory=list)

    def add(self, category: str, reason: str) -> None:
        setattr(self, category, getattr(self, category) + 1)
        self.reasons.append(f"{category}: {reason}")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


ERROR_CATEGORIES: tuple[str, ...] = ("laterality", "vessel", "treatment", "logical", "stenosis")


def truth_plan(truth: ParsedReport) -> Recommendation:
    """The truth's recommendation as given, else the guideline's for its findings."""
    return truth.recommendation or recommend(truth.stenosis_by_location())


def report_errors(draft: ParsedReport, truth: ParsedReport) -> ReportErrors:
    """Count the five error categories of `draft` against `truth`."""
    errors = ReportErrors()
    _check_lesions(draft, truth, errors)
    _check_plan(draft, truth, errors)
    _check_consistency(draft, errors)
    return errors


def significant(finding: ReportFinding) -> bool:
    """Guideline significance; a lesion without a location is held to the general 70 %."""
    if finding.location is None:
        return (finding.stenosis_percent or 0) >= SIGNIFICANT_PERCENT
    return is_significant(finding.location, finding.stenosis_percent)


def _describe(finding: ReportFinding) -> str:
    where = f"#{finding.segment}" if finding.segment else (finding.vessel or "unlocated")
    return f"{where} {finding.stenosis_percent}%"


def _check_lesions(draft: ParsedReport, truth: ParsedReport, errors: ReportErrors) -> None:
    """Match draft lesions to true lesions, from the most to the least exact correspondence.

    Exact place (segment, or vessel when one side names only the vessel) first, where only the
    grade can be wrong; then significant lesions in the same territory or on the same side
    (numbering errors); then across sides (laterality errors). What is left was missed or
    invented; a leftover lesion on the other side of the image is a laterality error instead.
    """
    image_side = truth.stated_laterality if truth.stated_laterality in ("LCA", "RCA") else None
    if (
        image_side
        and draft.stated_laterality in ("LCA", "RCA")
        and draft.stated_laterality != image_side
    ):
        errors.add("laterality", f"draft calls a {image_side} image {draft.stated_laterality}")
    predicted, actual = list(draft.lesions), list(truth.lesions)
    for same in (_same_segment, _same_vessel):
        for p, t in _pair(predicted, actual, same):
            if significant(p) != significant(t):
                errors.add("stenosis", f"{_describe(p)} graded against true {_describe(t)}")
    actual = [t for t in actual if significant(t)]
    for same in (_same_territory, _same_side):
        for p, t in _pair(predicted, actual, same, significant):
            errors.add("vessel", f"{_describe(p)} stands for true {_describe(t)}")
    for p, t in _pair(predicted, actual, lambda p, t: True, significant):
        errors.add("laterality", f"{_describe(p)} stands for true {_describe(t)} on the other side")
    for t in actual:
        errors.add("stenosis", f"missed {_describe(t)}")
    for p in predicted:
        if image_side and p.laterality not in (None, image_side):
            errors.add("laterality", f"{_describe(p)} is not on the {image_side} side shown")
        elif significant(p):
            errors.add("stenosis", f"invented {_describe(p)}")


def _pair(
    predicted: list[ReportFinding],
    actual: list[ReportFinding],
    same: Callable[[ReportFinding, ReportFinding], bool],
    eligible: Callable[[ReportFinding], bool] = lambda p: True,
) -> list[tuple[ReportFinding, ReportFinding]]:
    """Greedy one-to-one pairs in text order; paired findings are removed from both lists."""
    pairs = []
    for t in list(actual):
        p = next((p for p in predicted if eligible(p) and same(p, t)), None)
        if p is not None:
            predicted.remove(p)
            actual.remove(t)
            pairs.append((p, t))
    return pairs


def _same_segment(p: ReportFinding, t: ReportFinding) -> bool:
    return p.segment is not None and p.segment == t.segment


def _same_vessel(p: ReportFinding, t: ReportFinding) -> bool:
    """A vessel-level mention matches any segment of that vessel, and vice versa."""
    one_vague = p.segment is None or t.segment is None
    return one_vague and p.vessel is not None and p.vessel == t.vessel


def _same_territory(p: ReportFinding, t: ReportFinding) -> bool:
    return p.territory is None or p.territory == t.territory


def _same_side(p: ReportFinding, t: ReportFinding) -> bool:
    return p.laterality is None or p.laterality == t.laterality


def _check_plan(draft: ParsedReport, truth: ParsedReport, errors: ReportErrors) -> None:
    expected = truth_plan(truth)
    if draft.recommendation is None:
        errors.add("treatment", f"no plan given; truth is {expected}")
    elif draft.recommendation not in ACCEPTABLE[expected]:
        errors.add("treatment", f"{draft.recommendation} where truth is {expected}")


def _check_consistency(draft: ParsedReport, errors: ReportErrors) -> None:
    significant_lesions = [f for f in draft.lesions if significant(f)]
    denials = [f for f in draft.findings if f.negated]
    if any(d.location is None for d in denials) and significant_lesions:
        errors.add("logical", "says no significant stenosis but reports a significant lesion")
    for denial in (d for d in denials if d.location is not None):
        if any(_covers(denial, lesion) for lesion in significant_lesions):
            errors.add("logical", f"denies disease at {denial.location} yet grades it significant")
    diseased = bool(significant_lesions) or bool(draft.vessel_disease)
    plan = draft.recommendation
    if plan in CONSERVATIVE and diseased:
        errors.add("logical", f"recommends {plan} despite the significant disease it reports")
    if plan in REVASCULARISATION and not diseased:
        errors.add("logical", f"recommends {plan} without reporting a significant lesion")
    for step in set(draft.recommendations) & set(draft.declined):
        errors.add("logical", f"both recommends and declines {step}")
    side = draft.stated_laterality
    if side in ("LCA", "RCA") and any(f.laterality not in (None, side) for f in draft.lesions):
        errors.add("logical", f"calls the image {side} but describes the other side")


def _covers(denial: ReportFinding, lesion: ReportFinding) -> bool:
    """Whether a denial ("no stenosis in the LAD") speaks about the lesion's place."""
    if denial.segment is not None:
        return denial.segment == lesion.segment
    return denial.vessel == lesion.vessel


# --- named segments and side: what the Done-when lines of drafting are measured by ----------


@dataclass
class SegmentAgreement:
    """The stenosed segments a draft names against the truth's, and whether it names the
    wrong injection side. Pooled over drafts into precision, recall and F1
    (`report_tables.naming_table`): a draft that names #12 for a true #11 is one false and
    one missed segment, whatever the grades."""

    true_positive: int
    false_positive: int
    false_negative: int
    side_error: bool

    def to_dict(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}


def named_segments(report: ParsedReport) -> set[str]:
    """The segments a report calls stenosed: every finding that names a segment and neither
    denies disease there nor states 0 %, graded or not ("RCA #1 shows stenosis." names #1,
    "D1 #9 shows 0% stenosis." names nothing)."""
    return {f.segment for f in report.findings
            if f.segment is not None and not f.negated and f.stenosis_percent != 0}


def segment_agreement(draft: ParsedReport, truth: ParsedReport) -> SegmentAgreement:
    """The draft's named segments against the truth's, and its side against the image's.

    A side error is a draft whose side (the injection it names, else the side of its lesions)
    is known and is not the truth's: calling an RCA frame a left angiogram, naming both
    injections for one, or one injection for a study of both.
    """
    drafted, true = named_segments(draft), named_segments(truth)
    truth_side, draft_side = truth.laterality, draft.laterality
    return SegmentAgreement(
        true_positive=len(drafted & true),
        false_positive=len(drafted - true),
        false_negative=len(true - drafted),
        side_error=truth_side is not None and draft_side is not None and draft_side != truth_side,
    )
