"""Reports composed from findings: the `findings-template` drafter and the simulator's truth.

The style is CAG-VLM's target text: one sentence per finding naming vessel and SYNTAX number
("LCX #11 shows 75% stenosis." / "LCX #11に75%の狭窄が確認できます。"), then one treatment
sentence. The plan is the project's single guideline rule, `report.guideline.recommend`, so
a composed text, the simulator's truth and the evaluator cannot disagree; this module only adds
the words, and which of the two CABG reasons applies. The simulator writes its ground-truth
summaries with `compose_summary`, the template drafter its drafts: one composer, so a corpus
target and a template draft of the same findings are the same text.

Every sentence is written in words the report parser reads back to the same segments, percent
and plan (tests/test_report_draft.py checks this over random finding sets in both languages).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from angioscribe.anatomy import SEGMENTS, Laterality
from angioscribe.anatomy import segment as syntax_segment
from angioscribe.report.draft import DraftRequest, KeyFrameImage, Language
from angioscribe.report.guideline import recommend, significant_territories
from angioscribe.report.lexicon import GRADE_PERCENT
from angioscribe.report.records import Draft
from angioscribe.report.structured import Recommendation

TEMPLATE_MODEL = "findings-template"

Reason = Literal[
    "left_main", "three_vessel", "one_or_two_vessel", "unquantified", "no_significant_stenosis"
]

_CONTEXT_EN = "in context of other angiographic findings and comorbidities"
_CONTEXT_JA = "他のアンギオ画像や、合併症を考慮して、"
_PLAN_SENTENCES: dict[Reason, dict[Language, str]] = {
    "left_main": {
        "en": f"Left main disease: discuss CABG with the heart team, {_CONTEXT_EN}.",
        "ja": f"左主幹部病変のため、{_CONTEXT_JA}ハートチームでCABGを検討してください。",
    },
    "three_vessel": {
        "en": f"Three-vessel disease: discuss CABG with the heart team, {_CONTEXT_EN}.",
        "ja": f"三枝病変のため、{_CONTEXT_JA}ハートチームでCABGを検討してください。",
    },
    "one_or_two_vessel": {
        "en": f"Consider PCI {_CONTEXT_EN}.",
        "ja": f"{_CONTEXT_JA}PCIを検討してください。",
    },
    "unquantified": {
        "en": "Severity not graded: consider functional assessment (FFR) before deciding.",
        "ja": "重症度は未評価のため、FFRによる機能的評価を検討してください。",
    },
    "no_significant_stenosis": {
        "en": "No significant stenosis. Continue optimal medical therapy.",
        "ja": "有意狭窄は認めません。至適薬物療法を継続してください。",
    },
}

# Grade words (the findings' mild < 50, moderate 50-69, severe 70-99) that the parser reads
# back to the percent GRADE_PERCENT gives them.
_GRADE_WORDS: dict[str, dict[Language, str]] = {
    "mild": {"en": "mild", "ja": "軽度"},
    "moderate": {"en": "moderate", "ja": "中等度"},
    "severe": {"en": "severe", "ja": "高度"},
}
_FINDING_WORDS: dict[Language, dict[str, str]] = {
    "en": {
        "occlusion": "{name} shows total occlusion (100%){filling}.",
        "filling": " with collateral filling of the distal vessel",
        "stenosis": "{name} shows {severity}stenosis{with_}.",
        "with": " with {}", "and": " and ", "thrombus": "thrombus",
        "percent": "{}% ", "grade": "{} ",
    },
    "ja": {
        "occlusion": "{name}に完全閉塞（100%）が確認できます。{filling}",
        "filling": "遠位部は側副血行路により造影されます。",
        "stenosis": "{name}に{with_}{severity}狭窄が確認できます。",
        "with": "{}を伴う", "and": "と", "thrombus": "血栓",
        "percent": "{}%の", "grade": "{}",
    },
}
# Under this measured %, the stenosis model saw a lesion where QCA finds almost no narrowing:
# "shows 3% stenosis" reads as a contradiction, so the sentence says what angiographers write
# for such a wall, "luminal irregularities" (the parser's "minimal" grade).
IRREGULARITIES_BELOW = 10
_IRREGULARITIES: dict[Language, str] = {
    "en": "{name} shows luminal irregularities.",
    "ja": "{name}に壁不整を認めます。",
}
_CALCIFICATION_JA = {"mild": "軽度石灰化", "moderate": "中等度石灰化", "severe": "高度石灰化"}
_OCCLUDED_GRADES = {"occluded", "occlusion", "total", "cto"}
_SIDE_WORDS: dict[Laterality, dict[Language, str]] = {
    "LCA": {"en": "Left coronary angiogram", "ja": "左冠動脈造影"},
    "RCA": {"en": "Right coronary angiogram", "ja": "右冠動脈造影"},
}


@dataclass(frozen=True)
class TreatmentPlan:
    """The guideline's recommendation with the reason a sentence gives for it."""

    recommendation: Recommendation  # "cabg", "pci", "further_testing" or "medical"
    reason: Reason
    territories: tuple[str, ...]  # significantly diseased territories, LM first

    def sentence(self, language: Language) -> str:
        return _PLAN_SENTENCES[self.reason][language]

    def to_dict(self) -> dict:
        return {"recommendation": self.recommendation, "reason": self.reason,
                "territories": list(self.territories)}


