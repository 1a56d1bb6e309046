"""Coronary vocabulary shared by every step: segments, lateralities, vessels, views.

Every module that names a piece of coronary anatomy (ARCADE import, the segmenter, findings, the
report writer and the report parser, DeepCORO-style study heads) goes through this table, so that
"#6", ARCADE category 6, DeepCORO's "Proximal LAD", "prox LAD" and "LAD近位部" are provably the same
segment. Numbering follows SYNTAX (the AHA scheme extended by SYNTAX and used by ARCADE).

`docs/anatomy.md` is rendered from this module: `python -m angioscribe.anatomy > docs/anatomy.md`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Laterality = Literal["LCA", "RCA"]
Territory = Literal["LM", "LAD", "LCX", "RCA"]


@dataclass(frozen=True)
class Segment:
    """One SYNTAX coronary segment and every name the project's sources give it.

    `vessel` is the artery the segment belongs to in SYNTAX terms. "PDA" and "PL" occur on both
    sides (4/16 from the RCA, 15/14 from a dominant LCX); `laterality` tells them apart.
    """

    number: str
    arcade_id: int
    laterality: Laterality
    vessel: str
    name_en: str
    name_ja: str
    deepcoro: str | None
    aliases_en: tuple[str, ...] = ()
    aliases_ja: tuple[str, ...] = ()


# SYNTAX order: RCA first (1-4, 16-16c), then the left system (5-15 with letters).
# The ARCADE ids are the dataset's category ids, which follow a different order (9a is 10, 12b 24).
# fmt: off
_SEGMENT_TABLE: tuple[Segment, ...] = (
    Segment(
        "1", 1, "RCA", "RCA", "proximal RCA", "RCA近位部", "Proximal RCA",
        ("prox RCA", "RCA proximal", "pRCA", "proximal right coronary artery"),
        ("右冠動脈近位部", "RCA入口部"),
    ),
    Segment(
        "2", 2, "RCA", "RCA", "mid RCA", "RCA中間部", "Mid RCA",
        ("middle RCA", "RCA mid", "mRCA", "mid right coronary artery"),
        ("右冠動脈中間部", "RCA中部"),
    ),
    Segment(
        "3", 3, "RCA", "RCA", "distal RCA", "RCA遠位部", "Distal RCA",
        ("dist RCA", "RCA distal", "dRCA", "distal right coronary artery"),
        ("右冠動脈遠位部",),
    ),
    Segment(
        "4", 4, "RCA", "PDA", "right posterior descending", "RCA後下行枝", "PDA",
        ("PDA", "RPDA", "R-PDA", "PD", "posterior descending", "posterior descending artery"),
        ("後下行枝", "4PD", "右冠動脈後下行枝"),
    ),
    Segment(
        "16", 20, "RCA", "PL", "right posterolateral", "RCA後側壁枝", "Posterolateral",
        ("RPL", "R-PL", "PLB", "RPLB", "posterolateral branch", "posterolateral branch of RCA"),
        ("4AV", "房室枝", "右冠動脈後側壁枝"),
    ),
    Segment(
        "16a", 21, "RCA", "PL", "first right posterolateral", "RCA第一後側壁枝", "Posterolateral",
        ("RPL1", "1st right posterolateral"),
        ("RCA第1後側壁枝",),
    ),
    Segment(
        "16b", 22, "RCA", "PL", "second right posterolateral", "RCA第二後側壁枝", "Posterolateral",
        ("RPL2", "2nd right posterolateral"),
        ("RCA第2後側壁枝",),
    ),
    Segment(
        "16c", 23, "RCA", "PL", "third right posterolateral", "RCA第三後側壁枝", "Posterolateral",
        ("RPL3", "3rd right posterolateral"),
        ("RCA第3後側壁枝",),
    ),
    Segment(
        "5", 5, "LCA", "LM", "left main", "左主幹部", "Left Main",
        ("LM", "LMT", "LMCA", "LMS", "left main trunk", "left main stem",
         "left main coronary artery"),
        ("左主幹", "主幹部", "左冠動脈主幹部"),
    ),
    Segment(
        "6", 6, "LCA", "LAD", "proximal LAD", "LAD近位部", "Proximal LAD",
        ("prox LAD", "LAD proximal", "pLAD", "proximal left anterior descending"),
        ("前下行枝近位部", "左前下行枝近位部"),
    ),
    Segment(
        "7", 7, "LCA", "LAD", "mid LAD", "LAD中間部", "Mid LAD",
        ("middle LAD", "LAD mid", "mLAD", "mid left anterior descending"),
        ("前下行枝中間部", "左前下行枝中間部", "LAD中部"),
    ),
    Segment(
        "8", 8, "LCA", "LAD", "distal LAD", "LAD遠位部", "Distal LAD",
        ("dist LAD", "LAD distal", "dLAD", "apical LAD", "distal left anterior descending"),
        ("前下行枝遠位部", "左前下行枝遠位部"),
    ),
    Segment(
        "9", 9, "LCA", "D1", "first diagonal", "第一対角枝", "D1",
        ("1st diagonal", "D1", "diagonal 1", "first diagonal branch"),
        ("第1対角枝",),
    ),
    Segment(
        "9a", 10, "LCA", "D1", "first diagonal a", "第一対角枝a", "D1",
        ("D1a", "1st diagonal a"),
        ("第1対角枝a",),
    ),
    Segment(
        "10", 11, "LCA", "D2", "second diagonal", "第二対角枝", "D2",
        ("2nd diagonal", "D2", "diagonal 2", "second diagonal branch"),
        ("第2対角枝",),
    ),
    Segment(
        "10a", 12, "LCA", "D2", "second diagonal a", "第二対角枝a", "D2",
        ("D2a", "2nd diagonal a"),
        ("第2対角枝a",),
    ),
    Segment(
        "11", 13, "LCA", "LCX", "proximal LCX", "LCX近位部", "Proximal LCX",
        ("prox LCX", "LCX proximal", "pLCX", "proximal Cx", "proximal circumflex",
         "proximal left circumflex"),
        ("回旋枝近位部", "左回旋枝近位部"),
    ),
    Segment(
        "12", 14, "LCA", "RI", "ramus intermedius", "中間枝", "RI",
        ("RI", "ramus", "intermediate artery", "intermediate branch", "intermediate/anterolateral"),
        ("高位側壁枝", "HL"),
    ),
    Segment(
        "12a", 15, "LCA", "OM1", "first obtuse marginal", "第一鈍縁枝", "OM1",
        ("1st obtuse marginal", "OM1", "OM", "obtuse marginal", "obtuse marginal 1"),
        ("第1鈍縁枝", "第一鈍角枝", "鈍縁枝", "鈍角枝"),
    ),
    Segment(
        "12b", 24, "LCA", "OM2", "second obtuse marginal", "第二鈍縁枝", "OM2",
        ("2nd obtuse marginal", "OM2", "obtuse marginal 2"),
        ("第2鈍縁枝", "第二鈍角枝"),
    ),
    Segment(
        "13", 16, "LCA", "LCX", "distal LCX", "LCX遠位部", "Mid LCX",
        ("dist LCX", "LCX distal", "dLCX", "mid LCX", "distal Cx", "distal circumflex",
         "distal left circumflex"),
        ("回旋枝遠位部", "左回旋枝遠位部"),
    ),
    Segment(
        "14", 17, "LCA", "PL", "left posterolateral", "LCX後側壁枝", "LVP",
        ("LPL", "L-PL", "LVP", "left ventricular posterior", "posterolateral branch of LCX"),
        ("後側壁枝", "回旋枝後側壁枝"),
    ),
    Segment(
        "14a", 18, "LCA", "PL", "left posterolateral a", "LCX後側壁枝a", "LVP",
        ("LPLa",),
        ("回旋枝後側壁枝a",),
    ),
    Segment(
        "14b", 25, "LCA", "PL", "left posterolateral b", "LCX後側壁枝b", "LVP",
        ("LPLb",),
        ("回旋枝後側壁枝b",),
    ),
    Segment(
        "15", 19, "LCA", "PDA", "left posterior descending", "LCX後下行枝", "Distal LCX",
        ("L-PDA", "LPDA", "left PDA", "posterior descending branch of LCX"),
        ("回旋枝後下行枝",),
    ),
)
# fmt: on

SEGMENTS: dict[str, Segment] = {s.number: s for s in _SEGMENT_TABLE}
_BY_ARCADE_ID: dict[int, Segment] = {s.arcade_id: s for s in _SEGMENT_TABLE}

ARCADE_STENOSIS_ID = 26

# Extended Table 9 of DeepCORO-CLIP, in the paper's order and spelling. They split the LCX into
# Proximal (11), Mid (13) and Distal (15, the dominant LCX end) and keep OM1/RI apart, hence 18.
DEEPCORO_SEGMENTS: tuple[str, ...] = (
    "Left Main", "Proximal LAD", "Mid LAD", "Distal LAD", "D1", "D2", "RI",
    "Proximal LCX", "Mid LCX", "Distal LCX", "LVP", "OM1", "OM2",
    "Proximal RCA", "Mid RCA", "Distal RCA", "PDA", "Posterolateral",
)

deepcoro_to_syntax: dict[str, tuple[str, ...]] = {
    name: tuple(s.number for s in _SEGMENT_TABLE if s.deepcoro == name)
    for name in DEEPCORO_SEGMENTS
}

DEEPCORO_LATERALITY: dict[str, Laterality] = {
    name: SEGMENTS[numbers[0]].laterality for name, numbers in deepcoro_to_syntax.items()
}


def _normalise_term(text: str) -> str:
    """Fold the spellings a report writer varies without meaning anything by it.

    NFKC turns full-width "ＬＡＤ" or "第１" into ASCII; case, dots, hyphens and repeated spaces
    carry no meaning in segment names.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[.\-_]", " ", folded).split())


