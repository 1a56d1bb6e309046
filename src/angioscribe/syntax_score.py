"""The anatomical SYNTAX score (SYNTAX score I, lesion part) of a study's findings.

The score grades how much myocardium the diseased segments supply and how complex the lesions
are; heart teams use it to weigh PCI against CABG. Algorithm: Sianos G, Morel M-A, Kappetein AP
et al., "The SYNTAX Score: an angiographic tool grading the complexity of coronary artery
disease", EuroIntervention 2005;1:219-227 (Tables 1 and 2), with the definitions of the SYNTAX
score tutorial (syntaxscore.org):

- Every lesion of >= 50 % diameter stenosis in a vessel >= 1.5 mm is scored: its segments'
  weighting factor (`WEIGHTS`, by dominance) times 5 for a total occlusion, 2 otherwise, plus
  the points of its adverse characteristics. The study's score is the sum over its lesions.
- Dominance: the artery that gives the PDA. Co-dominance is no option of the score; a study
  whose right coronary gives a PDA is scored as right dominant.
- Adverse characteristics scored here, where the findings measure them: total occlusion (age
  > 3 months or unknown +1; the age is never known from the images, so every occlusion gets
  it), length > 20 mm +1, bifurcation +1 (Medina 1,0,0 / 0,1,0 / 1,1,0: the side branch's
  ostium not diseased) or +2 (the side branch's ostium diseased), trifurcation +3 to +6 (1 to 4
  diseased segments), heavy calcification +2, thrombus +1. Bifurcations and trifurcations
  count only at the junctions the tutorial lists (`BIFURCATIONS`, `TRIFURCATIONS`).
- Not scored (listed in every result's `not_assessed`): aorto-ostial lesion (+1), severe
  tortuosity (+2), diffuse disease / small vessels (+1 per segment), bifurcation angle < 70°
  (+1), a total occlusion's blunt stump, bridging collaterals, first segment seen beyond it and
  side branches at it (+1 each), and the side branch size at a branch point (>= 1.5 mm).

The findings are one per segment (analysis.json's `study_findings`), so each diseased segment is
scored as one lesion. The tutorial scores serial stenoses under 3 reference diameters apart as
one lesion over several segments: the weights add up the same, but such a lesion's adverse
points count once, here once per segment. A branch point's points are given once, to the first
of its lesions in SYNTAX order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from angioscribe.findings import unmeasured

# Table 1 of Sianos et al. 2005: segment -> (right dominance, left dominance); None = the
# segment does not exist in that dominance ("n.a.").
WEIGHTS: dict[str, tuple[float | None, float | None]] = {
    "1": (1.0, 0.0), "2": (1.0, 0.0), "3": (1.0, 0.0), "4": (1.0, None),
    "16": (0.5, None), "16a": (0.5, None), "16b": (0.5, None), "16c": (0.5, None),
    "5": (5.0, 6.0), "6": (3.5, 3.5), "7": (2.5, 2.5), "8": (1.0, 1.0),
    "9": (1.0, 1.0), "9a": (1.0, 1.0), "10": (0.5, 0.5), "10a": (0.5, 0.5),
    "11": (1.5, 2.5), "12": (1.0, 1.0), "12a": (1.0, 1.0), "12b": (1.0, 1.0),
    "13": (0.5, 1.5), "14": (0.5, 1.0), "14a": (0.5, 1.0), "14b": (0.5, 1.0),
    "15": (None, 1.0),
}
SIGNIFICANT_PERCENT = 50.0
MIN_VESSEL_MM = 1.5
LONG_LESION_MM = 20.0
OCCLUSION_FACTOR, STENOSIS_FACTOR = 5.0, 2.0
# The tutorial's junctions; in a bifurcation the side branch is listed last.
BIFURCATIONS: tuple[tuple[str, ...], ...] = (
    ("5", "6", "11"), ("6", "7", "9"), ("7", "8", "10"), ("11", "13", "12a"),
    ("13", "14", "14a"), ("3", "4", "16"), ("13", "14", "15"),
)
TRIFURCATIONS: tuple[tuple[str, ...], ...] = (
    ("3", "4", "16", "16a"), ("5", "6", "11", "12"), ("11", "12a", "12b", "13"),
    ("6", "7", "9", "9a"), ("7", "8", "10", "10a"),
)
NEVER_ASSESSED = (
    "aorto-ostial lesion", "severe tortuosity", "diffuse disease / small vessels",
    "bifurcation angle < 70 degrees", "side branch size at a branch point",
    "total occlusion: blunt stump, bridging collaterals, first segment seen beyond it, "
    "side branches at it",
)
_TRUTH_DOMINANCE = {"right": "right", "left": "left", "co": "co-dominant"}


def syntax_score(findings: Iterable[Mapping[str, Any]], dominance: str) -> dict[str, Any]:
    """The anatomical SYNTAX score of a study's findings (one per segment, as `study_findings`
    lists them) under the study's dominance ("right", "left", "co-dominant" or "unknown").

    Returns `value` (the score), `dominance` (the weights used: "right" or "left"),
    `dominance_assumed` (true when the study's dominance is unknown and right, the commoner,
    was used; `if_left_dominant` then gives the score under left dominance), `lesions` (each
    scored lesion's terms), `excluded` (findings not scored, with why) and `not_assessed`
    (adverse characteristics the findings do not measure)."""
    findings = list(findings)
    weights = "left" if dominance == "left" else "right"
    result = _score(findings, weights)
    result["dominance_assumed"] = dominance not in ("right", "left", "co-dominant")
    if result["dominance_assumed"]:
        result["if_left_dominant"] = _score(findings, "left")["value"]
    return result


def truth_syntax_score(truth: Mapping[str, Any]) -> dict[str, Any]:
    """The SYNTAX score of a simulated study's truth (its truth.json: `dominance`, `lesions`),
    by the same code as the findings' score."""
    return syntax_score(truth_findings(truth["lesions"]), _TRUTH_DOMINANCE[truth["dominance"]])


def truth_findings(lesions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Simulator truth lesions as study findings: the keys the score reads, thrombus and
    calcification assessed (the truth knows them), vessel size and branch points unknown (the
    truth does not record them)."""
    return [{"segment": lesion["segment"], "stenosis_percent": float(lesion["stenosis_percent"]),
             "cto": bool(lesion["cto"]), "length_mm": lesion["length_mm"],
             "reference_mm": None, "adjacent_segments": None,
             "thrombus": bool(lesion["thrombus"]), "thrombus_assessed": True,
             "calcification": lesion["calcification"], "calcification_assessed": True}
            for lesion in lesions]


def truth_frames(truth: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each view of a simulated study (truth.json) as analysis.json's `findings` entry would
    be with perfect models: its side, the segments it shows (`visible_segments`), and every
    truth lesion on those segments as a measured lesion. `dominance.study_dominance`,
    `findings.study_findings` and `syntax_score` then run on them as `analyze` runs them."""
    known = truth_findings(truth["lesions"])
    return [{"path": f"series {view['series_number']}", "frame": view["best_frame"],
             "view": view["view"], "side": view["laterality"],
             "segments": list(view["visible_segments"]),
             "stenoses": [{**unmeasured(), **lesion, "confidence": 1.0} for lesion in known
                          if lesion["segment"] in view["visible_segments"]]}
            for view in truth["views"]]


def _score(findings: Sequence[Mapping[str, Any]], weights: str) -> dict[str, Any]:
    column = 0 if weights == "right" else 1
    scored, excluded = [], []
    for finding in findings:
        reason = _exclusion(finding, WEIGHTS[str(finding["segment"])][column], weights)
        if reason:
            excluded.append({"segment": finding["segment"], "reason": reason})
        else:
            scored.append(finding)
    lesions = [_lesion_terms(f, WEIGHTS[str(f["segment"])][column]) for f in scored]
    _add_branch_points(scored, lesions)
    for lesion in lesions:
        lesion["score"] = lesion["weight"] * lesion["multiplier"] + sum(lesion["adverse"].values())
    not_assessed = sorted({item for lesion in lesions for item in lesion["not_assessed"]})
    return {"value": sum(lesion["score"] for lesion in lesions), "dominance": weights,
            "lesions": lesions, "excluded": excluded,
            "not_assessed": [*not_assessed, *NEVER_ASSESSED]}


def _exclusion(finding: Mapping[str, Any], weight: float | None, weights: str) -> str | None:
    """Why a finding is not a scored lesion, or None when it is one."""
    percent = 100.0 if finding.get("cto") else finding.get("stenosis_percent")
    reference = finding.get("reference_mm")
    if percent is None:
        return "severity not measured"
    if percent < SIGNIFICANT_PERCENT:
        return f"{percent:.0f} % < {SIGNIFICANT_PERCENT:.0f} %"
    if reference is not None and reference < MIN_VESSEL_MM:
        return f"vessel {reference:.1f} mm < {MIN_VESSEL_MM} mm"
    if weight is None:
        return f"segment {finding['segment']} does not exist in {weights} dominance"
    return None


def _lesion_terms(finding: Mapping[str, Any], weight: float) -> dict[str, Any]:
    """A scored lesion's weight, multiplication factor and the adverse points the finding
    measures (the branch points are added afterwards, over all lesions)."""
    occluded = bool(finding.get("cto"))
    adverse: dict[str, float] = {}
    missing: list[str] = []
    if occluded:
        adverse["total_occlusion_age_unknown"] = 1.0
    length = finding.get("length_mm")
    if length is None:
        missing.append("length > 20 mm")
    elif length > LONG_LESION_MM:
        adverse["length_over_20mm"] = 1.0
    if not finding.get("calcification_assessed"):
        missing.append("heavy calcification")
    elif finding.get("calcification") == "severe":
        adverse["heavy_calcification"] = 2.0
    if not finding.get("thrombus_assessed"):
        missing.append("thrombus")
    elif finding.get("thrombus") is True:
        adverse["thrombus"] = 1.0
    if finding.get("adjacent_segments") is None:
        missing.append("bifurcation / trifurcation")
    return {"segment": finding["segment"],
            "stenosis_percent": 100.0 if occluded else float(finding["stenosis_percent"]),
            "occlusion": occluded, "weight": weight,
            "multiplier": OCCLUSION_FACTOR if occluded else STENOSIS_FACTOR,
            "adverse": adverse, "not_assessed": missing, "notes": []}


def branch_point(number: str, adjacent: Iterable[str] | None) -> tuple[str, ...] | None:
    """The junction a lesion on segment `number` sits at: the tutorial's trifurcation or
    bifurcation whose other segments all lie around the lesion (`adjacent`, the segments the
    SYNTAX model sees there); None when it sits at none or the neighbourhood is unknown."""
    if adjacent is None:
        return None
    around = {*adjacent, number}
    for junction in (*TRIFURCATIONS, *BIFURCATIONS):
        if number in junction and around.issuperset(junction):
            return junction
    return None


def _add_branch_points(findings: Sequence[Mapping[str, Any]],
                       lesions: list[dict[str, Any]]) -> None:
    """Bifurcation and trifurcation points, once per junction, on its first lesion."""
    at: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for finding, lesion in zip(findings, lesions, strict=True):
        junction = branch_point(str(finding["segment"]), finding.get("adjacent_segments"))
        if junction:
            at.setdefault(junction, []).append(lesion)
    for junction, members in at.items():
        diseased = [lesion["segment"] for lesion in members]
        name = "/".join(junction)
        first = members[0]
        if junction in TRIFURCATIONS:
            first["adverse"]["trifurcation"] = 2.0 + len(diseased)
            first["notes"].append(f"trifurcation {name}, {len(diseased)} diseased segment(s)")
        elif junction[-1] in diseased:
            first["adverse"]["bifurcation"] = 2.0
            first["notes"].append(f"bifurcation {name}, side branch #{junction[-1]} diseased")
        else:
            first["adverse"]["bifurcation"] = 1.0
            first["notes"].append(f"bifurcation {name}, side branch #{junction[-1]} not "
                                  "diseased (Medina x,x,0)")
        for other in members[1:]:
            other["notes"].append(f"at the {name} junction scored with #{first['segment']}")

