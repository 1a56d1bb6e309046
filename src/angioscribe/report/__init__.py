"""Report text as data: parse EN/JA angiography reports into findings and a recommendation.

`parse_report(text, lang)` turns a narrative into a `ParsedReport`; `guideline.recommend` is the
one place where the project's treatment rule lives (the simulator writes ground truth with it, the
evaluator judges drafts against it).
"""

from angioscribe.report.guideline import recommend
from angioscribe.report.parse import parse_report
from angioscribe.report.structured import ParsedReport, Recommendation, ReportFinding

__all__ = ["ParsedReport", "Recommendation", "ReportFinding", "parse_report", "recommend"]
