"""Coronary dominance of a study from the segments its views show, and what it changes in naming.

Dominance is which coronary supplies the posterior descending artery (PDA): the right (RCA,
segment #4) in about 80 % of people, the left circumflex (#15) in about 10 %, both in the rest.
It decides the SYNTAX score's segment weights (`angioscribe.syntax_score`) and how a posterior
branch is numbered: the PDA filled by a left injection is the LCX's PDA, #15, whatever the
segmentation model called it.

The evidence is the injection that fills the posterior territory: a frame of a right injection
whose segments include a PDA (#4 or #15) or a right posterolateral branch (#16, #16a-c) says the
RCA reaches the crux; a frame of a left injection whose segments include a PDA says the LCX does.
The left posterolateral (#14) is no evidence: a right-dominant LCX often ends in one. The
injection is the key-frame classifier's `side`; the segments are those the SYNTAX model's tuned
rules keep (they drop branches the model is unsure of). No posterior segment seen in any view
gives "unknown", not the commoner right dominance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from angioscribe.anatomy import SEGMENTS, segment

Dominance = Literal["right", "left", "co-dominant", "unknown"]

POSTERIOR_DESCENDING = frozenset(n for n, s in SEGMENTS.items() if s.vessel == "PDA")
RIGHT_POSTEROLATERAL = frozenset(n for n, s in SEGMENTS.items()
                                 if s.vessel == "PL" and s.laterality == "RCA")
# Which dominance says that an injection of this side fills the posterior territory.
_SUPPLIES = {"RCA": ("right", "co-dominant"), "LCA": ("left", "co-dominant")}


def posterior_evidence(side: str | None, segments: Iterable[str]) -> list[str]:
    """The segments of one frame that show its injection filling the posterior territory."""
    seen = set(segments)
    telling = POSTERIOR_DESCENDING | (RIGHT_POSTEROLATERAL if side == "RCA" else frozenset())
    return [n for n in SEGMENTS if n in seen & telling] if side in _SUPPLIES else []


def study_dominance(frames: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The study's dominance from the frames read (analysis.json's `findings` entries: `side`,
    `segments`, `path`, `frame`, `view`), with the frames that decided it.

    Right when only right injections show the posterior territory, left when only left ones
    do, co-dominant when both do, unknown when none does.
    """
    evidence = []
    for frame in frames:
        shown = posterior_evidence(frame.get("side"), frame.get("segments", []))
        if shown:
            evidence.append({"path": frame.get("path"), "frame": frame.get("frame"),
                             "view": frame.get("view"), "side": frame["side"],
                             "segments": shown})
    sides = {entry["side"] for entry in evidence}
    value: Dominance = ("co-dominant" if sides == {"RCA", "LCA"} else "right" if sides == {"RCA"}
                        else "left" if sides == {"LCA"} else "unknown")
    return {"value": value, "evidence": evidence}


def counterpart(number: str) -> str | None:
    """The other coronary's segment for a posterior branch: #4 <-> #15, #16 <-> #14,
    #16a <-> #14a, #16b <-> #14b (the PDA and the posterolaterals, numbered by the artery that
    gives them); None for any other segment and for #16c, which has no left twin."""
    own = segment(number)
    if own.vessel not in ("PDA", "PL"):
        return None
    letter = own.number.lstrip("0123456789")
    twins = [s.number for s in SEGMENTS.values() if s.vessel == own.vessel
             and s.laterality != own.laterality and s.number.lstrip("0123456789") == letter]
    return twins[0] if twins else None


def name_for_dominance(number: str, side: str | None, dominance: str) -> str:
    """A lesion's segment as the study's dominance numbers it.

    A posterior branch named on the other coronary than the injection that shows it (#4 on a
    left injection) is that injection's own branch when the dominance says the injection
    supplies the posterior territory: in a left-dominant study, a PDA filled by the left
    coronary is the LCX's PDA, #15. Anything else keeps its name.
    """
    twin = counterpart(number)
    if twin is None or side not in _SUPPLIES or segment(number).laterality == side:
        return number
    return twin if dominance in _SUPPLIES[side] else number
