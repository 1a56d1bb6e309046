"""`angioscribe parse-report`, `angioscribe evaluate reports` and `evaluate vlscore-calibrate`.

Thin: read the files, call `angioscribe.report` / `angioscribe.evaluate`, print tables or JSON
lines, write figures. File formats are documented in docs/reports.md; exit codes follow
`angioscribe.cli.contract`. The scorers, embedders and plotting are imported inside the
commands, so `angioscribe --help` stays fast.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from angioscribe.batch import error_record, json_safe
from angioscribe.cli.contract import RecordSink, finish
from angioscribe.cli.output import JsonOption, print_records, progress, to_json
from angioscribe.cli.refusal import refuse
from angioscribe.errors import InputError

if TYPE_CHECKING:
    from angioscribe.evaluate.report_tables import DraftScores
    from angioscribe.evaluate.reports import CalibratedEmbedder
    from angioscribe.report.records import Draft, TextLine, Truth


class Lang(StrEnum):
    en = "en"
    ja = "ja"
    auto = "auto"


PredOption = Annotated[
    list[Path], typer.Option("--pred", help="Draft reports JSONL (id, model, text); repeatable.")
]
TruthOption = Annotated[
    Path, typer.Option("--truth", help="Ground truth JSONL (id, findings/text, image, ...), "
                       "or a report corpus."),
]
ImagesOption = Annotated[
    Path | None, typer.Option("--images", help="Folder the truth's `image` paths are relative to.")
]
NormalizeOption = Annotated[
    bool,
    typer.Option(
        "--normalize/--no-normalize",
        help="L2-normalise embeddings first (the original VLScore does not).",
    ),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed for resampling and shuffling.")]
TrustOption = Annotated[
    bool,
    typer.Option(
        "--trust-remote-code",
        help="Let transformers run the model repository's own code (ConceptCLIP needs it).",
    ),
]

PARSE_COLUMNS = ("path", "line", "lang", "laterality", "findings", "recommendation", "error")


def parse_report(
    files: Annotated[
        list[Path], typer.Argument(help=".txt (one report per line) or .jsonl (`text`).")
    ],
    lang: Annotated[
        Lang, typer.Option("--lang", help="Report language; auto detects Japanese.")
    ] = Lang.auto,
    as_json: JsonOption = False,
) -> None:
    """Structured findings and recommendation for every report line (schema: docs/reports.md).

    A file that cannot be read or holds no report, and a line without usable text, give a
    record with `path` and `error`; the rest are parsed. Exit code 0 when every report was
    parsed, 1 when some failed, 2 on a usage error, 3 when none could be parsed.
    """
    lines = [line for path in files for line in _texts_or_error(path)]
    with RecordSink(as_json, PARSE_COLUMNS) as sink:
        for line in progress(lines, "Parsing reports"):
            record = _parsed_record(line, lang.value)
            sink.emit(record if as_json else _parse_summary(record))


def _texts_or_error(path: Path) -> list[TextLine]:
    from angioscribe.report.records import TextLine, read_texts

    try:
        return read_texts(path)
    except InputError as error:
        return [TextLine(str(path), None, None, error=error.problem)]


def _parsed_record(line: TextLine, lang: str) -> dict[str, Any]:
    from angioscribe.report.parse import parse_report as parse_text

    record: dict[str, Any] = {"path": line.source}
    if line.line is not None:
        record["line"] = line.line
    if line.id is not None:
        record["id"] = line.id
    if line.error:
        return {**record, "error": line.error}
    try:
        parsed = parse_text(line.text or "", lang, f"{line.source}:{line.line}").to_dict()
    except InputError as error:
        return {**record, "error": error.problem}
    parsed.pop("text")
    return {**record, **parsed}


def _parse_summary(record: dict[str, Any]) -> dict[str, Any]:
    """One line per report for people: '#11 75%, LAD no significant stenosis'."""
    if "error" in record:
        return record
    described = []
    for f in record["findings"]:
        where = f"#{f['segment']}" if f["segment"] else (f["vessel"] or "all")
        what = (
            "no significant stenosis"
            if f["negated"]
            else (f"{f['stenosis_percent']}%" if f["stenosis_percent"] is not None else "lesion")
        )
        extras = [k for k in ("cto", "thrombus", "calcification", "uncertain") if f[k]]
        described.append(" ".join([where, what, *extras]))
    return {**record, "findings": "; ".join(described)}


def evaluate_reports(
    pred: PredOption,
    truth: TruthOption,
    images: ImagesOption = None,
    embedder: Annotated[
        list[str] | None,
        typer.Option(
            "--embedder",
            help="VLScore embedder: hf-hub:ORG/NAME or model folder; "
            "repeatable. Needs a stored calibration.",
        ),
    ] = None,
    normalize: NormalizeOption = False,
    trust_remote_code: TrustOption = False,
    calibration: Annotated[
        Path | None,
        typer.Option("--calibration", help="Calibration JSON (default: beside the embedder)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for per-draft scores, tables, figures.")
    ] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", min=10, help="Bootstrap resamples.")] = 1000,
    seed: SeedOption = 0,
    as_json: JsonOption = False,
) -> None:
    """Table 4 (error categories per model), text metrics, VLScore, and the stenosed
    segments the drafts name (precision, recall, F1) with their side errors.

    --truth may be a report corpus (`data report-corpus`): its targets are the references.

    A draft whose id the truth lacks gets an error record (`path`, `id`, `error`) and is left
    out of the tables. Exit code 0 when every draft was scored, 1 when some were left out, 2 on
    a usage error, 3 when nothing could be scored (a --pred or --truth file unreadable or
    empty, no draft matching a truth id).
    """
    from angioscribe.evaluate.report_tables import error_table, metric_table, naming_table
    from angioscribe.evaluate.reports import score_drafts
    from angioscribe.report.records import read_truths

    try:
        truths = read_truths(truth, images)
        drafts, unmatched = drafts_with_truth(pred, truths, truth)
        report_failed(unmatched, as_json)
        embedders = [
            _calibrated(spec, calibration, normalize, trust_remote_code) for spec in embedder or []
        ]
        scores = score_drafts(drafts, truths, embedders)
        if out:
            write_per_draft(out, scores)
    except InputError as error:
        refuse(error, as_json)
    except OSError as error:
        refuse(error, as_json, source=out or "")
    metrics = ["bleu4", "rouge_l", *(e.metric for e in embedders)]
    errors = error_table(scores, n_boot=n_boot, seed=seed)
    summary = metric_table(scores, metrics, n_boot=n_boot, seed=seed)
    naming = naming_table(scores, n_boot=n_boot, seed=seed)
    if as_json:
        print_records(
            [{"table": "errors", **r} for r in errors]
            + [{"table": "metrics", **r} for r in summary]
            + [{"table": "segments", **r} for r in naming],
            True,
            (),
        )
    else:
        print_records([error_display(r) for r in errors], False, error_display_columns(errors))
        print_records([_metric_display(r) for r in summary], False, METRIC_DISPLAY_COLUMNS)
        print_records([naming_display(r) for r in naming], False, NAMING_DISPLAY_COLUMNS)
    if out:
        tables = {"errors": errors, "metrics": summary, "segments": naming,
                  "failed_inputs": unmatched}
        _write_tables(out, scores, tables, [e.metric for e in embedders])
    finish(len(scores), len(unmatched))


def drafts_with_truth(
    pred: list[Path], truths: dict[str, Truth], truth: Path
) -> tuple[list[Draft], list[dict[str, Any]]]:
    """The drafts of every --pred file that have a truth record, and an error record for each
    that has none; an InputError when no draft has one (nothing to score)."""
    from angioscribe.report.records import read_drafts

    matched: list[Draft] = []
    unmatched: list[dict[str, Any]] = []
    for path in pred:
        for draft in read_drafts(path):
            if draft.case_id in truths:
                matched.append(draft)
            else:
                problem = f"no truth record for id {draft.case_id!r} in {truth}"
                unmatched.append(error_record(path, problem, id=draft.case_id))
    if not matched:
        first = unmatched[0]["id"]
        raise InputError(", ".join(map(str, pred)),
                         f"no draft id is in the truth file {truth} (e.g. id {first!r})")
    return matched, unmatched


def report_failed(records: list[dict[str, Any]], as_json: bool) -> None:
    """Error records of inputs left out of a result: JSON lines on stdout with --json (as the
    results are), a line each on stderr for people."""
    for record in records:
        if as_json:
            print_records([record], True, ())
        else:
            typer.echo(f"error: {record['path']}: {record['error']}", err=True)


def _calibrated(spec: str, path: Path | None, normalize: bool, trust: bool) -> CalibratedEmbedder:
    from angioscribe.evaluate.embedders import load_embedder
    from angioscribe.evaluate.reports import CalibratedEmbedder
    from angioscribe.evaluate.vlscore import Calibration, calibration_path

    stored = Calibration.load(path or calibration_path(spec), normalize)
    return CalibratedEmbedder(load_embedder(spec, trust_remote_code=trust), stored)


def write_per_draft(out: Path, scores: list[DraftScores]) -> None:
    """per_draft.jsonl, as soon as the drafts are scored: the bootstrap tables and figures
    that follow take longer, and the scores must not wait on them."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "per_draft.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(to_json(s.to_dict()) + "\n" for s in scores)


