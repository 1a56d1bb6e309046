"""Dominance and the anatomical SYNTAX score: published weights, adverse points, and the score
of simulated studies' truth equal through the findings path and scored directly."""

import pytest

from angioscribe.anatomy import SEGMENTS
from angioscribe.dominance import counterpart, name_for_dominance, study_dominance
from angioscribe.findings import StenosisFinding, not_assessed, study_findings
from angioscribe.sim import simulate_study
from angioscribe.syntax_score import WEIGHTS, syntax_score, truth_frames, truth_syntax_score


def finding(segment: str, percent: float | None, **extra) -> dict:
    """A study finding with only the keys the score reads."""
    return {"segment": segment, "stenosis_percent": percent, "cto": (percent or 0) >= 100,
            "length_mm": None, "reference_mm": None, "adjacent_segments": None,
            **not_assessed(), **extra}


def test_every_segment_has_its_weights_and_the_published_ones_hold():
    assert set(WEIGHTS) == set(SEGMENTS)
    assert WEIGHTS["5"] == (5.0, 6.0) and WEIGHTS["6"] == (3.5, 3.5)
    assert WEIGHTS["4"] == (1.0, None) and WEIGHTS["15"] == (None, 1.0)
    assert WEIGHTS["11"] == (1.5, 2.5) and WEIGHTS["13"] == (0.5, 1.5)


@pytest.mark.parametrize(("findings", "dominance", "expected"), [
    ([finding("6", 90)], "right", 7.0),  # 3.5 x 2
    ([finding("5", 70)], "right", 10.0),  # 5 x 2
    ([finding("5", 70)], "left", 12.0),  # 6 x 2
    ([finding("1", 100)], "right", 6.0),  # 1 x 5, +1 occlusion age unknown
    ([finding("1", 80)], "left", 0.0),  # a non-dominant RCA weighs 0
    ([finding("15", 60)], "left", 2.0),
    ([finding("6", 90), finding("11", 75), finding("2", 40)], "co-dominant", 10.0),
])
def test_hand_computed_scores(findings, dominance, expected):
    score = syntax_score(findings, dominance)
    assert score["value"] == expected
    assert score["dominance"] == ("left" if dominance == "left" else "right")


def test_adverse_points_only_where_assessed():
    plain = finding("7", 75, length_mm=25.0)
    known = finding("7", 75, length_mm=25.0, calcification="severe", calcification_assessed=True,
                    thrombus=True, thrombus_assessed=True)
    (unassessed,) = syntax_score([plain], "right")["lesions"]
    (assessed,) = syntax_score([known], "right")["lesions"]
    assert unassessed["adverse"] == {"length_over_20mm": 1.0} and unassessed["score"] == 6.0
    assert {"heavy calcification", "thrombus"} <= set(unassessed["not_assessed"])
    assert assessed["adverse"] == {"length_over_20mm": 1.0, "heavy_calcification": 2.0,
                                   "thrombus": 1.0}
    assert assessed["score"] == 2.5 * 2 + 4


def test_lesions_that_are_not_scored_say_why():
    score = syntax_score([finding("6", 40), finding("7", 80, reference_mm=1.2),
                          finding("9", None), finding("15", 70)], "right")
    assert score["value"] == 0 and not score["lesions"]
    reasons = {entry["segment"]: entry["reason"] for entry in score["excluded"]}
    assert reasons["6"].startswith("40 %") and "1.2 mm" in reasons["7"]
    assert reasons["9"] == "severity not measured" and "right dominance" in reasons["15"]


def test_branch_points_from_the_segments_around_a_lesion():
    alone = syntax_score([finding("6", 80, adjacent_segments=["6", "7", "9"])], "right")
    assert alone["lesions"][0]["adverse"] == {"bifurcation": 1.0}
    both = syntax_score([finding("6", 80, adjacent_segments=["6", "7", "9"]),
                         finding("9", 70, adjacent_segments=["6", "7", "9"])], "right")
    six, nine = both["lesions"]
    assert six["adverse"] == {"bifurcation": 2.0} and not nine["adverse"]  # Medina x,x,1: once
    left_main = syntax_score([finding("5", 60, adjacent_segments=["6", "11", "12"])], "right")
    assert left_main["lesions"][0]["adverse"] == {"trifurcation": 3.0}
    mid = syntax_score([finding("6", 80, adjacent_segments=["6"])], "right")
    assert not mid["lesions"][0]["adverse"]


