"""`angioscribe report`: draft reports (EN/JA) of studies, cines or images for a cardiologist.

Thin: parse the options, build the drafters, run `angioscribe.report.drafting.draft_paths`
(`draft_corpus` for `--corpus`), print one record per study and language (exit codes:
`angioscribe.cli.contract`). The image models and drafters are imported inside the command,
so `angioscribe --help` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer

from angioscribe.cli.contract import RecordSink, error_record, to_json
from angioscribe.cli.output import JsonOption

if TYPE_CHECKING:  # annotations only: drafting loads the models on use
    from angioscribe.errors import InputError
    from angioscribe.report.corpus import CorpusRecord
    from angioscribe.report.draft import Drafter
    from angioscribe.report.drafting import ClueSource
    from angioscribe.report.records import Draft

LANGUAGES = {"en": ("en",), "ja": ("ja",), "both": ("en", "ja")}
COLUMNS = ("id", "lang", "model", "text", "path", "error")


def report(
    inputs: Annotated[
        list[Path] | None,
        typer.Argument(help="Study folders (one or several studies), cines or image files."),
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="en, ja or both.")] = "both",
    clinical: Annotated[
        str | None,
        typer.Option("--clinical", help="Pre-procedure clinical text file, or - for stdin."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="Drafter for both languages (NAME), or per language (en=NAME ja=NAME); "
            "repeatable. Default: the shipped default drafter.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the drafts to this JSONL file.")
    ] = None,
    corpus: Annotated[
        Path | None,
        typer.Option("--corpus", help="Draft the records of a report corpus instead of INPUTs, "
                     "under their ids (score them with evaluate reports --truth CORPUS)."),
    ] = None,
    split: Annotated[
        str | None, typer.Option("--split", help="With --corpus: only train, val or test.")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option("--source", help="With --corpus: only records of this source (sim, arcade)."),
    ] = None,
    clues: Annotated[
        str | None,
        typer.Option("--clues", help="With --corpus: the findings given to the drafter: corpus "
                     "(the record's clues, else its findings), truth (its findings) or models "
                     "(the image chain on its images, as for INPUTs). Default: corpus."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Draft a diagnosis and treatment report per study and language, from the key frames and
    the per-segment findings the image models give.

    Records carry id, path, study, lang, model, text, clues (the findings used) and key_frames;
    the --out file is valid --pred input for `evaluate reports` and `review export`. An input
    that cannot be drafted is a record with its path and error, and the batch goes on.
    """
    from angioscribe.errors import InputError
    from angioscribe.report.drafters import DEFAULT_DRAFTER, create_drafter
    from angioscribe.report.drafting import draft_paths

    if corpus is None and (split, source, clues) != (None, None, None):
        raise typer.BadParameter("--split, --source and --clues choose corpus records: give "
                                 "--corpus", param_hint="--corpus")
    if corpus is not None and (inputs or clinical is not None):
        raise typer.BadParameter("a corpus's records carry their own images and clinical "
                                 "text: no INPUTs or --clinical with it", param_hint="--corpus")
    if corpus is None and not inputs:
        raise typer.BadParameter("give study folders, cines or images, or --corpus",
                                 param_hint="INPUTS")
    clue_source = _clue_source(clues or "corpus")
    records = _corpus_records(corpus, split, source) if corpus else []
    languages = languages_of(lang)
    models = _models(model or [DEFAULT_DRAFTER], languages)
    clinical_text = _clinical_text(clinical)
    try:
        drafters = {language: create_drafter(models[language], language)
                    for language in languages}
    except InputError as error:
        raise typer.BadParameter(str(error), param_hint="--model") from None
    results = (_corpus_drafts(records, drafters, clue_source, corpus) if corpus
               else draft_paths(inputs or [], drafters, clinical_text))
    with RecordSink(as_json, COLUMNS, title="Draft reports") as sink, _drafts_file(out) as file:
        for path, result in results:
            if isinstance(result, InputError):
                sink.emit(error_record(path, result.problem))
                continue
            record = result.to_record()
            if file is not None:
                file.write(to_json(record) + "\n")
                file.flush()
            sink.emit(record)


def _clue_source(value: str) -> ClueSource:
    from angioscribe.report.drafting import CLUE_SOURCES

    if value not in CLUE_SOURCES:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(CLUE_SOURCES)}",
                                 param_hint="--clues")
    return value  # type: ignore[return-value]


def _corpus_records(corpus: Path, split: str | None, source: str | None) -> list[CorpusRecord]:
    """The corpus's records of the split and source asked for, read and checked before any
    model loads; a usage error when there are none."""
    from angioscribe.errors import InputError
    from angioscribe.report.corpus import SPLITS, read_corpus

    if split is not None and split not in SPLITS:
        raise typer.BadParameter(f"{split!r} is not one of {', '.join(SPLITS)}",
                                 param_hint="--split")
    try:
        records = [record for record in read_corpus(corpus)
                   if split in (None, record.split) and source in (None, record.source)]
    except InputError as error:
        raise typer.BadParameter(str(error), param_hint="--corpus") from None
    if not records:
        raise typer.BadParameter(f"{corpus}: no record of split {split or 'any'} and source "
                                 f"{source or 'any'}", param_hint="--corpus")
    return records


def _corpus_drafts(records: list[CorpusRecord], drafters: Mapping[str, Drafter],
                   clues: ClueSource, corpus: Path) -> Iterator[tuple[str, Draft | InputError]]:
    """(where, draft or error) per record: the corpus file, `CORPUS#id` for a record that
    could not be drafted."""
    from angioscribe.errors import InputError
    from angioscribe.report.drafting import draft_corpus

    for record, result in draft_corpus(records, drafters, clues, corpus):
        yield (f"{corpus}#{record.id}" if isinstance(result, InputError) else str(corpus)), result


def languages_of(lang: str) -> tuple[str, ...]:
    """The languages a --lang value names; a usage error (exit 2) for any other value."""
    if lang not in LANGUAGES:
        raise typer.BadParameter(f"{lang!r} is not one of en, ja, both", param_hint="--lang")
    return LANGUAGES[lang]


def _models(values: list[str], languages: tuple[str, ...]) -> dict[str, str]:
    """{language: drafter} from `--model NAME` (every language) or `--model LANG=NAME`."""
    models: dict[str, str] = {}
    for value in values:
        language, separator, name = value.partition("=")
        if not separator:
            models |= dict.fromkeys(LANGUAGES["both"], value)
        elif language in LANGUAGES["both"] and name:
            models[language] = name
        else:
            raise typer.BadParameter(f"{value!r}: use NAME or en=NAME / ja=NAME",
                                     param_hint="--model")
    missing = [language for language in languages if language not in models]
    if missing:
        raise typer.BadParameter(f"no drafter for {', '.join(missing)}", param_hint="--model")
    return models


def _clinical_text(source: str | None) -> str | None:
    if source is None:
        return None
    if source == "-":
        return sys.stdin.read().strip() or None
    try:
        return Path(source).read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError) as error:
        raise typer.BadParameter(f"{source}: cannot read ({error})", param_hint="--clinical") \
            from None


@contextmanager
def _drafts_file(path: Path | None) -> Iterator[IO[str] | None]:
    """The --out JSONL, emptied before the first draft; None without --out."""
    if path is None:
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as file:
        yield file
