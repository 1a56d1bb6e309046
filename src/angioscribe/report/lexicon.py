"""The words the report parser knows, per language, as regular expressions with a meaning each.

Everything the parser recognises is listed here, so a reader can audit why a sentence parsed the
way it did. Segment and vessel names come from `angioscribe.anatomy` (one vocabulary for the
project); this module adds the words that describe lesions and plans. Texts are NFKC-normalised
before matching, so full-width "＃６" or "７５％" need no patterns of their own.

Each `Term` says what kind of mention a match is; `parse.py` decides what mentions mean together.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from angioscribe.anatomy import SEGMENTS, VESSEL_ALIASES
from angioscribe.report.language import Language

# Resolved stenosis for a grade word when the report gives no number: the lowest value of the
# AHA class the word names (25/50/75/90/99, as Japanese AHA grading writes them), so that
# "significant" is exactly significant and "severe" is beyond doubt. None: below threshold,
# value unknown.
GRADE_PERCENT: dict[str, int | None] = {
    "nonsignificant": None,
    "minimal": 25,
    "mild": 25,
    "moderate": 50,
    "significant": 75,
    "severe": 90,
    "subtotal": 99,
}

Value = Any | Callable[[re.Match[str]], Any]


@dataclass(frozen=True)
class Term:
    """One pattern and its meaning. `value` may compute the meaning from the match."""

    pattern: re.Pattern[str]
    kind: str
    value: Value = None
    priority: int = 0  # breaks ties between equally long matches at one place; lower wins

    def meaning(self, match: re.Match[str]) -> Any:
        return self.value(match) if callable(self.value) else self.value


def _bounded(regex: str) -> str:
    """Keep ASCII words whole ("RCA" not in "LRCA", "no" not in "non") but let them touch kana."""
    return rf"(?<![A-Za-z0-9])(?:{regex})(?![A-Za-z0-9])"


def _terms(kind: str, entries: Iterable[tuple[str, Value]], priority: int = 0) -> list[Term]:
    return [
        Term(re.compile(_bounded(regex), re.IGNORECASE), kind, value, priority)
        for regex, value in entries
    ]


def _number_term(regex: str) -> Term:
    """A "#" reference may touch the name before it ("LAD#7"); only its end must be whole."""
    return Term(
        re.compile(rf"(?:{regex})(?![A-Za-z0-9])", re.IGNORECASE), "number", _segment_numbers
    )


def _name_pattern(name: str) -> str:
    """A regex for a segment or vessel name that tolerates "mid-LAD", "prox. LAD", "Mid  RCA"."""
    parts = re.split(r"[\s.\-_]+", unicodedata.normalize("NFKC", name).strip())
    return r"[\s.\-_]*".join(re.escape(part) for part in parts if part)


# --- locations ---------------------------------------------------------------------------------

_NUMBER = r"\d{1,2}(?:[abc](?![a-z]))?(?!\d)(?!\s*(?:%|percent))"
_RANGE_JOINER = r"\s*(?:-|–|to|~|〜|から)\s*"


def _segment_numbers(match: re.Match[str]) -> tuple[str, ...] | None:
    """SYNTAX numbers a written reference names; "#6-8" is 6, 7, 8 along the LAD.

    A range covers the segments of one vessel between its ends (LAD 6-7-8, RCA 1-2-3, LCX 11-13,
    skipping the ramus #12); ends on different vessels give just the ends. Numbers that are no
    SYNTAX segment are dropped (a lettered one falls back to its base number).
    """
    numbers = [_known_number(raw) for raw in re.findall(_NUMBER, match.group(0), re.IGNORECASE)]
    numbers = [n for n in numbers if n]
    if not numbers:
        return None
    if len(numbers) == 2 and re.search(_RANGE_JOINER + r"#?\s*\d", match.group(0)):
        return _segment_range(*numbers)
    return tuple(dict.fromkeys(numbers))


def _known_number(raw: str) -> str | None:
    raw = raw.lower()
    if raw in SEGMENTS:
        return raw
    return raw.rstrip("abc") if raw.rstrip("abc") in SEGMENTS else None


def _segment_range(first: str, last: str) -> tuple[str, ...]:
    vessel = SEGMENTS[first].vessel
    if SEGMENTS[last].vessel != vessel:
        return (first, last)
    chain = [n for n, seg in SEGMENTS.items() if seg.vessel == vessel]
    lo, hi = sorted((chain.index(first), chain.index(last)))
    return tuple(chain[lo : hi + 1])


SEGMENT_NUMBER_TERMS = [
    _number_term(rf"#\s*{_NUMBER}(?:{_RANGE_JOINER}#?\s*{_NUMBER})?"),
    _number_term(
        rf"(?<![A-Za-z0-9])(?:seg(?:ment)?s?|セグメント)\.?\s*{_NUMBER}"
        rf"(?:(?:{_RANGE_JOINER}|\s*(?:,|and|&)\s*)(?:seg(?:ment)?\.?\s*)?{_NUMBER})*"
    ),
]

# Vessel words the anatomy table leaves out on purpose because they name no numbered segment:
# septal branches are LAD branches; an unnumbered "diagonal" or "marginal" is read as the
# first one, as anatomy reads bare "OM".
_EXTRA_VESSELS: tuple[tuple[str, str], ...] = (
    (r"(?:LAD\s+)?septal(?:\s+(?:branch|branches|perforators?))?", "LAD"),
    (r"(?:LAD|前下行枝)?(?:の)?中隔枝", "LAD"),
    (r"diagonal(?:\s+branch(?:es)?)?", "D1"),
    (r"対角枝", "D1"),
    (r"marginal(?:\s+branch(?:es)?)?", "OM1"),
    (r"LCx|circ", "LCX"),
)


def _location_terms() -> list[Term]:
    segment_names = [
        (_name_pattern(name), (seg.number,))
        for seg in SEGMENTS.values()
        for name in (seg.name_en, seg.name_ja, *seg.aliases_en, *seg.aliases_ja)
    ]
    vessel_names = [
        (_name_pattern(name), code) for code, names in VESSEL_ALIASES.items() for name in names
    ]
    # A segment name beats a vessel word spelled the same ("LM", "D1"): it is more specific.
    return [
        *SEGMENT_NUMBER_TERMS,
        *_terms("segment", segment_names, priority=0),
        *_terms("vessel", [*vessel_names, *_EXTRA_VESSELS], priority=1),
    ]


_POSITION_WORDS = {
    "prox": "proximal",
    "proximal": "proximal",
    "ostial": "proximal",
    "ostium": "proximal",
    "mid": "mid",
    "middle": "mid",
    "dist": "distal",
    "distal": "distal",
}


def _position(match: re.Match[str]) -> tuple[str, str]:
    """(position, binding): "proximal portion of the LAD" binds forward, "the RCA ... proximally"
    backward, a bare adjective ("proximal and mid LAD") forward to the next location named."""
    word, adverb, portion, of = match.group("pos", "ly", "portion", "of")
    position = _POSITION_WORDS[word.lower()]
    if of:
        return position, "forward"
    return position, "backward" if (adverb or portion) else "forward"


_EN_POSITION = _terms(
    "position",
    [
        (
            r"(?P<pos>prox(?:imal)?|ostial|ostium|mid(?:dle)?|dist(?:al)?)(?P<ly>ly)?"
            r"(?:\s+(?P<portion>portion|segment|part|third|section))?(?:\s+(?P<of>of)(?:\s+the)?)?",
            _position,
        )
    ],
)
_JA_POSITION = _terms(
    "position",
    [
        (r"(?:の)?(?:近位部?|入口部?)", ("proximal", "backward")),
        (r"(?:の)?(?:中間部?|中部)", ("mid", "backward")),
        (r"(?:の)?(?:遠位部?|末梢部?)", ("distal", "backward")),
    ],
)

# --- stenosis, occlusion, lesion features ------------------------------------------------------

_PCT = r"(\d{1,3})\s*(?:%|percent|per\s+cent|パーセント)"


def _percent(match: re.Match[str]) -> int | None:
    value = int(match.group(1))
    return value if value <= 100 else None


def _upper_of_range(match: re.Match[str]) -> int | None:
    """A range ("75-90%", "75ないし90%") resolves to its upper end: the worst the writer saw."""
    value = max(int(match.group(1)), int(match.group(2)))
    return value if value <= 100 else None


# One-sided bounds resolve to the closest whole percent the bound allows: "<50%" -> 49,
# ">90%" -> 91, "70%以上" -> 70. That keeps "<50% in the left main" below its 50% threshold.
_BOUND_SHIFT = {
    "<": -1,
    "less than": -1,
    "under": -1,
    "below": -1,
    "未満": -1,
    "≤": 0,
    "<=": 0,
    "up to": 0,
    "at most": 0,
    "以下": 0,
    ">": 1,
    "more than": 1,
    "greater than": 1,
    "over": 1,
    "above": 1,
    "exceeding": 1,
    "超": 1,
    "≥": 0,
    ">=": 0,
    "at least": 0,
    "以上": 0,
}
_EN_BOUNDS = "|".join(sorted((re.escape(k) for k in _BOUND_SHIFT if k.isascii()), key=len)[::-1])


def _bounded_percent(match: re.Match[str]) -> int | None:
    words = match.groupdict()
    value = int(words["value"]) + _BOUND_SHIFT[" ".join(words["op"].lower().split())]
    return value if 0 <= value <= 100 else None


_PERCENT_TERMS = _terms(
    "percent",
    [
        (
            rf"(\d{{1,3}})\s*(?:%|percent)?\s*(?:-|–|—|to|~|〜|ないし|から)\s*{_PCT}",
            _upper_of_range,
        ),
        (rf"(?P<op>{_EN_BOUNDS}|≤|≥)\s*(?P<value>\d{{1,3}})\s*(?:%|percent)", _bounded_percent),
        (r"(?P<value>\d{1,3})\s*%\s*(?P<op>以上|以下|未満|超)", _bounded_percent),
        (_PCT, _percent),
    ],
)

# Percentages that are not stenoses: a match here swallows the number so it is never read as one.
_IGNORED = _terms(
    "ignore",
    [
        (
            r"(?:LV\s*EF|LVEF|EF|ejection\s+fraction|駆出率|HbA1c|SpO2|SaO2)\s*(?:of|was|is|:|=|は)?\s*"
            r"\d{1,3}(?:\.\d+)?\s*(?:%|percent)?",
            None,
        )
    ],
)

_EN_FEATURES = [
    *_terms(
        "grade",
        [
            (
                r"non[\s-]?significant|insignificant|non[\s-]?obstructive|non[\s-]?critical"
                r"|non[\s-]?flow[\s-]?limiting",
                "nonsignificant",
            ),
            (r"minimal|minor|(?:luminal\s+|wall\s+)?irregularit(?:y|ies)", "minimal"),
            (r"mild(?:ly)?", "mild"),
            (r"moderate(?:ly)?|intermediate|borderline", "moderate"),
            (
                r"(?:hemodynamically\s+|angiographically\s+|functionally\s+)?significant(?:ly)?"
                r"|obstructive|flow[\s-]?limiting",
                "significant",
            ),
            (r"severe(?:ly)?|high[\s-]?grade|tight|critical(?:ly)?", "severe"),
            (
                r"sub[\s-]?total(?:ly)?(?:\s+occlu(?:sion|ded))?|near[\s-]?(?:total\s+)?occlu(?:sion|ded)"
                r"|functional(?:ly)?\s+(?:total\s+)?occlu(?:sion|ded)",
                "subtotal",
            ),
            (r"normal|patent|unremarkable|smooth", "normal"),
            (
                r"(?:angiographically\s+)?normal\s+coronar(?:y\s+arter(?:y|ies)|ies|y\s+angiogra(?:m|phy))",
                "normal_all",
            ),
        ],
    ),
    *_terms(
        "occlusion",
        [
            (r"chronic(?:ally)?\s+total(?:ly)?\s+occlu(?:sion|sions|ded)|CTO", "chronic"),
            (r"acute(?:ly)?\s+(?:total\s+)?occlu(?:sion|ded)", "acute"),
            (
                r"(?:total(?:ly)?|complete(?:ly)?|flush)\s+occlu(?:sion|sions|ded)|occlu(?:sion|sions|ded)",
                "total",
            ),
        ],
    ),
    *_terms(
        "stenosis",
        [
            (
                r"stenos(?:is|es|ed)|stenotic|restenosis|narrow(?:ing|ings|ed)|lesions?|plaques?|ISR"
                r"|disease|CAD|atherosclero(?:sis|tic)|obstruction",
                None,
            )
        ],
    ),
    *_terms(
        "thrombus", [(r"thromb(?:us|i|otic|osis)|(?:intraluminal\s+)?filling\s+defects?", None)]
    ),
    *_terms(
        "calcification",
        [
            (
                r"(?:(?:heav(?:y|ily)|severe(?:ly)?|moderate(?:ly)?|mild(?:ly)?|extensive(?:ly)?"
                r"|dense(?:ly)?)\s+)?calcifi(?:ed|cation|cations)|calcific",
                None,
            )
        ],
    ),
]

_JA_FEATURES = [
    *_terms(
        "grade",
        [
            (r"非有意", "nonsignificant"),
            (r"壁不整|軽微", "minimal"),
            (r"軽度", "mild"),
            (r"中等度", "moderate"),
            (r"有意", "significant"),
            (r"高度|重度|強度", "severe"),
            (r"亜完全閉塞|亜閉塞", "subtotal"),
            (r"正常|開存", "normal"),
            (r"正常冠動脈", "normal_all"),
        ],
    ),
    *_terms(
        "occlusion",
        [
            (r"慢性完全閉塞|CTO", "chronic"),
            (r"急性(?:完全)?閉塞", "acute"),
            (r"完全閉塞|閉塞|途絶", "total"),
        ],
    ),
    *_terms("stenosis", [(r"再?狭窄|病変|プラーク|狭小化|動脈硬化", None)]),
    *_terms("thrombus", [(r"血栓(?:像|性)?", None)]),
    *_terms("calcification", [(r"(?:高度|中等度|軽度)?石灰化", None)]),
]

# --- cues: negation, uncertainty, "respectively", sides, extent ---------------------------------

_EN_CUES = [
    *_terms(
        "negation",
        [
            (
                r"no\s+evidence\s+of|absence\s+of|free\s+of|negative\s+for|no|not|without|none|nor"
                r"|neither",
                "pre",
            ),
            (
                r"(?:(?:is|are|was|were|has\s+been|have\s+been)\s+)?(?:ruled\s+out|excluded|absent"
                r"|unlikely|not\s+(?:seen|present|observed|detected|identified|visuali[sz]ed))",
                "post",
            ),
        ],
    ),
    *_terms(
        "uncertain",
        [
            (
                r"possible|possibly|probable|probably|suspected|suspicious(?:\s+(?:for|of))?|likely"
                r"|questionable|equivocal|(?:cannot|can't|can\s+not)\s+be\s+(?:excluded|ruled\s+out)"
                r"|may\s+(?:be|represent)",
                None,
            )
        ],
    ),
    Term(re.compile(r"\?"), "uncertain"),
    *_terms("respectively", [(r"respectively", None)]),
    *_terms(
        "side",
        [
            (
                r"left\s+coronary\s+(?:angiogra(?:m|phy)|arteriogra(?:m|phy)|injection|system)|LCA"
                r"|left(?:[\s-]sided)?\s+(?:injection|system)",
                "LCA",
            ),
            (
                r"right\s+coronary\s+(?:angiogra(?:m|phy)|arteriogra(?:m|phy)|injection|system|tree)"
                r"|right(?:[\s-]sided)?\s+(?:injection|system)|RCA\s+(?:angiogra(?:m|phy)|injection)",
                "RCA",
            ),
        ],
    ),
    *_terms(
        "extent",
        [
            (
                r"(?P<n>one|single|two|double|three|triple|[123])[\s-]*vessel|(?P<m>[123])\s*-?\s*VD",
                lambda m: _EXTENT[(m.group("n") or m.group("m")).lower()],
            )
        ],
    ),
]
_EXTENT = {
    "one": 1,
    "single": 1,
    "1": 1,
    "two": 2,
    "double": 2,
    "2": 2,
    "three": 3,
    "triple": 3,
    "3": 3,
    "一": 1,
    "二": 2,
    "三": 3,
}

_JA_CUES = [
    *_terms(
        "negation",
        [
            (
                r"(?:を|は|が|も)?(?:認め|見られ|みられ|認められ|指摘され|確認され|確認でき|検出され|伴わ)"
                r"(?:ず|ない|ません|なかった)|(?:は|が|も)?(?:なし|無し|なく|ない(?!し)|ありません|ではない)"
                r"|否定的|陰性",
                "post",
            )
        ],
    ),
    *_terms(
        "uncertain",
        [
            (
                r"疑い|疑われ|疑う|可能性|否定できない|否定できず|否定しきれない|示唆|と思われ|考えられ",
                None,
            )
        ],
    ),
    Term(re.compile(r"\?"), "uncertain"),
    *_terms("respectively", [(r"それぞれ|各々", None)]),
    *_terms(
        "side",
        [
            (r"左冠(?:状)?動脈(?:の)?造影|LCA", "LCA"),
            (r"右冠(?:状)?動脈(?:の)?造影", "RCA"),
        ],
    ),
    *_terms(
        "extent",
        [
            (
                r"(?P<n>[一二三123])枝(?=病変|疾患)|(?P<m>[123])\s*VD",
                lambda m: _EXTENT[m.group("n") or m.group("m")],
            )
        ],
    ),
    # A positive predicate ends the reach of a later negation ("90%狭窄を認めるが血栓は認めない").
    *_terms(
        "predicate",
        [
            (
                r"認め(?:る|ます|た|られる|られます|られた)|あり(?:ます)?|ある|確認(?:でき|され|し)(?:る|ます|た)"
                r"|見られ(?:る|ます)|みられ(?:る|ます)|伴う",
                None,
            )
        ],
    ),
]

# "Elsewhere" stands where a location would: "the other vessels are free of disease" and
# "otherwise normal" describe the rest of the study, not a place the parser could name.
_ELSEWHERE = {
    "en": _terms(
        "elsewhere",
        [
            (
                r"otherwise|elsewhere|(?:the\s+)?(?:other|remaining|rest\s+of\s+the)\s+(?:vessels?|arteries"
                r"|coronar(?:y\s+arteries|ies)|segments?|branches|territories)",
                None,
            )
        ],
    ),
    "ja": _terms(
        "elsewhere",
        [(r"その他(?:の(?:血管|枝|部位|冠動脈))?|他(?:の)?(?:血管|枝|部位|冠動脈)", None)],
    ),
}

FINDING_TERMS: dict[Language, list[Term]] = {
    "en": [
        *_IGNORED,
        *_location_terms(),
        *_ELSEWHERE["en"],
        *_EN_POSITION,
        *_PERCENT_TERMS,
        *_EN_FEATURES,
        *_EN_CUES,
    ],
    "ja": [
        *_IGNORED,
        *_location_terms(),
        *_ELSEWHERE["ja"],
        *_JA_POSITION,
        *_PERCENT_TERMS,
        *_JA_FEATURES,
        *_JA_CUES,
    ],
}

# Clause boundaries. A strong one separates statements; a soft one may split a list of lesions
# ("#6 90%, #7 75%") or just a phrase ("... in #6, with thrombus"), which parse.py rejoins.
STRONG_BOUNDARY: dict[Language, re.Pattern[str]] = {
    "en": re.compile(_bounded(r"but|however|whereas|while|although|though") + r"|;", re.IGNORECASE),
    "ja": re.compile(r"[;；]|が、|けれども|一方|しかし|ですが|ものの"),
}
SOFT_BOUNDARY: dict[Language, re.Pattern[str]] = {
    "en": re.compile(_bounded(r"and|with|as\s+well\s+as|plus") + r"|[,&]", re.IGNORECASE),
    "ja": re.compile(r"[、,，]|および|及び|また"),
}
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])|\n+")

# --- recommendations ---------------------------------------------------------------------------

RECOMMENDATION_TERMS: dict[Language, list[Term]] = {
    "en": _terms(
        "recommendation",
        [
            (
                r"CABG|coronary\s+artery\s+bypass(?:\s+graft(?:ing)?)?|bypass\s+(?:surgery|grafting)"
                r"|surgical\s+revasculari[sz]ation|heart[\s-]team|cardiac\s+surg(?:ery|eon|ical)"
                r"|cardiothoracic\s+surg(?:ery|eon)|surgical\s+(?:consult(?:ation)?|referral)",
                "cabg",
            ),
            (
                r"PCI|percutaneous\s+(?:coronary\s+)?intervention|(?:coronary\s+)?angioplasty|stenting"
                r"|stent\s+(?:implantation|placement|deployment)|DES\s+implantation|POBA"
                r"|(?:catheter|coronary)\s+intervention|intervention",
                "pci",
            ),
            (
                r"FFR|iFR|RFR|QFR|fractional\s+flow\s+reserve|instantaneous\s+wave[\s-]free\s+ratio|IVUS"
                r"|intravascular\s+(?:ultrasound|imaging)|OCT|optical\s+coherence\s+tomography"
                r"|stress\s+(?:test(?:ing)?|echo(?:cardiography)?|imaging|perfusion|MRI)"
                r"|(?:functional|physiologic(?:al)?|ischemi[ac])\s+(?:assessment|evaluation|testing|test)"
                r"|myocardial\s+perfusion|(?:perfusion\s+)?scintigraphy|SPECT"
                r"|further\s+(?:evaluation|investigation|testing|work[\s-]?up|assessment)",
                "further_testing",
            ),
            (
                r"consider(?:ation\s+of)?\s+(?:the\s+|a\s+)?treatment\s+(?:plan|strategy|options?)"
                r"|treatment\s+(?:plan|strategy)\s+(?:should|to|will|needs\s+to|must)\s+be\s+"
                r"(?:decided|determined|considered|discussed|individuali[sz]ed)"
                r"|(?:coronary\s+)?revasculari[sz]ation",
                "treatment_review",
            ),
            (
                r"(?:optimal\s+|guideline[\s-]directed\s+|intensive\s+|intensified\s+)?medical\s+"
                r"(?:therapy|treatment|management)|OMT|GDMT|conservative\s+(?:therapy|treatment|management)"
                r"|pharmacologic(?:al)?\s+(?:therapy|treatment)|(?:anti[\s-]?anginal|antiplatelet|statin)"
                r"\s+therapy|risk[\s-]factor\s+(?:modification|management|control)"
                r"|continue\s+(?:current\s+)?medications?",
                "medical",
            ),
            (
                r"follow[\s-]?up|watchful\s+waiting|(?:clinical\s+)?observation|observe|surveillance"
                r"|monitor(?:ing)?|re-?evaluat(?:e|ion)",
                "follow_up",
            ),
        ],
    ),
    "ja": _terms(
        "recommendation",
        [
            (
                r"CABG|冠動脈バイパス(?:術|手術)?|バイパス(?:術|手術)|外科的(?:血行再建|治療)|ハート\s*チーム"
                r"|心臓外科",
                "cabg",
            ),
            (
                r"PCI|経皮的冠動脈(?:インターベンション|形成術)|カテーテル(?:治療|インターベンション)"
                r"|ステント(?:留置|治療|植込み)|冠動脈形成術|POBA|インターベンション",
                "pci",
            ),
            (
                r"FFR|iFR|RFR|QFR|IVUS|OCT|血管内(?:超音波|イメージング)|冠血流予備量比"
                r"|(?:運動)?負荷(?:試験|心筋シンチ|エコー|心電図)|心筋シンチ(?:グラフィ)?"
                r"|機能的(?:評価|虚血評価)|生理学的(?:評価|指標)|虚血評価|精査|追加検査",
                "further_testing",
            ),
            (
                r"治療方針(?:を|の|について)?(?:検討|決定|相談)|方針(?:を)?検討|血行再建",
                "treatment_review",
            ),
            (
                r"(?:至適)?薬物(?:療法|治療)|内科的(?:治療|加療)|保存的(?:治療|加療)|内服(?:加療|治療)"
                r"|OMT|GDMT|抗血小板(?:療法|薬)|スタチン",
                "medical",
            ),
            (
                r"経過観察|フォロー\s*アップ|外来フォロー|経過を(?:見|み)る|慎重に観察|経過をフォロー",
                "follow_up",
            ),
        ],
    ),
}

# A step named with one of these nearby is declined, not recommended.
DECLINE_BEFORE: dict[Language, re.Pattern[str] | None] = {
    "en": re.compile(
        _bounded(
            r"no|not|without|avoid|defer|rather\s+than|instead\s+of|unsuitable\s+for"
            r"|contraindicat\w*"
        ),
        re.IGNORECASE,
    ),
    "ja": None,
}
DECLINE_AFTER: dict[Language, re.Pattern[str]] = {
    "en": re.compile(
        r"^\s*(?:is|are|was|were|would\s+be|should\s+be|be)?\s*(?:not\s+(?:indicated|recommended"
        r"|required|needed|necessary|warranted|suitable|feasible|possible)|unnecessary|deferred"
        r"|contraindicated|declined|refused)\b",
        re.IGNORECASE,
    ),
    "ja": re.compile(
        r"^(?:の|は|を|が)?(?:適応|必要|必要性|適用)?(?:は|が|も)?(?:なし|無し|ない|なく|ありません|不要"
        r"|見送|行わ(?:ない|ず)|しない|せず|適応外|不適)"
    ),
}
# Not a step of the plan: one already done ("s/p PCI", "PCI後"), a test whose result is quoted
# ("FFR 0.75"), or imaging that only guides the procedure ("IVUS-guided PCI", "IVUSガイド下").
_MEASURED = r"\s*(?:value\s+)?(?:of|was|is|=|:|は|が)?\s*\d?\.\d"
NOT_A_STEP_BEFORE: dict[Language, re.Pattern[str]] = {
    "en": re.compile(
        _bounded(
            r"s/p|status\s+post|post|prior|previous(?:ly)?|history\s+of|h/o|old|underwent"
            r"|(?:19|20)\d\d"
        ),
        re.IGNORECASE,
    ),
    "ja": re.compile(r"既往|\d{4}年"),
}
NOT_A_STEP_AFTER: dict[Language, re.Pattern[str]] = {
    "en": re.compile(
        r"^(?:\s*(?:was|were|had\s+been|has\s+been)\s+(?:performed|done|implanted|placed"
        rf"|carried\s+out)|{_MEASURED}|[\s-]*(?:guided|guidance))",
        re.IGNORECASE,
    ),
    "ja": re.compile(
        r"^(?:(?:を|の)?(?:後|歴|済|術後|施行(?:済み?|後|した|し|され|(?=[、。,.\s]|$))|され|した"
        rf"|しており|を受け)|{_MEASURED}|\s*ガイド)"
    ),
}
REC_CLAUSE = re.compile(r"[,;、，；:]|" + _bounded(r"but|however"), re.IGNORECASE)
