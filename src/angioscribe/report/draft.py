"""The drafter interface: what a report drafter reads and the one method it offers.

Every drafter (the deterministic `findings-template`, the trained vision-language models) takes
the same `DraftRequest` for one study and one language and returns a `report.records.Draft`, so
the `report` and `analyze` commands, the evaluation and the review page never care which model
wrote a text. Drafters are named entries of the model registry (task "report"); build one with
`angioscribe.report.drafters.create_drafter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from angioscribe.report.records import Draft

Language = Literal["en", "ja"]
REPORT_TASK = "report"  # the registry task of every drafter entry


@dataclass
class KeyFrameImage:
    """One frame a drafter looks at."""

    path: str  # the source (image file, cine file/folder), as given / relative
    frame: int  # frame index in the cine (0 for an image)
    side: str | None  # "LCA" | "RCA" | None
    view: str | None  # e.g. "RAO caudal" from anatomy.view_from_angles, or None
    pixels: np.ndarray | None = None  # (H, W) uint8 MONOCHROME2; None when only referenced

    def reference(self) -> dict:
        """The frame as a record field ({path, frame, side, view}): pixels stay out of JSON."""
        return {"path": self.path, "frame": self.frame, "side": self.side, "view": self.view}


@dataclass
class DraftRequest:
    """Everything a drafter may use for one study and one language.

    `findings` are `study_findings` entries: {"segment": "12b", "stenosis_percent": int | None,
    "grade": str | None, "cto": bool, "confidence": float | None, "views": [...]}; keys may be
    missing or None (a finding may only name its segment).
    """

    study: str  # the study key (io.study_key) or the image's file name
    lang: Language
    key_frames: list[KeyFrameImage]  # one or more per side, several views allowed
    findings: list[dict]
    clinical_text: str | None = None


class Drafter(Protocol):
    """A named report writer: one draft per request."""

    name: str

    def draft(self, request: DraftRequest) -> Draft: ...