def _build_alias_index(segments: Iterable[Segment]) -> dict[str, str]:
    """Map every normalised name and alias to its segment number, refusing ambiguity.

    A parser that silently picked one of two segments for the same word would reintroduce the
    numbering errors this project exists to remove, so a clash is an error at import time.
    """
    index: dict[str, str] = {}
    for seg in segments:
        for term in (seg.name_en, seg.name_ja, *seg.aliases_en, *seg.aliases_ja):
            key = _normalise_term(term)
            owner = index.setdefault(key, seg.number)
            if owner != seg.number:
                raise ValueError(f"alias {term!r} names both segment {owner} and {seg.number}")
    return index


ALIAS_TO_NUMBER: dict[str, str] = _build_alias_index(_SEGMENT_TABLE)

# Vessel-level words ("the LAD", "回旋枝") name several segments at once, so they live apart from
# the segment aliases; the keys are the vessel codes used in `Segment.vessel` and territories.
VESSEL_ALIASES: dict[str, tuple[str, ...]] = {
    "RCA": ("RCA", "right coronary artery", "right coronary", "右冠動脈", "右冠"),
    "LM": ("LM", "LMT", "left main", "左主幹部", "左主幹"),
    "LAD": ("LAD", "left anterior descending", "前下行枝", "左前下行枝"),
    "LCX": ("LCX", "Cx", "circumflex", "left circumflex", "回旋枝", "左回旋枝"),
    "D1": ("D1", "first diagonal", "第一対角枝"),
    "D2": ("D2", "second diagonal", "第二対角枝"),
    "RI": ("RI", "ramus intermedius", "中間枝"),
    "OM1": ("OM1", "first obtuse marginal", "第一鈍縁枝"),
    "OM2": ("OM2", "second obtuse marginal", "第二鈍縁枝"),
    "PDA": ("PDA", "posterior descending", "後下行枝"),
    "PL": ("PL", "posterolateral", "後側壁枝"),
}


