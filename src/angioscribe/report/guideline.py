"""The project's treatment rule, in one place.

The study simulator writes its ground-truth summaries with `recommend`, and the report evaluator
judges a draft's plan against the same function, so truth and judgement cannot drift apart. The
rule is a deliberately simple reading of the chronic-coronary-syndrome guidelines the CAG-VLM
paper cites (ESC 2024), good enough to tell a plausible plan from an inconsistent one:

- a lesion is significant at >= 70 % diameter stenosis, or >= 50 % in the left main (#5);
  a total occlusion (100 %) is significant;
- significant left-main disease or significant disease in all three territories (LAD, LCX, RCA)
  -> heart-team discussion / CABG ("cabg");
- significant disease in one or two territories -> PCI to be considered ("pci");
- no significant lesion -> medical therapy ("medical").

Diagonals count toward the LAD, the ramus and marginals toward the LCX (`anatomy.vessel_territory`).
"""

from __future__ import annotations

from collections.abc import Mapping

from angioscribe.anatomy import SEGMENTS, Territory, vessel_territory
from angioscribe.report.structured import Recommendation, representative_segment

SIGNIFICANT_PERCENT = 70
LEFT_MAIN_SIGNIFICANT_PERCENT = 50
MAIN_TERRITORIES: frozenset[Territory] = frozenset({"LAD", "LCX", "RCA"})


def territory_of(location: str) -> Territory:
    """Territory of a SYNTAX segment number or, for a vessel-only mention, a vessel code."""
    number = location if location in SEGMENTS else representative_segment(location)
    return vessel_territory(number)


def is_significant(location: str, stenosis_percent: float | None) -> bool:
    """Whether a stenosis at a location counts toward treatment (>= 70 %, >= 50 % left main)."""
    if stenosis_percent is None:
        return False
    if territory_of(location) == "LM":
        return stenosis_percent >= LEFT_MAIN_SIGNIFICANT_PERCENT
    return stenosis_percent >= SIGNIFICANT_PERCENT


def significant_territories(stenosis_by_location: Mapping[str, float | None]) -> set[Territory]:
    """The territories (LM, LAD, LCX, RCA) with at least one significant lesion."""
    return {
        territory_of(location)
        for location, percent in stenosis_by_location.items()
        if is_significant(location, percent)
    }


def recommend(stenosis_by_location: Mapping[str, float | None]) -> Recommendation:
    """The guideline's recommendation for lesions given as {segment or vessel: stenosis %}.

    Keys are SYNTAX numbers ("5", "11", "9a") or, when only the vessel is known, vessel codes
    ("LAD", "RCA"); values are percent diameter stenosis (100 for a total occlusion) or None.
    """
    diseased = significant_territories(stenosis_by_location)
    if "LM" in diseased or MAIN_TERRITORIES <= diseased:
        return "cabg"
    if diseased:
        return "pci"
    return "medical"
