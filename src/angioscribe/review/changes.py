"""What an edit changed in what a draft says: per location the stenosis before and after, and
the plan.

A cardiologist's edit is read by the same parser that scores drafts (`report.parse`), so the
page can show what the words changed in the structured findings ("#6: 75 % -> 90 %", "plan:
medical -> pci") and a typo that the parser reads differently shows up before signing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from angioscribe.report.parse import parse_report
from angioscribe.report.structured import ParsedReport, ReportFinding


@dataclass(frozen=True)
class FindingChange:
    """A location whose reading changed; `before` or `after` is None where it was not named."""

    location: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class DraftChanges:
    lang: str
    findings: list[FindingChange]
    plan_before: str | None
    plan_after: str | None

    @property
    def plan_changed(self) -> bool:
        return self.plan_before != self.plan_after

    @property
    def any(self) -> bool:
        return bool(self.findings) or self.plan_changed


def parsed(text: str, lang: str) -> dict[str, Any]:
    """The structured reading of a draft, as stored with each version."""
    return parse_report(text, lang=lang, source=f"{lang} draft").to_dict()


def draft_changes(before: Mapping[str, Any], after: Mapping[str, Any], lang: str) -> DraftChanges:
    """Changes between two stored readings (`ParsedReport.to_dict()`) of one language."""
    old, new = ParsedReport.from_dict(dict(before)), ParsedReport.from_dict(dict(after))
    was, now = readings(old), readings(new)
    findings = [FindingChange(location, was.get(location), now.get(location))
                for location in dict.fromkeys([*was, *now])
                if was.get(location) != now.get(location)]
    return DraftChanges(lang, findings, old.recommendation, new.recommendation)


def readings(report: ParsedReport) -> dict[str, str]:
    """Per location ("#6", "LAD", "study"), what the report says there, in its order."""
    said: dict[str, list[str]] = {}
    for finding in report.findings:
        location = f"#{finding.segment}" if finding.segment else (finding.vessel or "study")
        said.setdefault(location, []).append(reading(finding))
    return {location: ", ".join(dict.fromkeys(words)) for location, words in said.items()}


def reading(finding: ReportFinding) -> str:
    """One finding in a few words: "90 %", "occluded", "no stenosis", "mentioned"."""
    if finding.negated:
        return "no stenosis"
    if finding.cto:
        return "occluded"
    if finding.stenosis_percent is not None:
        return f"{finding.stenosis_percent} %"
    return finding.grade or "mentioned"
