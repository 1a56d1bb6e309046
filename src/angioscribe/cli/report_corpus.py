"""`angioscribe data report-corpus`: a report-drafting corpus (JSONL) from simulator datasets
and ARCADE, in CAG-VLM's parallel-corpus form (schema: docs/drafting.md).

Thin: the corpus is built by `angioscribe.report.corpus`, imported inside the command so
`angioscribe --help` stays fast. One summary record per source and split; a source that
cannot be read is an error record and the others still go into the corpus.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from angioscribe.cli.contract import RecordSink
from angioscribe.cli.output import JsonOption
from angioscribe.cli.report import languages_of

COLUMNS = ("source", "path", "split", "samples", "derived", "skipped", "error")


def report_corpus(
    out: Annotated[Path, typer.Option("--out", help="Corpus JSONL to write.")],
    sim: Annotated[
        list[Path] | None,
        typer.Option("--sim", help="Simulator dataset (`sim dataset` output); repeatable."),
    ] = None,
    arcade: Annotated[
        Path | None,
        typer.Option("--arcade", help="ARCADE root, or a folder holding it as arcade/."),
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="en, ja or both.")] = "both",
    derive: Annotated[
        bool,
        typer.Option("--derive", help="Also ARCADE frames without syntax labels, their lesions "
                     "named by the shipped SYNTAX model (slow; marked derived)."),
    ] = False,
    model_clues: Annotated[
        bool,
        typer.Option("--model-clues", help="Run the shipped SYNTAX and stenosis models on every "
                     "ARCADE frame and keep their findings as the record's `clues` (about 1 s a "
                     "frame): drafters then learn from the evidence they will be given in use."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Write a report corpus: one record per sample and language (images, clinical text,
    target, findings). Patient ids are pseudonyms keyed by this installation's salt
    (ANGIOSCRIBE_DEID_SALT to share one)."""
    languages = languages_of(lang)
    if not sim and arcade is None:
        raise typer.BadParameter("give at least one source", param_hint="--sim / --arcade")
    from angioscribe.errors import InputError
    from angioscribe.report.corpus import arcade_samples, corpus_records, sim_samples, write_corpus

    samples = []
    with RecordSink(as_json, COLUMNS, title=f"Report corpus {out}") as sink:
        for dataset in sim or []:
            try:
                found = sim_samples(dataset)
            except InputError as error:
                sink.fail(dataset, error.problem, source="sim")
                continue
            samples += found
            _summarise(sink, "sim", dataset, found, {})
        if arcade is not None:
            try:
                corpus = arcade_samples(arcade, derive=derive, model_clues=model_clues)
            except InputError as error:
                sink.fail(arcade, error.problem, source="arcade")
            else:
                samples += corpus.samples
                _summarise(sink, "arcade", arcade, corpus.samples, corpus.skipped)
        if samples:
            count = write_corpus(corpus_records(samples, languages), out)
            typer.echo(f"{count} records in {out}", err=True)


def _summarise(sink: RecordSink, source: str, path: Path, samples: list[Any],
               skipped: dict[str, str]) -> None:
    """One record per split: samples and derived samples; the skipped frames on the first."""
    splits = Counter(sample.split for sample in samples)
    derived = Counter(sample.split for sample in samples if sample.derived)
    for index, split in enumerate(sorted(splits) or [None]):
        record: dict[str, Any] = {"source": source, "path": str(path), "split": split,
                                  "samples": splits[split], "derived": derived[split]}
        if index == 0:
            record["skipped"] = len(skipped)
            record["skipped_reasons"] = dict(Counter(skipped.values()))
        sink.emit(record)
