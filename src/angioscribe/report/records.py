"""Reading report files: plain text, draft reports of models, and ground truth (docs/reports.md).

Every error names the file and line, so a broken line in a 10,000-line JSONL is found at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from angioscribe.errors import InputError
from angioscribe.io.images import IMAGE_SUFFIXES
from angioscribe.report.parse import parse_report
from angioscribe.report.structured import ParsedReport


@dataclass
class TextLine:
    """One report to parse: a line of a .txt file or the `text` of a JSONL record."""

    source: str
    line: int | None  # None: the error is the whole file's (unreadable, empty)
    text: str | None
    id: str | None = None
    error: str | None = None


@dataclass
class Draft:
    """A model's report for one case; with the study, clues and frames when a drafter wrote it."""

    case_id: str
    model: str
    text: str
    lang: str = "auto"
    study: str | None = None
    path: str | None = None
    clues: list[dict] = field(default_factory=list)  # the findings entries the drafter used
    key_frames: list[dict] = field(default_factory=list)  # [{path, frame, side, view}]

    def to_record(self) -> dict[str, Any]:
        """The `report` command's JSON record, valid `--pred` input for evaluation and review."""
        return {
            "id": self.case_id,
            "path": self.path,
            "study": self.study,
            "lang": self.lang,
            "model": self.model,
            "text": self.text,
            "clues": self.clues,
            "key_frames": self.key_frames,
        }


@dataclass
class Truth:
    """The reference for one case: structured findings and plan, reference text, image."""

    case_id: str
    report: ParsedReport
    text: str = ""
    image: Path | None = None
    patient_id: str | None = None
    references: dict[str, str] = field(default_factory=dict)  # language -> reference text

    def reference(self, lang: str) -> str:
        """The reference text in `lang` where the truth has one per language (a report
        corpus), else `text`."""
        return self.references.get(lang, self.text)

    @property
    def group(self) -> str:
        """The bootstrap resampling unit: the patient when known, else the case."""
        return self.patient_id or self.case_id


def jsonl_records(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(`file:line`, record) for each non-blank line; a bad line is an InputError naming it."""
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(where, f"not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise InputError(where, "each line must be a JSON object")
        yield where, record


def _read_lines(path: str | Path) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(path, f"cannot read: {error}") from None


def read_texts(path: str | Path) -> list[TextLine]:
    """Reports in a .txt (one per line) or .jsonl (the `text` field) file.

    A JSONL line without usable text becomes a TextLine with `error` set, so one bad record
    does not stop a batch. A file without any report (empty, or blank lines only) is an
    InputError: a batch given it must say so, not print nothing.
    """
    numbered = [(n, line) for n, line in enumerate(_read_lines(path), start=1) if line.strip()]
    if not numbered:
        raise InputError(path, "no reports in the file (it is empty or has only blank lines)")
    if Path(path).suffix.lower() != ".jsonl":
        return [TextLine(str(path), number, line) for number, line in numbered]
    lines = []
    for number, line in numbered:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            lines.append(TextLine(str(path), number, None, error=f"not valid JSON ({error.msg})"))
            continue
        text = record.get("text") if isinstance(record, dict) else None
        if isinstance(text, str):
            lines.append(TextLine(str(path), number, text, _optional_id(record)))
        else:
            problem = "needs a JSON object with a string `text` field"
            lines.append(TextLine(str(path), number, None, error=problem))
    return lines


def _optional_id(record: dict[str, Any]) -> str | None:
    return str(record["id"]) if "id" in record else None


def read_drafts(path: str | Path) -> list[Draft]:
    """Model drafts: `id` and `text` required; `model` defaults to the file's stem. A file with
    no draft is an InputError: scoring nothing must not look like a result."""
    drafts = []
    for where, record in jsonl_records(path):
        _require(where, record, ("id", "text"))
        drafts.append(
            Draft(
                case_id=str(record["id"]),
                model=str(record.get("model") or Path(path).stem),
                text=str(record["text"]),
                lang=str(record.get("lang", "auto")),
            )
        )
    if not drafts:
        raise InputError(path, "no draft reports in the file (it is empty)")
    return drafts


def read_truths(path: str | Path, images: str | Path | None = None) -> dict[str, Truth]:
    """Ground truth by case id.

    With `findings` the record is structured truth; without, its `text` is parsed (and its
    `laterality`, if given, still names the image's side). `image` paths are relative to
    `images` if given, else to the truth file's folder.

    A report corpus (docs/drafting.md) is truth as it is: a line's `target` is its reference
    text, the sides of its `images` the image's side, its image the one image file it holds
    (a single picture, as ARCADE's; cines have none), and the lines of one id in several
    languages are one case with a reference per language.
    """
    image_root = Path(images) if images else Path(path).parent
    truths: dict[str, Truth] = {}
    for where, record in jsonl_records(path):
        _require(where, record, ("id",))
        record = _as_truth_record(record)
        case_id, lang, text = str(record["id"]), record.get("lang"), str(record.get("text", ""))
        if case_id in truths:
            if lang is None or lang in truths[case_id].references:
                raise InputError(where, f"case id {case_id!r} appears twice")
            truths[case_id].references[lang] = text
            continue
        truths[case_id] = Truth(
            case_id=case_id,
            report=_truth_report(where, record),
            text=text,
            image=image_root / record["image"] if record.get("image") else None,
            patient_id=str(record["patient_id"]) if record.get("patient_id") else None,
            references={lang: text} if lang else {},
        )
    if not truths:
        raise InputError(path, "no truth records in the file (it is empty)")
    return truths


def _as_truth_record(record: dict[str, Any]) -> dict[str, Any]:
    """A report-corpus line in the truth schema (`text`, `laterality`, `image`); a truth
    record as it is."""
    if "target" not in record or "images" not in record:
        return record
    images = [image for image in record["images"] if isinstance(image, dict)]
    sides = {image.get("side") for image in images} - {None}
    pictures = [image["path"] for image in images
                if Path(str(image.get("path"))).suffix.lower() in IMAGE_SUFFIXES]
    return {
        "text": record["target"],
        "laterality": sides.pop() if len(sides) == 1 else "both" if sides else None,
        "image": pictures[0] if len(images) == len(pictures) == 1 else None,
        **record,
    }


def _truth_report(where: str, record: dict[str, Any]) -> ParsedReport:
    if "findings" in record:
        return ParsedReport.from_dict(record, where)
    if not record.get("text"):
        raise InputError(where, "truth needs `findings` or a reference `text` to parse")
    parsed = parse_report(record["text"], record.get("lang", "auto"), where)
    given = ParsedReport.from_dict({"laterality": record.get("laterality")}, where)
    parsed.stated_laterality = given.stated_laterality or parsed.laterality
    if record.get("recommendation"):
        parsed.recommendations = ParsedReport.from_dict(record, where).recommendations
    return parsed


def _require(where: str, record: dict[str, Any], keys: tuple[str, ...]) -> None:
    missing = [key for key in keys if key not in record]
    if missing:
        raise InputError(where, f"missing field(s): {', '.join(missing)}")