def treatment_plan(findings: Iterable[Mapping[str, Any]]) -> TreatmentPlan:
    """The guideline's recommendation for these findings, with the reason behind it.

    Findings whose severity is unknown (no percent, no grade) cannot count toward the rule;
    when they are the only lesions, the plan asks for a functional assessment instead of
    declaring the study free of significant disease.
    """
    findings = list(findings)
    stenosis: dict[str, int | None] = {}
    for finding in findings:  # a segment seen in several views counts with its worst value
        number, percent = str(finding["segment"]), stated_percent(finding)
        if stenosis.get(number) is None or (percent or 0) > (stenosis[number] or 0):
            stenosis[number] = percent
    recommendation = recommend(stenosis)
    territories = significant_territories(stenosis)
    ordered = tuple(t for t in ("LM", "LAD", "LCX", "RCA") if t in territories)
    if recommendation == "cabg":
        return TreatmentPlan("cabg", "left_main" if "LM" in territories else "three_vessel",
                             ordered)
    if recommendation == "pci":
        return TreatmentPlan("pci", "one_or_two_vessel", ordered)
    if any(stated_percent(f) is None for f in findings):
        return TreatmentPlan("further_testing", "unquantified", ordered)
    return TreatmentPlan("medical", "no_significant_stenosis", ordered)


def stated_percent(finding: Mapping[str, Any]) -> int | None:
    """The percent a composed sentence states: the number, 100 for an occlusion, else the
    percent the parser resolves the grade word to; None when the severity is unknown."""
    if _occluded(finding):
        return 100
    if _irregularities_only(finding):
        return GRADE_PERCENT["minimal"]
    if finding.get("stenosis_percent") is not None:
        return int(round(float(finding["stenosis_percent"])))
    grade = _grade(finding)
    return GRADE_PERCENT.get(grade) if grade else None


def _occluded(finding: Mapping[str, Any]) -> bool:
    percent = finding.get("stenosis_percent")
    return bool(finding.get("cto")) or (percent is not None and float(percent) >= 100) \
        or str(finding.get("grade") or "").lower() in _OCCLUDED_GRADES


def _irregularities_only(finding: Mapping[str, Any]) -> bool:
    percent = finding.get("stenosis_percent")
    return percent is not None and float(percent) < IRREGULARITIES_BELOW


def _grade(finding: Mapping[str, Any]) -> str | None:
    """The finding's grade when the composer can write it (a word the parser resolves)."""
    grade = str(finding.get("grade") or "").lower()
    return grade if grade in _GRADE_WORDS else None


def finding_sentence(finding: Mapping[str, Any], language: Language) -> str:
    """One finding as the paper writes it: "LCX #11 shows 75% stenosis."."""
    words = _FINDING_WORDS[language]
    seg = syntax_segment(str(finding["segment"]))
    name = f"{seg.vessel} #{seg.number}"
    if _occluded(finding):
        filling = words["filling"] if finding.get("collaterals") else ""
        return words["occlusion"].format(name=name, filling=filling)
    if _irregularities_only(finding):
        return _IRREGULARITIES[language].format(name=name)
    thrombus = words["thrombus"] if finding.get("thrombus") is True else None
    extras = [word for word in (thrombus, _calcification(finding, language)) if word]
    extra = words["with"].format(words["and"].join(extras)) if extras else ""
    return words["stenosis"].format(name=name, severity=_severity(finding, language), with_=extra)