def test_unknown_dominance_is_scored_as_right_and_says_so():
    score = syntax_score([finding("3", 80), finding("11", 80), finding("13", 80)], "unknown")
    assert score["dominance_assumed"] and score["value"] == 2.0 + 3.0 + 1.0
    assert score["if_left_dominant"] == 0.0 + 5.0 + 3.0
    assert not syntax_score([finding("11", 80)], "left")["dominance_assumed"]


def frame(side: str, segments: list[str]) -> dict:
    return {"path": f"{side}.dcm", "frame": 1, "view": None, "side": side, "segments": segments}


def test_dominance_is_the_injection_that_fills_the_posterior_territory():
    right = frame("RCA", ["1", "2", "3", "4", "16"])
    left = frame("LCA", ["5", "11", "13", "14", "15"])
    right_only_posterolateral = frame("LCA", ["5", "11", "13", "14"])
    assert study_dominance([right, right_only_posterolateral])["value"] == "right"
    assert study_dominance([left, frame("RCA", ["1", "2"])])["value"] == "left"
    assert study_dominance([right, left])["value"] == "co-dominant"
    unknown = study_dominance([right_only_posterolateral, frame("RCA", ["1", "2", "3"])])
    assert unknown == {"value": "unknown", "evidence": []}
    (evidence,) = study_dominance([left])["evidence"]
    assert evidence["segments"] == ["15"] and evidence["side"] == "LCA"


def test_posterior_branches_are_numbered_by_the_artery_that_gives_them():
    assert [counterpart(n) for n in ("4", "15", "16", "16a", "16c", "6")] == [
        "15", "4", "14", "14a", None, None]
    assert name_for_dominance("4", "LCA", "left") == "15"
    assert name_for_dominance("16", "LCA", "left") == "14"
    assert name_for_dominance("4", "LCA", "right") == "4"  # the left does not give the PDA
    assert name_for_dominance("4", "RCA", "left") == "4"
    assert name_for_dominance("15", "RCA", "right") == "4"
    lesion = StenosisFinding("4", "RCA", 0.8, 1.0, (0, 0, 1, 1), [[0, 0]])
    lesion.measurement |= {"stenosis_percent": 70.0, "grade": "severe", "cto": False}
    frames = [{"path": "a.dcm", "frame": 2, "view": None, "side": "LCA",
               "stenoses": [lesion.to_dict()]}]
    (renamed,) = study_findings(frames, "left")
    assert renamed["segment"] == "15" and renamed["renamed_from"] == "4"
    assert renamed["laterality"] == "LCA" and renamed["label"] == "#15 left posterior descending"
    assert study_findings(frames, "right")[0]["segment"] == "4"


def test_simulated_truth_scores_the_same_through_the_findings_path():
    """Simulated studies of right, co and left dominance, one with an occlusion: the truth
    lesions put on the views that show them, consolidated per segment, with the dominance read
    from the views' segments, score what the truth scores."""
    truths = [simulate_study(seed).truth() for seed in (5, 6, 9, 10)]
    assert {truth["dominance"] for truth in truths} == {"right", "co", "left"}
    assert any(lesion["cto"] for truth in truths for lesion in truth["lesions"])
    for truth in truths:
        frames = truth_frames(truth)
        dominance = study_dominance(frames)["value"]
        expected = {"right": "right", "co": "right", "left": "left"}[truth["dominance"]]
        assert dominance == expected  # the sim's co-dominant LCX gives no PDA: right
        score = syntax_score(study_findings(frames, dominance), dominance)
        assert score["value"] == truth_syntax_score(truth)["value"]
        assert [lesion["segment"] for lesion in score["lesions"]] == [
            lesion["segment"] for lesion in truth_syntax_score(truth)["lesions"]]
