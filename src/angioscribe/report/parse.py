"""Free-text angiography report (English or Japanese) -> structured findings and plan.

A deterministic, rule-based reader, so that every output can be traced to the words that caused
it (each finding keeps its `evidence`). The steps, per sentence:

1. find mentions: every lexicon term, leftmost-longest, one reading per character span;
2. resolve locations: bind position words to vessels ("the RCA ... proximally" -> #1), fuse a
   name with its number ("LCX #11", "LAD近位部(#6)"; an explicit number wins over the name);
3. split at clause boundaries, apply negation and uncertainty within each clause, then rejoin
   clauses that lack a location or a severity with their neighbour ("#6, #7 and #9 show 75%");
4. group each clause's locations with their severities in reading order ("90% at #6, 75% at #7"
   and "#6 90%, #7 75%" both pair correctly) and emit one finding per location.

Recommendations are read clause by clause; a step that is declined ("PCI is not indicated") or
already done ("s/p PCI") is not a recommendation. The rules are spelt out in docs/reports.md.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from angioscribe.anatomy import SEGMENTS, segment_by_alias
from angioscribe.report import lexicon
from angioscribe.report.guideline import territory_of
from angioscribe.report.language import Language, resolve_language
from angioscribe.report.structured import ParsedReport, Recommendation, ReportFinding

VALUED = frozenset({"percent", "grade", "occlusion"})
LESION_WORDS = frozenset({"stenosis", "thrombus", "calcification"})
NEGATABLE = frozenset({"grade", "occlusion", "stenosis", "thrombus", "calcification"})
ABSENCE_GRADES = frozenset({"normal", "normal_all"})
# What may stand between "proximal" and the vessel it qualifies: a few words, no punctuation.
_SAME_PHRASE = re.compile(r"^[\sA-Za-z/-]{0,25}$")


@dataclass(frozen=True)
class Place:
    """Where a mention points: segments (possibly several, "#6-8"), or only a vessel."""

    segments: tuple[str, ...] = ()
    vessel: str | None = None
    numbered: bool = False

    @property
    def vessel_code(self) -> str:
        return self.vessel or SEGMENTS[self.segments[0]].vessel


@dataclass
class Mention:
    """One recognised term in a sentence."""

    kind: str
    start: int
    end: int
    value: Any = None
    negated: bool = False
    uncertain: bool = False

    @property
    def role(self) -> str | None:
        """Role in pairing: "L" a location, "S" a severity, None what rides along."""
        if self.kind in ("location", "elsewhere"):
            return "L"
        return "S" if self.kind in VALUED else None

    @property
    def asserts_disease(self) -> bool:
        return self.kind in VALUED and not self.negated and self.value not in ABSENCE_GRADES

    @property
    def states_absence(self) -> bool:
        if self.kind == "grade" and self.value in ABSENCE_GRADES:
            return not self.negated
        return self.negated and self.kind in ("grade", "occlusion", "stenosis")


def parse_report(text: str, lang: str = "auto", source: str = "text") -> ParsedReport:
    """Parse one report. `lang` is "en", "ja" or "auto" (Japanese if any Japanese script)."""
    language = resolve_language(lang, text, source)
    normalised = unicodedata.normalize("NFKC", text)
    report = ParsedReport(text=text, lang=language)
    sides: set[str] = set()
    for sentence in _sentences(normalised):
        mentions = _scan(sentence, lexicon.FINDING_TERMS[language])
        sides |= {m.value for m in mentions if m.kind == "side"}
        extents = [m.value for m in mentions if m.kind == "extent"]
        if extents:
            report.vessel_disease = max(report.vessel_disease or 0, *extents)
        for chunk in _chunks(sentence, _locate(sentence, mentions), language):
            report.findings.extend(_chunk_findings(sentence, chunk))
        for step, declined in _steps(sentence, language):
            target = report.declined if declined else report.recommendations
            if step not in target:
                target.append(step)
    report.findings = _distinct(report.findings)
    report.stated_laterality = "both" if len(sides) == 2 else (sides.pop() if sides else None)
    return report


def _distinct(findings: list[ReportFinding]) -> list[ReportFinding]:
    """Drop repeats, and a bare mention ("left main disease", "the RCA lesion") of a location or
    vessel that the report grades elsewhere."""
    graded = {
        place
        for f in findings
        if f.stenosis_percent is not None or f.grade
        for place in (f.location, f.vessel)
    }
    unique: dict[tuple, ReportFinding] = {}
    for finding in findings:
        bare = not (
            finding.negated
            or finding.thrombus
            or finding.calcification
            or finding.stenosis_percent is not None
            or finding.grade
        )
        if not (bare and finding.location in graded):
            key = tuple(v for k, v in finding.to_dict().items() if k != "evidence")
            unique.setdefault(key, finding)
    return list(unique.values())


def _sentences(text: str) -> Iterator[str]:
    for sentence in lexicon.SENTENCE_END.split(text):
        if sentence.strip():
            yield sentence


def _scan(text: str, terms: list[lexicon.Term]) -> list[Mention]:
    """All term matches, leftmost-longest, without overlaps; "ignore" matches swallow their span."""
    candidates = []
    for term in terms:
        for match in term.pattern.finditer(text):
            value = term.meaning(match)
            if match.end() > match.start() and not (value is None and term.kind in _NEEDS_VALUE):
                mention = Mention(term.kind, match.start(), match.end(), value)
                candidates.append(
                    (match.start(), match.start() - match.end(), term.priority, mention)
                )
    chosen: list[Mention] = []
    for *_, mention in sorted(candidates, key=lambda c: c[:3]):
        if not chosen or mention.start >= chosen[-1].end:
            chosen.append(mention)
    return [m for m in chosen if m.kind != "ignore"]


_NEEDS_VALUE = frozenset({"number", "segment", "percent"})


# --- locations ---------------------------------------------------------------------------------


def _locate(sentence: str, mentions: list[Mention]) -> list[Mention]:
    """Turn segment, vessel and position mentions into `location` mentions with a `Place`."""
    for mention in mentions:
        if mention.kind in ("number", "segment"):
            numbered = mention.kind == "number"
            mention.kind, mention.value = "location", Place(tuple(mention.value), None, numbered)
        elif mention.kind == "vessel":
            mention.kind, mention.value = "location", Place((), mention.value)
    return _fuse_adjacent(sentence, _bind_positions(sentence, mentions))


def _bind_positions(sentence: str, mentions: list[Mention]) -> list[Mention]:
    """Position word + the vessel it qualifies -> that vessel's segment ("proximal" LAD -> #6).

    A vessel word consumed this way ("the RCA ... proximally") is removed: the segment replaces
    it. An unbindable position word (no vessel near, no such segment) is dropped.
    """
    consumed: set[int] = set()
    kept: list[Mention] = []
    for index, mention in enumerate(mentions):
        if mention.kind != "position":
            kept.append(mention)
            continue
        target = _position_target(sentence, mentions, index)
        number = (
            _segment_at(mention.value[0], mentions[target].value) if target is not None else None
        )
        if number is None:
            continue
        if not mentions[target].value.segments:
            consumed.add(id(mentions[target]))
        kept.append(Mention("location", mention.start, mention.end, Place((number,))))
    return [m for m in kept if id(m) not in consumed]


def _position_target(sentence: str, mentions: list[Mention], index: int) -> int | None:
    """The location a position word qualifies: the next one in the same phrase when it binds
    forward ("proximal and mid LAD"), else the previous one ("LAD: 90% proximal, 70% mid")."""
    direction = mentions[index].value[1]
    after = [i for i in range(index + 1, len(mentions)) if mentions[i].kind == "location"]
    before = [i for i in range(index) if mentions[i].kind == "location"]
    gap = sentence[mentions[index].end : mentions[after[0]].start] if after else ""
    near_after = after[:1] if _SAME_PHRASE.match(gap) else []
    if direction == "forward":
        return (near_after or before[-1:] or [None])[0]
    return (before[-1:] or near_after or [None])[0]


def _segment_at(position: str, place: Place) -> str | None:
    """The segment at a position of a vessel ("mid" LCX -> #13); the left main has just one."""
    code = place.vessel_code
    try:
        return segment_by_alias(f"{position} {code}").number
    except KeyError:
        chain = [number for number, seg in SEGMENTS.items() if seg.vessel == code]
        return chain[0] if len(chain) == 1 else None


_FUSIBLE_GAP = re.compile(r"^[\s()\[\]:]*$")


def _fuse_adjacent(sentence: str, mentions: list[Mention]) -> list[Mention]:
    """Adjacent names and numbers are one location ("LCX #11", "LAD近位部(#6)"); number wins."""
    fused: list[Mention] = []
    for mention in mentions:
        previous = fused[-1] if fused else None
        if (
            previous is not None
            and mention.kind == previous.kind == "location"
            and (mention.value.segments or previous.value.segments)
            and _FUSIBLE_GAP.match(sentence[previous.end : mention.start])
        ):
            previous.value = _fuse(previous.value, mention.value)
            previous.end = mention.end
        else:
            fused.append(mention)
    return fused


def _fuse(a: Place, b: Place) -> Place:
    if a.numbered != b.numbered:
        return a if a.numbered else b
    if a.segments and b.segments:
        return Place(tuple(dict.fromkeys(a.segments + b.segments)), None, a.numbered)
    return a if a.segments else b


# --- clauses -----------------------------------------------------------------------------------


def _chunks(sentence: str, mentions: list[Mention], lang: Language) -> Iterator[list[Mention]]:
    """Statements of one sentence: clauses with cues applied, incomplete ones rejoined."""
    respectively = any(m.kind == "respectively" for m in mentions)
    for strong in _split(sentence, mentions, lexicon.STRONG_BOUNDARY[lang]):
        pieces = [strong] if respectively else _split(sentence, strong, lexicon.SOFT_BOUNDARY[lang])
        for piece in pieces:
            _apply_cues(piece)
        yield from _rejoin(pieces)


def _split(
    sentence: str, mentions: list[Mention], boundary: re.Pattern[str]
) -> list[list[Mention]]:
    """Mentions grouped by the clauses a boundary pattern cuts (never inside a mention)."""
    cuts = [
        m.start()
        for m in boundary.finditer(sentence)
        if not any(x.start < m.end() and m.start() < x.end for x in mentions)
    ]
    pieces: list[list[Mention]] = [[] for _ in range(len(cuts) + 1)]
    for mention in mentions:
        pieces[sum(cut <= mention.start for cut in cuts)].append(mention)
    return [piece for piece in pieces if piece]


def _apply_cues(piece: list[Mention]) -> None:
    """Negation and uncertainty act within their clause.

    A preceding cue ("no", "without") reaches forward until a stated percentage (percentages are
    never negated); a following cue ("なし", "認めない", "is absent") reaches back until a
    percentage or a positive predicate ("認める").
    """
    uncertain = any(m.kind == "uncertain" for m in piece)
    for index, mention in enumerate(piece):
        mention.uncertain = uncertain
        if mention.kind != "negation":
            continue
        reach = piece[index + 1 :] if mention.value == "pre" else reversed(piece[:index])
        for other in reach:
            if other.kind in ("percent", "predicate"):
                break
            if other.kind in NEGATABLE:
                other.negated = True


def _rejoin(pieces: list[list[Mention]]) -> list[list[Mention]]:
    """Merge clauses missing a location or a severity into a neighbour.

    A location-only clause joins the next one when that continues a list of locations ("#6, #7
    and #9 show 75%"), else the previous one, else a next one without a location of its own
    ("The RCA is dominant and free of disease"); otherwise it stays a bare mention ("PCI to the
    LAD and medical therapy for the 50% RCA lesion"). A severity-only clause ("..., with
    thrombus") joins the previous one, or the next if it is first.
    """
    chunks: list[list[Mention]] = []
    pending: list[Mention] = []
    for index, piece in enumerate(pieces):
        current = pending + piece
        pending = []
        has_location = _has_location(current)
        has_lesion = any(m.role == "S" or m.kind in LESION_WORDS for m in current)
        following = pieces[index + 1] if index + 1 < len(pieces) else None
        if has_location and has_lesion:
            chunks.append(current)
        elif has_location and following and _leads_with_location(following):
            pending = current
        elif chunks:
            chunks[-1].extend(current)
        elif following and not (has_location and _has_location(following)):
            pending = current
        else:
            chunks.append(current)
    return chunks


def _has_location(piece: list[Mention]) -> bool:
    return any(m.role == "L" for m in piece)


def _leads_with_location(piece: list[Mention]) -> bool:
    roles = [m.role for m in piece if m.role]
    return bool(roles) and roles[0] == "L"


# --- findings ----------------------------------------------------------------------------------


def _chunk_findings(sentence: str, chunk: list[Mention]) -> list[ReportFinding]:
    chunk = _without_context_vessels(chunk)
    return [finding for group in _groups(chunk) for finding in _group_findings(sentence, group)]


def _without_context_vessels(chunk: list[Mention]) -> list[Mention]:
    """Drop a bare vessel that only introduces its segments ("LAD: 75% at #6 and 90% at #7")."""
    specific = {
        territory_of(number) for m in chunk if m.kind == "location" for number in m.value.segments
    }
    return [
        m
        for m in chunk
        if not (
            m.kind == "location"
            and not m.value.segments
            and territory_of(m.value.vessel) in specific
        )
    ]


def _groups(chunk: list[Mention]) -> list[list[Mention]]:
    """Pair locations and severities in reading order.

    The clause's first location-or-severity sets the order: location-first clauses ("#6 90%,
    #7 75%") start a new group at each location that follows a severity; severity-first ones
    ("90% at #6, 75% at #7") at each severity that follows a location. A group without a
    location (a trailing "(90%)") belongs to the one before it.
    """
    roles = [m.role for m in chunk if m.role]
    lead = roles[0] if roles else "L"
    groups: list[list[Mention]] = [[]]
    for mention in chunk:
        seen = {m.role for m in groups[-1]}
        if mention.role == lead and (seen - {lead, None}):
            groups.append([])
        groups[-1].append(mention)
    merged: list[list[Mention]] = []
    for group in groups:
        if merged and not any(m.role == "L" for m in group):
            merged[-1].extend(group)
        else:
            merged.append(group)
    return merged


def _group_findings(sentence: str, group: list[Mention]) -> list[ReportFinding]:
    """Findings for one location group: lesions, stated absences, or bare feature mentions.

    A group without a location speaks for the whole study only when it names a stenosis
    ("no significant stenosis", "There is a 90% stenosis"), so "normal LV function" or "EF 55%"
    never become coronary findings.
    """
    places = [m.value for m in group if m.kind == "location"]
    targets = [(segment, None) for place in places for segment in place.segments]
    targets += [(None, place.vessel) for place in places if not place.segments]
    if not targets and any(m.kind == "elsewhere" for m in group):
        return []
    base = ReportFinding(
        thrombus=any(m.kind == "thrombus" and not m.negated for m in group),
        calcification=any(m.kind == "calcification" and not m.negated for m in group),
        uncertain=any(m.uncertain for m in group),
        evidence=sentence[group[0].start : group[-1].end].strip(),
    )
    names_stenosis = any(m.kind == "stenosis" and not m.negated for m in group)
    diseased = [m for m in group if m.asserts_disease]
    if diseased and (targets or names_stenosis):
        severities = _percents(diseased, len(targets), base.thrombus)
        findings = [
            replace(base, segment=seg, vessel=vessel, **severities[i % len(severities)])
            for i, (seg, vessel) in enumerate(targets or [(None, None)])
        ]
        return findings if targets else [f for f in findings if f.stenosis_percent is not None]
    denies_stenosis = any(m.kind == "stenosis" or m.value == "normal_all" for m in group)
    if any(m.states_absence for m in group) and (targets or denies_stenosis):
        return [
            replace(
                base, segment=seg, vessel=vessel, negated=True, thrombus=False, calcification=False
            )
            for seg, vessel in targets or [(None, None)]
        ]
    if targets and any(m.kind in LESION_WORDS and not m.negated for m in group):
        return [replace(base, segment=seg, vessel=vessel) for seg, vessel in targets]
    return []


def _percents(diseased: list[Mention], n_targets: int, thrombus: bool) -> list[dict[str, Any]]:
    """The severity per target: one value for all, or one each when a list pairs up.

    Numbers win over grade words; a total occlusion is 100 % and a CTO unless called acute or
    thrombotic; several values for one location resolve to the worst.
    """
    numbers = [m.value for m in diseased if m.kind == "percent"]
    occlusions = [m.value for m in diseased if m.kind == "occlusion"]
    if n_targets >= 2 and len(numbers) == n_targets and not occlusions:
        return [_severity(value, None, thrombus, []) for value in numbers]
    grades = [m.value for m in diseased if m.kind == "grade"]
    values = numbers + [100] * bool(occlusions)
    if values:
        return [_severity(max(values), None, thrombus, occlusions)]
    grade = max(grades, key=lambda g: lexicon.GRADE_PERCENT[g] or 0)
    return [_severity(lexicon.GRADE_PERCENT[grade], grade, thrombus, occlusions)]


def _severity(
    percent: int | None, grade: str | None, thrombus: bool, occlusions: list[str]
) -> dict[str, Any]:
    acute = "acute" in occlusions or thrombus
    return {"stenosis_percent": percent, "grade": grade, "cto": percent == 100 and not acute}


# --- recommendations ---------------------------------------------------------------------------


def _steps(sentence: str, lang: Language) -> Iterator[tuple[Recommendation, bool]]:
    """(step, declined) for each next step a sentence names as part of the plan."""
    for clause in _clauses(sentence):
        matches = _scan(clause, lexicon.RECOMMENDATION_TERMS[lang])
        for index, match in enumerate(matches):
            stop = matches[index + 1].start if index + 1 < len(matches) else len(clause)
            after = clause[match.end : stop]
            before = clause[matches[index - 1].end if index else 0 : match.start]
            if lexicon.NOT_A_STEP_BEFORE[lang].search(clause[: match.start]) or (
                lexicon.NOT_A_STEP_AFTER[lang].match(after)
            ):
                continue
            yield match.value, _declined(before, after, lang)


def _clauses(sentence: str) -> list[str]:
    return [c for c in lexicon.REC_CLAUSE.split(sentence) if c and c.strip()]


def _declined(before: str, after: str, lang: Language) -> bool:
    before_pattern = lexicon.DECLINE_BEFORE[lang]
    near_before = " ".join(before.split()[-4:])
    return bool(
        (before_pattern is not None and before_pattern.search(near_before))
        or lexicon.DECLINE_AFTER[lang].match(after)
    )
