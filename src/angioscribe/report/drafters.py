"""Drafters by name: the registry's "report" entries, and `create_drafter` to build one.

A drafter entry's `architecture` names a builder "module:function" called as
`builder(entry, lang)` and returning a `report.draft.Drafter`; modules are imported on use, so
asking for the template never loads a language model. Sources that are not registered names
(hub ids, local adapter files) go to `angioscribe.report.vlm.drafter_from_source(source, lang)`.
"""

from __future__ import annotations

import importlib

from angioscribe.models.registry import ModelEntry, get_entry, list_models, register
from angioscribe.report.draft import REPORT_TASK, Drafter, Language
from angioscribe.report.template import TEMPLATE_MODEL

# The vision-language entries register when their module is imported (it loads no model).
from angioscribe.report.vlm import drafter_from_source

# What `report` and `analyze` draft with unless told otherwise: the drafter that measures best
# on val (docs/drafting.md says which and why).
DEFAULT_DRAFTER = TEMPLATE_MODEL

register(ModelEntry(
    name=TEMPLATE_MODEL,
    task=REPORT_TASK,
    architecture="angioscribe.report.template:template_drafter",
    config={},
    labels=(),
    description="Deterministic EN/JA sentences from the findings (segment, percent or grade, "
                "occlusion) plus the guideline's recommendation: the structured-reporting "
                "baseline, and the composer of corpus targets. No weights.",
))


def list_drafters() -> list[str]:
    """The registered drafter names."""
    return list_models(REPORT_TASK)


def create_drafter(source: str, lang: Language) -> Drafter:
    """The drafter `source` names, for one language: a registered name, or a vision-language
    adapter's hub id or local file (anything else is an InputError naming the source)."""
    if source in list_drafters():
        entry = get_entry(source)
        module_name, _, function_name = entry.architecture.partition(":")
        builder = getattr(importlib.import_module(module_name), function_name)
        return builder(entry, lang)
    return drafter_from_source(source, lang)
