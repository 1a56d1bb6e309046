"""Model-blinded clinician review of draft reports (the CAG-VLM reader study protocol).

`export_review` shuffles every model's drafts together (seeded), gives each a random-order
review id, and writes the sheet the reviewer fills (CSV), the same sheet as a self-contained
HTML page (images inlined; a button downloads the filled CSV), and, separately, the key mapping
review ids to models, which the reviewer must not see. `import_review` joins a filled sheet
with the key and yields one `DraftScores` per draft: the overall score 0-10 and the counts of
the five error categories, ready for `report_tables.error_table` (Table 4) and Figure 6.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import mimetypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from angioscribe.errors import InputError
from angioscribe.evaluate.report_errors import ERROR_CATEGORIES
from angioscribe.evaluate.report_tables import OVERALL, DraftScores
from angioscribe.report.records import Draft, Truth

ERROR_COLUMNS: tuple[str, ...] = tuple(f"{c}_errors" for c in ERROR_CATEGORIES)
SHEET_COLUMNS: tuple[str, ...] = (
    "review_id",
    "case_id",
    "draft",
    OVERALL,
    *ERROR_COLUMNS,
    "comment",
)
SHEET_FILE, PAGE_FILE, KEY_FILE = "review_sheet.csv", "review.html", "review_key.json"
MAX_SCORE = 10


@dataclass
class ReviewItem:
    """One draft as the reviewer sees it, plus what only the key knows (model, group)."""

    review_id: str
    case_id: str
    model: str
    text: str
    group: str
    image: Path | None = None
    reference: str = ""


def blind(drafts: Sequence[Draft], truths: Mapping[str, Truth], seed: int) -> list[ReviewItem]:
    """All drafts in one seeded random order, numbered R001... in that order."""
    order = np.random.default_rng(seed).permutation(len(drafts))
    width = max(3, len(str(len(drafts))))
    items = []
    for position, index in enumerate(order, start=1):
        draft = drafts[index]
        truth = truths.get(draft.case_id)
        items.append(
            ReviewItem(
                review_id=f"R{position:0{width}d}",
                case_id=draft.case_id,
                model=draft.model,
                text=draft.text,
                group=truth.group if truth else draft.case_id,
                image=truth.image if truth else None,
                reference=truth.text if truth else "",
            )
        )
    return items


def export_review(
    drafts: Sequence[Draft],
    out_dir: str | Path,
    seed: int,
    truths: Mapping[str, Truth] | None = None,
) -> dict[str, Path]:
    """Write the blinded sheet (CSV), its HTML page, and the key (JSON) into `out_dir`."""
    items = blind(drafts, truths or {}, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (out / SHEET_FILE).open("w", newline="", encoding="utf-8") as sheet:
        writer = csv.DictWriter(sheet, SHEET_COLUMNS)
        writer.writeheader()
        for item in items:
            writer.writerow(
                {"review_id": item.review_id, "case_id": item.case_id, "draft": item.text}
            )
    (out / PAGE_FILE).write_text(_page(items), encoding="utf-8")
    key = {
        "seed": seed,
        "drafts": {
            i.review_id: {"model": i.model, "case_id": i.case_id, "group": i.group} for i in items
        },
    }
    (out / KEY_FILE).write_text(
        json.dumps(key, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return {"sheet": out / SHEET_FILE, "page": out / PAGE_FILE, "key": out / KEY_FILE}


def import_review(sheet: str | Path, key: str | Path) -> list[DraftScores]:
    """Scores from a filled sheet, unblinded with the key, ordered by model and case.

    Every draft in the key must be scored: an overall score 0-10 is required, blank error
    counts mean none. Any bad cell is an InputError naming the sheet line and column.
    """
    drafts = _read_key(key)
    scored: dict[str, DraftScores] = {}
    for line, row in _sheet_rows(sheet):
        where = f"{sheet}:{line}"
        review_id = (row.get("review_id") or "").strip()
        if review_id not in drafts:
            raise InputError(where, f"review id {review_id!r} is not in the key {key}")
        blinded = drafts[review_id]
        scored[review_id] = DraftScores(
            model=blinded["model"],
            case_id=blinded["case_id"],
            group=blinded.get("group", blinded["case_id"]),
            errors={
                c: _count(where, col, row.get(col))
                for c, col in zip(ERROR_CATEGORIES, ERROR_COLUMNS, strict=True)
            },
            metrics={OVERALL: _score(where, row.get(OVERALL))},
        )
    missing = [review_id for review_id in drafts if review_id not in scored]
    if missing:
        raise InputError(
            sheet, f"{len(missing)} drafts of the key are not scored (e.g. {missing[0]})"
        )
    return sorted(scored.values(), key=lambda d: (d.model, d.case_id))


def _read_key(key: str | Path) -> dict[str, dict[str, str]]:
    try:
        return json.loads(Path(key).read_text(encoding="utf-8"))["drafts"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise InputError(key, f"not a review key written by `review export`: {error}") from None


def _sheet_rows(sheet: str | Path) -> list[tuple[int, dict[str, str]]]:
    try:
        with Path(sheet).open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [
                c
                for c in ("review_id", OVERALL, *ERROR_COLUMNS)
                if c not in (reader.fieldnames or [])
            ]
            if missing:
                raise InputError(sheet, f"missing column(s): {', '.join(missing)}")
            return [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(sheet, f"cannot read review sheet: {error}") from None


def _score(where: str, cell: str | None) -> float:
    text = (cell or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise InputError(where, f"overall score {text!r} is not a number 0-{MAX_SCORE}") from None
    if not 0 <= value <= MAX_SCORE:
        raise InputError(where, f"overall score {value:g} is outside 0-{MAX_SCORE}")
    return value


def _count(where: str, column: str, cell: str | None) -> int:
    text = (cell or "").strip()
    if not text:
        return 0
    if not text.isdigit():
        raise InputError(where, f"{column} {text!r} is not a count (0, 1, 2, ...)")
    return int(text)


def _image_uri(path: Path | None) -> str:
    """The image inlined as a data URI, so the page works when mailed or opened offline."""
    if path is None or not path.is_file():
        return ""
    kind = mimetypes.guess_type(path.name)[0] or "image/png"
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _page(items: Sequence[ReviewItem]) -> str:
    cards = "\n".join(_card(item) for item in items)
    columns = json.dumps(list(SHEET_COLUMNS))
    return _PAGE.format(count=len(items), cards=cards, columns=columns, max=MAX_SCORE)


def _card(item: ReviewItem) -> str:
    case = html.escape(item.case_id)
    uri = _image_uri(item.image)
    image = f'<img src="{uri}" alt="key frame of {case}">' if uri else ""
    reference = html.escape(item.reference)
    reference = f'<p class="ref"><b>Reference:</b> {reference}</p>' if reference else ""
    counts = "".join(
        f"<label>{c.replace('_', ' ')} "
        f'<input type="number" min="0" step="1" name="{col}" value="0"></label>'
        for c, col in zip(ERROR_CATEGORIES, ERROR_COLUMNS, strict=True)
    )
    overall = f'<input type="number" min="0" max="{MAX_SCORE}" step="1" name="overall" required>'
    return f"""<section class="card" data-review-id="{item.review_id}" data-case-id="{case}">