_NUMBER_PREFIX = re.compile(r"^(?:seg(?:ment)?\.?)?\s*#?\s*", re.IGNORECASE)


def segment(number: str) -> Segment:
    """The segment for a SYNTAX number written as "6", "#6", "seg 6", "Segment 9a" or "＃６".

    Raises KeyError naming the input and the valid numbers, because a silently wrong segment
    would be worse than a stopped one.
    """
    key = _NUMBER_PREFIX.sub("", unicodedata.normalize("NFKC", str(number)).strip()).lower()
    try:
        return SEGMENTS[key]
    except KeyError:
        valid = ", ".join(SEGMENTS)
        raise KeyError(f"unknown SYNTAX segment {number!r}; expected one of {valid}") from None


def segment_by_arcade_id(cat_id: int) -> Segment:
    """The segment for an ARCADE COCO category id (1..25; 26 is stenosis, not a segment)."""
    try:
        return _BY_ARCADE_ID[cat_id]
    except KeyError:
        hint = " (26 is the stenosis category)" if cat_id == ARCADE_STENOSIS_ID else ""
        raise KeyError(f"ARCADE category id {cat_id!r} is not a segment{hint}; "
                       f"segments are 1..{len(_BY_ARCADE_ID)}") from None


def segment_by_alias(term: str) -> Segment:
    """The segment a free-text name denotes ("prox LAD", "OM1", "左主幹部"), case-insensitive."""
    try:
        return SEGMENTS[ALIAS_TO_NUMBER[_normalise_term(term)]]
    except KeyError:
        raise KeyError(f"no coronary segment is called {term!r}") from None


