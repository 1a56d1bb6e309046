"""Ground-truth diagnostic and treatment summaries of simulated studies, in English and Japanese.

The words come from `angioscribe.report.template`, the composer the `findings-template` drafter
uses too, so a simulated study's truth and a template draft of the same lesions read alike and
the treatment follows the project's single guideline rule (`report.guideline.recommend`). This
module only turns the simulator's lesions into the composer's findings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from angioscribe.anatomy import Laterality
from angioscribe.report.draft import Language
from angioscribe.report.template import TreatmentPlan, compose_summary
from angioscribe.report.template import treatment_plan as findings_plan
from angioscribe.sim.lesions import Lesion

__all__ = ["TreatmentPlan", "diagnostic_summary", "treatment_plan"]


def treatment_plan(lesions: Sequence[Lesion]) -> TreatmentPlan:
    """The guideline's recommendation for these lesions, with the reason behind it."""
    return findings_plan(lesion.to_dict() for lesion in lesions)


def diagnostic_summary(lesions: Iterable[Lesion], plan: TreatmentPlan, language: Language,
                       side: Laterality | None = None) -> str:
    """Findings (of one side, or all) in SYNTAX order, then the study's treatment sentence."""
    return compose_summary([lesion.to_dict() for lesion in lesions], plan, language, side)
