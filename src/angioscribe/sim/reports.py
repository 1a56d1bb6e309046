"""Ground-truth diagnostic and treatment summaries, in English and Japanese.

The style is CAG-VLM's target text: one sentence per finding naming vessel and SYNTAX number
("LCX #11 shows 75% stenosis."), then one treatment sentence. The treatment is the project's
single guideline rule, `angioscribe.report.guideline.recommend` (significant: >= 70 %, >= 50 %
in the left main; left main or three-vessel disease -> heart team / CABG; one or two vessels ->
PCI; none -> medical therapy), so the truth and the report evaluator cannot disagree. This
module only adds the words, and which of the two CABG reasons applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from angioscribe.anatomy import Laterality
from angioscribe.anatomy import segment as syntax_segment
from angioscribe.report.guideline import recommend, significant_territories
from angioscribe.report.structured import Recommendation
from angioscribe.sim.lesions import Lesion

Language = Literal["en", "ja"]
Reason = Literal["left_main", "three_vessel", "one_or_two_vessel", "no_significant_stenosis"]

_CALCIFICATION_JA = {"mild": "軽度石灰化", "moderate": "中等度石灰化", "severe": "高度石灰化"}
_CONTEXT_EN = "in context of other angiographic findings and comorbidities"
_CONTEXT_JA = "他のアンギオ画像や、合併症を考慮して、"
_SENTENCES: dict[Reason, dict[Language, str]] = {
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
    "no_significant_stenosis": {
        "en": "No significant stenosis. Continue optimal medical therapy.",
        "ja": "有意狭窄は認めません。至適薬物療法を継続してください。",
    },
}


@dataclass(frozen=True)
class TreatmentPlan:
    recommendation: Recommendation  # "cabg", "pci" or "medical", from the guideline rule
    reason: Reason
    territories: tuple[str, ...]  # significantly diseased territories, LM first

    def sentence(self, language: Language) -> str:
        return _SENTENCES[self.reason][language]

    def to_dict(self) -> dict:
        return {"recommendation": self.recommendation, "reason": self.reason,
                "territories": list(self.territories)}


def treatment_plan(lesions: Sequence[Lesion]) -> TreatmentPlan:
    """The guideline's recommendation for these lesions, with the reason behind it."""
    stenosis = {lesion.segment: float(lesion.stenosis_percent) for lesion in lesions}
    recommendation = recommend(stenosis)
    territories = significant_territories(stenosis)
    ordered = tuple(t for t in ("LM", "LAD", "LCX", "RCA") if t in territories)
    reason: Reason = {"cabg": "left_main" if "LM" in territories else "three_vessel",
                      "pci": "one_or_two_vessel"}.get(recommendation, "no_significant_stenosis")
    return TreatmentPlan(recommendation, reason, ordered)


def finding_sentence(lesion: Lesion, language: Language) -> str:
    """One lesion as the paper writes it: "LCX #11 shows 75% stenosis."."""
    seg = syntax_segment(lesion.segment)
    name = f"{seg.vessel} #{seg.number}"
    calcified = lesion.calcification != "none"
    if language == "en":
        if lesion.cto:
            filling = " with collateral filling of the distal vessel" if lesion.collaterals else ""
            return f"{name} shows chronic total occlusion (100%){filling}."
        extras = [w for w, on in (("thrombus", lesion.thrombus),
                                  (f"{lesion.calcification} calcification", calcified)) if on]
        suffix = f" with {' and '.join(extras)}" if extras else ""
        return f"{name} shows {lesion.stenosis_percent}% stenosis{suffix}."
    if lesion.cto:
        filling = "遠位部は側副血行路により造影されます。" if lesion.collaterals else ""
        return f"{name}に慢性完全閉塞（100%）が確認できます。{filling}"
    extras = [w for w, on in (("血栓", lesion.thrombus),
                              (_CALCIFICATION_JA.get(lesion.calcification, ""), calcified)) if on]
    prefix = f"{'と'.join(extras)}を伴う" if extras else ""
    return f"{name}に{prefix}{lesion.stenosis_percent}%の狭窄が確認できます。"


def diagnostic_summary(lesions: Iterable[Lesion], plan: TreatmentPlan, language: Language,
                       side: Laterality | None = None) -> str:
    """Findings (of one side, or all) in SYNTAX order, then the study's treatment sentence.

    The treatment is the study's even in a one-side summary: a key frame of the right coronary
    does not change what the patient needs.
    """
    chosen = [lesion for lesion in lesions
              if side is None or syntax_segment(lesion.segment).laterality == side]
    sentences = [finding_sentence(lesion, language) for lesion in chosen]
    if not sentences and side is not None:
        sentences = [f"{side} shows no stenosis." if language == "en"
                     else f"{side}に狭窄は認めません。"]
    separator = " " if language == "en" else ""
    return separator.join([*sentences, plan.sentence(language)])