def arcade_categories() -> list[dict]:
    """COCO `categories` exactly as ARCADE ships them: ids 1..25 segments, 26 stenosis."""
    categories = [{"id": s.arcade_id, "name": s.number, "supercategory": ""}
                  for s in sorted(_SEGMENT_TABLE, key=lambda s: s.arcade_id)]
    categories.append({"id": ARCADE_STENOSIS_ID, "name": "stenosis", "supercategory": ""})
    return categories


def label_en(number: str) -> str:
    """English label as report writers cite it, number first: "#6 proximal LAD"."""
    seg = segment(number)
    return f"#{seg.number} {seg.name_en}"


def label_ja(number: str) -> str:
    """Japanese label, name first as in Japanese reports: "LAD近位部 #6"."""
    seg = segment(number)
    return f"{seg.name_ja} #{seg.number}"


def laterality_of_segments(numbers: Iterable[str]) -> Laterality | None:
    """The coronary side an image shows, judged from the segments found in it.

    An LCA injection can reflux into or collateralise a right-sided branch, and a segmenter can
    emit a stray small polygon, so one odd segment must not flip the answer: the side with more
    distinct segments wins. A segment split into several polygons counts once. With no segments,
    or as many on each side, the image does not tell, and None says so instead of guessing.
    """
    sides = Counter(seg.laterality for seg in {segment(n) for n in numbers})
    if sides["LCA"] == sides["RCA"]:
        return None
    return "LCA" if sides["LCA"] > sides["RCA"] else "RCA"


_LEFT_VESSEL_TERRITORY: dict[str, Territory] = {
    "LM": "LM", "LAD": "LAD", "D1": "LAD", "D2": "LAD",
    "LCX": "LCX", "RI": "LCX", "OM1": "LCX", "OM2": "LCX", "PL": "LCX", "PDA": "LCX",
}


def vessel_territory(number: str) -> Territory:
    """The main vessel whose disease a lesion in this segment counts toward.

    Treatment rules speak of left-main and one-, two- or three-vessel disease; diagonals count
    as LAD, and the ramus, marginals and a dominant LCX's PL/PDA as LCX (the ramus supplies the
    lateral wall as a marginal does). Right-sided PDA and PL belong to the RCA.
    """
    seg = segment(number)
    if seg.laterality == "RCA":
        return "RCA"
    return _LEFT_VESSEL_TERRITORY[seg.vessel]


# Extended Table 1 of DeepCORO-CLIP, in the paper's order and spelling.
VIEWS: tuple[str, ...] = (
    "RAO Cranial", "AP Cranial", "LAO Cranial",
    "RAO Straight", "AP", "RAO Caudal", "AP Caudal", "LAO Caudal",
    "LAO Straight", "LAO Lateral", "RAO Lateral", "Other",
)

# The paper's bands in degrees. Its ranges share their endpoints (RAO "-45 to -15", AP "-15 to
# 15"); a shared endpoint goes to the band nearer 0 (AP / straight), because 15 degrees is the
# least angulation the paper calls oblique, so exactly 15 is not yet beyond it. Outer limits
# (45, 70, 110) are inclusive; angles in the gaps (45-70, beyond 110, beyond 45 cranio-caudal)
# are "Other", as the paper defines.
_CENTRAL = 15.0
_OBLIQUE = 45.0
_LATERAL = (70.0, 110.0)


def _axis_band(angle: float) -> Literal["negative", "central", "positive"] | None:
    """Which of the three bands (-45..-15, -15..15, 15..45) an angle falls in, if any."""
    if abs(angle) <= _CENTRAL:
        return "central"
    if abs(angle) <= _OBLIQUE:
        return "positive" if angle > 0 else "negative"
    return None


def view_from_angles(primary: float | None, secondary: float | None) -> str | None:
    """DeepCORO-CLIP view class from DICOM PositionerPrimaryAngle / PositionerSecondaryAngle.

    DICOM signs: primary < 0 is RAO, > 0 LAO; secondary < 0 caudal, > 0 cranial. A missing (or
    NaN) angle gives None: a view guessed from half the geometry would be fed to a view-aware
    model as fact.
    """
    if primary is None or secondary is None or math.isnan(primary) or math.isnan(secondary):
        return None
    tilt = _axis_band(secondary)
    if tilt is None:
        return "Other"
    if _LATERAL[0] <= abs(primary) <= _LATERAL[1]:
        if tilt != "central":
            return "Other"
        return "LAO Lateral" if primary > 0 else "RAO Lateral"
    rotation = _axis_band(primary)
    if rotation is None:
        return "Other"
    side = {"negative": "RAO", "central": "AP", "positive": "LAO"}[rotation]
    if tilt == "central":
        return "AP" if side == "AP" else f"{side} Straight"
    return f"{side} {'Cranial' if tilt == 'positive' else 'Caudal'}"