def json_document(value: Any) -> str:
    """An indented JSON file people read, valid JSON whatever the values (no NaN)."""
    return json.dumps(json_safe(value), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _write_tables(
    out: Path, scores: list[DraftScores], tables: dict[str, list[dict]], vlscores: list[str]
) -> None:
    from angioscribe.evaluate.report_figures import metric_distributions

    (out / "tables.json").write_text(json_document(tables))
    metric_distributions(scores, ["bleu4", "rouge_l"], out / "text_metrics.png")
    if vlscores:
        metric_distributions(scores, vlscores, out / "vlscore.png")
    typer.echo(f"wrote {out}/per_draft.jsonl, tables.json and figures", err=True)


METRIC_DISPLAY_COLUMNS = ("model", "metric", "n", "mean", "sd", "95% CI")


def error_display_columns(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """Table 4's columns; the clinician's score only when there is one."""
    from angioscribe.evaluate.report_errors import ERROR_CATEGORIES

    score = ("score",) if any("score_mean" in row for row in rows) else ()
    return ("model", "n", *score, *ERROR_CATEGORIES)


def error_display(row: dict[str, Any]) -> dict[str, Any]:
    """Table 4 as people read it: 'drafts with the error (rate [95% CI])'."""
    from angioscribe.evaluate.report_errors import ERROR_CATEGORIES

    shown: dict[str, Any] = {"model": row["model"], "n": row["n"]}
    if "score_mean" in row:
        shown["score"] = f"{row['score_mean']:.2f} ± {row['score_sd']:.2f}"
    for category in ERROR_CATEGORIES:
        low, high = row[f"{category}_ci"]
        shown[category] = (
            f"{row[f'{category}_drafts']} ({row[f'{category}_rate']:.0%} [{low:.0%}-{high:.0%}])"
        )
    return shown


NAMING_DISPLAY_COLUMNS = ("model", "n", "precision", "recall", "f1", "side errors")


def naming_display(row: dict[str, Any]) -> dict[str, Any]:
    """The named-segment table as people read it: 'estimate [95% CI]'."""
    shown: dict[str, Any] = {"model": row["model"], "n": row["n"]}
    for name in ("precision", "recall", "f1"):
        low, high = row[f"{name}_ci"]
        shown[name] = f"{row[name]:.3f} [{low:.3f}, {high:.3f}]"
    low, high = row["side_ci"]
    shown["side errors"] = f"{row['side_errors']} ({row['side_rate']:.0%} [{low:.0%}-{high:.0%}])"
    return shown


def _metric_display(row: dict[str, Any]) -> dict[str, Any]:
    low, high = row["ci"]
    return {
        **row,
        "mean": f"{row['mean']:.4f}",
        "sd": f"{row['sd']:.4f}",
        "95% CI": f"[{low:.4f}, {high:.4f}]",
    }


def vlscore_calibrate(
    embedder: Annotated[str, typer.Option("--embedder", help="hf-hub:ORG/NAME or a model folder.")],
    truth: TruthOption,
    images: ImagesOption = None,
    pred: Annotated[
        list[Path] | None, typer.Option("--pred", help="Drafts to include in the calibration set.")
    ] = None,
    normalize: NormalizeOption = False,
    trust_remote_code: TrustOption = False,
    out: Annotated[Path | None, typer.Option("--out", help="Calibration JSON to write.")] = None,
    seed: SeedOption = 0,
    as_json: JsonOption = False,
) -> None:
    """Store C, the largest triangle area on a calibration set, for one embedder.

    The set pairs each truth image with its reference and (a) another case's reference, the
    "wrong report" end of the scale, and (b) any given drafts for that case. Exit code 0 when
    the calibration was stored, 2 on a usage error, 3 when it could not be made (a file
    unreadable or empty, fewer than two cases with image and text, the embedder not loaded).
    """
    from angioscribe.evaluate.embedders import load_embedder, load_image
    from angioscribe.evaluate.vlscore import (
        Calibration,
        calibrate,
        calibration_path,
        embed_triples,
        mismatched,
        triangle_area,
    )
    from angioscribe.report.records import read_drafts, read_truths

    try:
        truths = [t for t in read_truths(truth, images).values() if t.image and t.text]
        if len(truths) < 2:
            raise InputError(truth, "calibration needs at least two cases with `image` and `text`")
        drafts = [d for path in pred or [] for d in read_drafts(path)]
        model = load_embedder(embedder, trust_remote_code=trust_remote_code)
        by_case = {t.case_id: t for t in truths}
        pairs = list(zip(truths, mismatched([t.text for t in truths], seed), strict=True))
        pairs += [(by_case[d.case_id], d.text) for d in drafts if d.case_id in by_case]
        images_ = [load_image(t.image) for t, _ in pairs]
        embedded = embed_triples(
            model, images_, [t.text for t, _ in pairs], [g for _, g in pairs], normalize
        )
        result = Calibration(embedder, normalize, calibrate(triangle_area(*embedded)), len(pairs))
        path = result.save(out or calibration_path(embedder))
    except (InputError, ValueError) as error:
        refuse(error, as_json, source=embedder)
    record = {
        "embedder": embedder,
        "normalize": normalize,
        "c": result.c,
        "triples": result.triples,
        "path": str(path),
    }
    print_records([record], as_json, tuple(record))
