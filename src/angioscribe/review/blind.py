"""Blind mode: a reader study in the browser over a set made by `angioscribe review export`.

The set's `review_sheet.csv` lists the drafts of several models under random codes (R001...);
readers see only the code, the case and the text, and score each as on the paper sheet. A
reader's scores are exported as that same sheet, filled, which `angioscribe review import`
reads. With the set's `review_key.json` beside it, an admin sees Table 4 and the score figure
per reader, made by the same `import_review`, `error_table` and `score_histograms`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from angioscribe.errors import InputError
from angioscribe.evaluate.blind_review import (
    ERROR_COLUMNS,
    KEY_FILE,
    SHEET_COLUMNS,
    SHEET_FILE,
)
from angioscribe.evaluate.report_errors import ERROR_CATEGORIES
from angioscribe.evaluate.report_tables import OVERALL
from angioscribe.review.store import Score

ITEM_PREFIX = "blind:"  # store items of blinded drafts, apart from studies


@dataclass(frozen=True)
class BlindDraft:
    review_id: str
    case_id: str
    text: str

    @property
    def item(self) -> str:
        return f"{ITEM_PREFIX}{self.review_id}"


@dataclass(frozen=True)
class BlindSet:
    folder: Path
    drafts: list[BlindDraft]

    @property
    def key(self) -> Path | None:
        """The key file when it is there (the admin's results need it)."""
        path = self.folder / KEY_FILE
        return path if path.is_file() else None

    def draft(self, review_id: str) -> BlindDraft | None:
        return next((d for d in self.drafts if d.review_id == review_id), None)


def load_blind_set(folder: Path) -> BlindSet:
    """The drafts of the set's review_sheet.csv, in its order."""
    sheet = folder / SHEET_FILE
    try:
        with sheet.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(sheet, f"cannot read the review sheet: {error}") from None
    drafts = [BlindDraft(row.get("review_id", ""), row.get("case_id", ""), row.get("draft", ""))
              for row in rows]
    if not drafts or not all(d.review_id for d in drafts):
        raise InputError(sheet, "no drafts, or a row without review_id (write the set with "
                                "`angioscribe review export`)")
    return BlindSet(folder, drafts)


def filled_sheet(blind: BlindSet, scores: Mapping[str, Score]) -> str:
    """The review sheet with one reader's scores (`scores` by review id), as CSV text in the
    columns `review import` reads; unscored drafts keep empty cells."""
    out = io.StringIO()
    writer = csv.DictWriter(out, SHEET_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for draft in blind.drafts:
        row: dict[str, Any] = {"review_id": draft.review_id, "case_id": draft.case_id,
                               "draft": draft.text}
        score = scores.get(draft.review_id)
        if score is not None:
            row[OVERALL] = f"{score.overall:g}"
            row.update({column: score.errors.get(category, 0)
                        for category, column in zip(ERROR_CATEGORIES, ERROR_COLUMNS,
                                                    strict=True)})
        writer.writerow(row)
    return out.getvalue()


def reader_results(blind: BlindSet, sheet_text: str, out_dir: Path,
                   n_boot: int = 1000) -> list[dict[str, Any]]:
    """Table 4 of one reader's filled sheet, unblinded with the key; writes the sheet, the
    table's figure (`review_scores.png`) into `out_dir`. Raises InputError when the key is
    missing or a draft is unscored (the message says which)."""
    from angioscribe.evaluate.blind_review import import_review
    from angioscribe.evaluate.report_figures import score_histograms
    from angioscribe.evaluate.report_tables import error_table

    if blind.key is None:
        raise InputError(blind.folder / KEY_FILE, "the key is not in the blind set's folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    sheet = out_dir / SHEET_FILE
    sheet.write_text(sheet_text, encoding="utf-8")
    scores = import_review(sheet, blind.key)
    score_histograms(scores, out_dir / "review_scores.png")
    return error_table(scores, n_boot=n_boot, seed=0)