def _table(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown() -> str:
    """The text of docs/anatomy.md, so the documentation cannot drift from the code."""
    segments = _table(
        ("SYNTAX", "ARCADE id", "Side", "Vessel", "Territory", "English", "日本語",
         "DeepCORO-CLIP"),
        ((s.number, str(s.arcade_id), s.laterality, s.vessel, vessel_territory(s.number),
          s.name_en, s.name_ja, s.deepcoro or "") for s in SEGMENTS.values()),
    )
    aliases = _table(
        ("SYNTAX", "English aliases", "Japanese aliases"),
        ((s.number, ", ".join(s.aliases_en), "、".join(s.aliases_ja)) for s in SEGMENTS.values()),
    )
    deepcoro = _table(
        ("DeepCORO-CLIP segment", "Side", "SYNTAX"),
        ((name, DEEPCORO_LATERALITY[name], ", ".join(numbers))
         for name, numbers in deepcoro_to_syntax.items()),
    )
    vessels = _table(
        ("Vessel", "Aliases"),
        ((code, ", ".join(words)) for code, words in VESSEL_ALIASES.items()),
    )
    return f"""# Coronary anatomy vocabulary

<!-- Generated by `python -m angioscribe.anatomy > docs/anatomy.md`; do not edit by hand. -->

`angioscribe.anatomy` is the single table every module uses to name coronary anatomy. Segment
numbers follow SYNTAX (the AHA scheme with SYNTAX's lettered branches), as in ARCADE. Segments
1-4 and 16-16c are right coronary (RCA), 5-15 with their letters left coronary (LCA).

## Segments

{segments}

ARCADE category {ARCADE_STENOSIS_ID} is "stenosis", not a segment. `label_en("6")` gives
"{label_en("6")}", `label_ja("6")` gives "{label_ja("6")}".

Territories serve treatment rules (left-main and one/two/three-vessel disease): diagonals count as
LAD; ramus, marginals and a dominant LCX's posterolateral and PDA count as LCX.

## Aliases (for report parsing)

Matching ignores case, full-width characters, dots, hyphens and extra spaces. No alias names two
segments (checked at import). Words that are genuinely ambiguous are left out on purpose:

- bare "PL": Japanese reports use it for #14 (LCX posterolateral), English ones for the RCA's
  posterolateral branch (#16). "後側壁枝" alone is #14 (Japanese AHA usage), "4AV" is #16.
- "PDA" / "後下行枝" alone mean the RCA's PDA (#4, right dominance is the usual case); the LCX's is
  "L-PDA" / "回旋枝後下行枝" (#15).
- "OM" / "obtuse marginal" / "鈍縁枝" alone mean the first marginal (#12a).
- Japanese reports that number by the 1975 AHA 15-segment scheme call the obtuse marginal "#12",
  which is the ramus intermedius in SYNTAX/ARCADE; a parser must decide from context
  (e.g. "OM #12").
- Septal branches ("LAD septal") have no SYNTAX number.

{aliases}

Vessel-level words (several segments at once):

{vessels}

## DeepCORO-CLIP segments

DeepCORO-CLIP reports 18 segments (their Extended Table 9 order). They split the circumflex into
proximal (#11), mid (#13) and distal (#15, the end of a dominant LCX) and keep RI and OM1 apart.
Their "Distal LCX" is therefore #15, while "distal LCX" in a report (and as an alias) is #13.

{deepcoro}

## Views from positioner angles

DICOM PositionerPrimaryAngle < 0 is RAO, > 0 LAO; PositionerSecondaryAngle < 0 caudal, > 0 cranial.
Classes and bands are DeepCORO-CLIP's Extended Table 1:

| Band | Primary (degrees) | Secondary (degrees) |
|---|---|---|
| RAO / AP / LAO | -45..-15 / -15..15 / 15..45 | |
| Caudal / Straight / Cranial | | -45..-15 / -15..15 / 15..45 |
| RAO / LAO Lateral | -110..-70 / 70..110 | -15..15 |

The paper's ranges share their endpoints; angles of exactly +-15 are given to the central band
(AP / straight), since 15 degrees is the least angulation the paper calls oblique. Outer limits
are inclusive. Anything else is "Other"; a missing angle gives no view at all (None), never a
guess. Classes: {", ".join(VIEWS)}.
"""


if __name__ == "__main__":
    print(render_markdown(), end="")