<h2>{item.review_id} <small>case {case}</small></h2>
{image}{reference}
<p class="draft">{html.escape(item.text)}</p>
<div class="draft-text" hidden>{html.escape(item.text)}</div>
<label>overall (0-{MAX_SCORE}) {overall}</label>
<fieldset><legend>errors</legend>{counts}</fieldset>
<label>comment <input type="text" name="comment"></label>
</section>"""


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>angioscribe blind review</title>
<style>
body {{ font-family: sans-serif; max-width: 60rem; margin: auto; padding: 1rem; }}
.card {{ border: 1px solid #ccc; border-radius: 6px; padding: 0.8rem; margin: 1rem 0; }}
.card img {{ max-width: 100%; max-height: 24rem; display: block; }}
.draft {{ font-size: 1.1rem; background: #f6f6f6; padding: 0.5rem; white-space: pre-wrap; }}
.ref {{ color: #444; }}
label {{ margin-right: 1rem; display: inline-block; }}
input[type=number] {{ width: 4rem; }}
</style></head><body>
<h1>Blind review: {count} drafts</h1>
<p>Score each draft 0-{max} and count its errors of each kind. The model behind each draft is
hidden. When done, download the sheet and return it.</p>
<details><summary>Error categories</summary><ul>
<li><b>laterality</b>: a lesion placed on the wrong coronary side, or the wrong side named</li>
<li><b>vessel</b>: a real lesion given the wrong segment number (or none)</li>
<li><b>treatment</b>: the plan does not fit the findings (significant: &ge;70 %, &ge;50 % left
main; left main or three-vessel disease: heart team/CABG; one or two vessels: PCI;
none: medical therapy), or no plan</li>
<li><b>logical</b>: the draft contradicts itself</li>
<li><b>stenosis</b>: a significant lesion missed or invented, or graded on the wrong side of
the threshold</li></ul></details>
<button id="download">Download filled sheet (CSV)</button>
{cards}
<script>
const columns = {columns};
const quote = (v) => '"' + String(v).replaceAll('"', '""') + '"';
document.getElementById("download").addEventListener("click", () => {{
  const rows = [columns.join(",")];
  for (const card of document.querySelectorAll(".card")) {{
    const value = (name) => card.querySelector(`[name=${{name}}]`)?.value ?? "";
    const cells = {{review_id: card.dataset.reviewId, case_id: card.dataset.caseId,
                   draft: card.querySelector(".draft-text").textContent}};
    rows.push(columns.map((c) => quote(c in cells ? cells[c] : value(c))).join(","));
  }}
  const blob = new Blob(["\\ufeff" + rows.join("\\r\\n")], {{type: "text/csv"}});
  const link = Object.assign(document.createElement("a"),
    {{href: URL.createObjectURL(blob), download: "review_sheet.csv"}});
  link.click();
}});
</script></body></html>
"""