def _severity(finding: Mapping[str, Any], language: Language) -> str:
    """The words before "stenosis"/"狭窄": "75% "/"75%の", the grade word, or nothing."""
    words = _FINDING_WORDS[language]
    if finding.get("stenosis_percent") is not None:
        return words["percent"].format(stated_percent(finding))
    grade = _grade(finding)
    return words["grade"].format(_GRADE_WORDS[grade][language]) if grade else ""


def _calcification(finding: Mapping[str, Any], language: Language) -> str | None:
    """"severe calcification"/"高度石灰化", plain "calcification" for a bare flag, None for none
    or not assessed."""
    value = finding.get("calcification")
    if value is not True and value not in _CALCIFICATION_JA:
        return None
    if language == "ja":
        return _CALCIFICATION_JA.get(value, "石灰化")
    return "calcification" if value is True else f"{value} calcification"


def angiogram_sentence(key_frames: Sequence[KeyFrameImage], extra_sides: Iterable[str],
                       language: Language) -> str:
    """Which injections the text describes, with their views: "Left coronary angiogram (RAO
    caudal)." Sides of findings without a key frame of their own are named too, so the text
    never names one injection and describes lesions of the other."""
    views: dict[str, list[str]] = {}
    for frame in key_frames:
        if frame.side in _SIDE_WORDS:
            seen = views.setdefault(frame.side, [])
            if frame.view and frame.view not in seen:
                seen.append(frame.view)
    for side in extra_sides:
        views.setdefault(side, [])
    separator = ", " if language == "en" else "、"
    parts = []
    for side in ("LCA", "RCA"):
        if side in views:
            listed = separator.join(views[side])
            words = _SIDE_WORDS[side][language]
            parts.append(f"{words}（{listed}）" if listed and language == "ja"
                         else f"{words} ({listed})" if listed else words)
    if not parts:
        return ""
    return f"{'. '.join(parts)}." if language == "en" else f"{'。'.join(parts)}。"


def compose_summary(findings: Sequence[Mapping[str, Any]], plan: TreatmentPlan,
                    language: Language, side: Laterality | None = None,
                    opening: str = "") -> str:
    """Findings (of one side, or all) in the order given, then the study's treatment sentence.

    The treatment is the study's even in a one-side summary: a key frame of the right coronary
    does not change what the patient needs. `opening` (the injections described) comes first.
    """
    chosen = [f for f in findings
              if side is None or syntax_segment(str(f["segment"])).laterality == side]
    sentences = [finding_sentence(f, language) for f in chosen]
    if not sentences and side is not None:
        sentences = [f"{side} shows no stenosis." if language == "en"
                     else f"{side}に狭窄は認めません。"]
    separator = " " if language == "en" else ""
    return separator.join(part for part in [opening, *sentences, plan.sentence(language)] if part)


def study_clues(findings: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The findings a template draft states: one per named segment (its most severe entry, an
    occlusion first), in SYNTAX order. Entries without a segment cannot be written."""
    best: dict[str, Mapping[str, Any]] = {}
    for finding in findings:
        number = finding.get("segment")
        if number is None or str(number) not in SEGMENTS:
            continue
        number = str(number)
        if number not in best or _severity_key(finding) > _severity_key(best[number]):
            best[number] = finding
    order = list(SEGMENTS)
    return [dict(best[number]) for number in sorted(best, key=order.index)]


def _severity_key(finding: Mapping[str, Any]) -> tuple[float, float]:
    percent = stated_percent(finding)
    return (-1.0 if percent is None else float(percent), float(finding.get("confidence") or 0.0))


class TemplateDrafter:
    """The structured-reporting baseline: deterministic sentences from the findings."""

    name = TEMPLATE_MODEL
    reads_images = False  # the findings say all it writes

    def draft(self, request: DraftRequest) -> Draft:
        clues = study_clues(request.findings)
        sides = {syntax_segment(str(f["segment"])).laterality for f in clues}
        opening = angiogram_sentence(request.key_frames, sorted(sides), request.lang)
        text = compose_summary(clues, treatment_plan(clues), request.lang, opening=opening)
        return Draft(
            case_id=request.study,
            model=self.name,
            text=text,
            lang=request.lang,
            study=request.study,
            clues=clues,
            key_frames=[frame.reference() for frame in request.key_frames],
        )


def template_drafter(entry: object, lang: Language) -> TemplateDrafter:
    """The registry's builder for `findings-template` (one drafter serves both languages)."""
    return TemplateDrafter()
