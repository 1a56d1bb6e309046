"""The Study: the cines of one patient's cath-lab examination, plus optional clinical text."""

from __future__ import annotations

from dataclasses import dataclass, field

from angioscribe.cine import Cine


@dataclass
class Study:
    """One examination. `patient_id` is pseudonymous; `key` is the StudyInstanceUID or folder."""

    key: str
    cines: list[Cine] = field(default_factory=list)
    patient_id: str | None = None
    clinical_text: str | None = None
    language: str = "en"
