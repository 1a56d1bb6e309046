"""Every drafter scored the same way, in English and Japanese, on two held-out sets.

- **sim-truth**, **sim-models**: simulator studies of the corpus's val and test splits, with
  clues from the truth, and from the image chain on the study's cines (end to end, as
  `angioscribe report` drafts a study: key-frame classifier, SYNTAX and stenosis models, QCA);
  BLEU-4 and ROUGE-L against the simulator's own reports, treatment logic against the
  guideline (the truth has % stenosis);
- **arcade-models**: ARCADE val frames, clues from the image chain on each frame, end to end;
  ARCADE labels no %, and its targets are the template's own text, so the numbering,
  detection and treatment categories and the text metrics are not reported there.

Each drafter's drafts (`report.drafting.draft_corpus`: the code of `report --corpus`) are
scored by `evaluate reports`' code against the corpus: the five error categories (drafts with
at least one, bootstrap 95 % CI over patients), the stenosed segments the drafts name
(precision, recall, F1 pooled over drafts, CI) and side errors. VLScore is not measured: no
image-text embedder ships for offline use, and the simulator's key frames are cines
(`evaluate reports --embedder` scores corpora of image files).

    python bench/bench_drafters.py                       # template; builds both corpora
    python bench/bench_drafters.py --sim-corpus S.jsonl --arcade-corpus A.jsonl \\
        --drafter runs/angio-vlm-270m-en/angio-vlm-270m-en.safetensors ...

Drafters: `findings-template`, every `runs/angio-vlm-270m-*/*.safetensors` adapter (unless
`--no-trained`), and each `--drafter` (a registered name or an adapter file); an adapter
drafts only its own language. Results: bench/results/NAME.json (record.py, with machine and
date) and bench/results/NAME.md (`--name`, default drafters), the table docs/reports.md quotes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from record import RESULTS, machine, record, revision

from angioscribe.errors import InputError
from angioscribe.evaluate.report_errors import ERROR_CATEGORIES
from angioscribe.evaluate.report_tables import error_table, metric_table, naming_table
from angioscribe.evaluate.reports import score_drafts
from angioscribe.report.corpus import (
    CorpusRecord,
    arcade_samples,
    corpus_records,
    read_corpus,
    sim_samples,
    write_corpus,
)
from angioscribe.report.draft import Drafter, DraftRequest
from angioscribe.report.drafters import create_drafter
from angioscribe.report.drafting import corpus_requests, write_draft
from angioscribe.report.records import Draft, read_truths
from angioscribe.report.template import TEMPLATE_MODEL
from angioscribe.sim.writers import dataset_seeds, write_dataset

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
LANGUAGES = ("en", "ja")
SIM_SPLITS = ("val", "test")
# name -> (corpus source, where the clues come from)
SETS = {"sim-truth": ("sim", "truth"), "sim-models": ("sim", "models"),
        "arcade-models": ("arcade", "models")}
TEXT_METRICS = ("bleu4", "rouge_l")
# ARCADE labels no %: no true lesion is significant there, so numbering, detection and plan
# errors cannot be told; its side, laterality, logic and named segments can.
NOT_ON_ARCADE = ("vessel", "treatment", "stenosis")


def main() -> None:
    args = _arguments()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-drafters-") as scratch:
        work = args.out or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        corpora = {"sim": _sim_records, "arcade": _arcade_records}
        chosen = {source: corpora[source](args, work)
                  for source in dict.fromkeys(SETS[name][0] for name in args.sets)}
        sets = {name: (*chosen[SETS[name][0]], SETS[name][1]) for name in args.sets}
        load_before = os.getloadavg()[0]
        rows, failures, seconds = [], [], {}
        for set_name, (corpus, records, clues) in sets.items():
            start = time.perf_counter()
            requests = list(corpus_requests(records, clues))
            seconds[f"{set_name}_requests_s"] = round(time.perf_counter() - start, 1)
            failures += [{"set": set_name, "id": r.id, "error": q.problem}
                         for r, q in requests if isinstance(q, InputError)]
            truths = read_truths(corpus)
            for source in _drafter_sources(args.drafter, args.trained):
                rows += _scored(set_name, source, requests, truths, args, work)
    metrics = {"rows": rows, "failed": failures, "load_average_before": round(load_before, 2),
               "load_average_after": round(os.getloadavg()[0], 2), **seconds,
               "sets": {name: {"records": len(records), "clues": clues}
                        for name, (_, records, clues) in sets.items()}}
    table = RESULTS / f"{args.name}.md"
    path = record(args.name, metrics, notes=f"bench/bench_drafters.py; table in {table.name}")
    markdown = _markdown(rows, metrics, args)
    table.write_text(markdown, encoding="utf-8")
    print(markdown)
    print(f"wrote {path} and {table}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sim-corpus", type=Path, help="Report corpus with sim records "
                        "(default: build one from --sim-studies new simulator studies).")
    parser.add_argument("--sim-studies", type=int, default=30)
    parser.add_argument("--sets", nargs="+", choices=tuple(SETS), default=list(SETS),
                        help="Which sets (default: all).")
    parser.add_argument("--arcade-corpus", type=Path, help="Report corpus with ARCADE records "
                        "(default: build one from the ARCADE copy beside the repository).")
    parser.add_argument("--arcade-limit", type=int, help="Only the first N ARCADE val frames "
                        "(the image chain takes several seconds a frame).")
    parser.add_argument("--drafter", action="append", default=[],
                        help="A registered drafter or an adapter file; repeatable.")
    parser.add_argument("--out", type=Path, help="Keep the built corpora and every drafter's "
                        "drafts here (SET-DRAFTER-LANG.jsonl, `evaluate reports --pred` input).")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-trained", dest="trained", action="store_false",
                        help="Leave out the runs/angio-vlm-270m-* adapters.")
    parser.add_argument("--name", default="drafters", help="Results under bench/results/NAME"
                        ".json and NAME.md (a run of other drafters beside the main one).")
    return parser.parse_args()


def _chosen(path: Path, source: str, splits: Sequence[str], limit: int | None
            ) -> tuple[Path, list[CorpusRecord]]:
    """(the corpus file, its records of `source` in `splits`, the first `limit` ids)."""
    records = [r for r in read_corpus(path) if r.source == source and r.split in splits]
    ids = set(list(dict.fromkeys(r.id for r in records))[:limit])
    return path, [r for r in records if r.id in ids]


def _sim_records(args: argparse.Namespace, scratch: Path) -> tuple[Path, list[CorpusRecord]]:
    path = args.sim_corpus
    if path is None:
        seeds = dataset_seeds(0, args.sim_studies)
        dataset = write_dataset(scratch / "sim", seeds, rle=True).parent
        path = scratch / "sim.jsonl"
        write_corpus(corpus_records(sim_samples(dataset)), path)
    return _chosen(path, "sim", SIM_SPLITS, None)


def _arcade_records(args: argparse.Namespace, scratch: Path) -> tuple[Path, list[CorpusRecord]]:
    path = args.arcade_corpus
    if path is None:
        path = scratch / "arcade.jsonl"
        write_corpus(corpus_records(arcade_samples(DATA / "arcade").samples), path)
    return _chosen(path, "arcade", ("val",), args.arcade_limit)


def _drafter_sources(given: Sequence[str], trained: bool) -> list[str]:
    """The template, the adapters of runs/angio-vlm-270m-* (unless `trained` is off), and
    the drafters given."""
    runs = REPO.glob("runs/angio-vlm-270m-*/*.safetensors") if trained else []
    found = sorted(str(path) for path in runs)
    return list(dict.fromkeys([TEMPLATE_MODEL, *found, *given]))


def _scored(set_name: str, source: str, requests: list[tuple[CorpusRecord, Any]],
            truths: dict, args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """One row per language the drafter writes: its tables on this set, and its speed."""
    rows = []
    adapter = Path(source)  # an adapter is named by its run folder too: ablations share names
    label = f"{adapter.parent.name}/{adapter.stem}" if adapter.is_file() else source
    for lang in LANGUAGES:
        try:
            drafter = create_drafter(source, lang)
        except InputError:  # an adapter of the other language
            continue
        chosen = [(r, q) for r, q in requests if r.lang == lang and isinstance(q, DraftRequest)]
        if not chosen:
            continue
        start = time.perf_counter()
        drafts = [_draft(drafter, label, record, request) for record, request in chosen]
        seconds = (time.perf_counter() - start) / len(drafts)
        name = f"{set_name}-{label.replace('/', '_')}-{lang}.jsonl"
        with (work / name).open("w", encoding="utf-8") as file:
            file.writelines(json.dumps(d.to_record(), ensure_ascii=False) + "\n" for d in drafts)
        scores = score_drafts(drafts, truths)
        errors = error_table(scores, args.n_boot)[0]
        naming = naming_table(scores, args.n_boot)[0]
        text = {m["metric"]: m for m in metric_table(scores, TEXT_METRICS, args.n_boot)}
        rows.append({"set": set_name, "lang": lang, "drafter": label, "n": len(drafts),
                     "ms_per_draft": round(1000 * seconds, 3), "errors": errors,
                     "segments": naming,
                     "text": {} if set_name.startswith("arcade") else text})
    return rows


def _draft(drafter: Drafter, label: str, record: CorpusRecord, request: DraftRequest) -> Draft:
    draft = write_draft(drafter, request, record.id, record.id)
    draft.model = label
    return draft


def _rate(row: dict[str, Any], key: str) -> str:
    low, high = row[f"{key}_ci"]
    return f"{row[f'{key}_rate']:.0%} [{low:.0%}, {high:.0%}]"


def _estimate(row: dict[str, Any], key: str) -> str:
    """"0.63 [0.55, 0.70]"; a dash where it is undefined (a precision of drafts that name no
    segment at all)."""
    if math.isnan(row[key]):
        return "–"
    low, high = row[f"{key}_ci"]
    return f"{row[key]:.2f} [{low:.2f}, {high:.2f}]"


def _markdown(rows: list[dict[str, Any]], metrics: dict[str, Any],
              args: argparse.Namespace) -> str:
    """The table docs/reports.md quotes, with when, where and how it was measured."""
    info = machine()
    when = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    header = ["set", "lang", "drafter", "n", *ERROR_CATEGORIES, "side errors",
              "segment F1", "precision", "recall", "BLEU-4", "ROUGE-L", "ms/draft"]
    lines = [f"# Drafters compared ({when})", "",
             f"{info['cpu']}, {info['cores']} cores, torch threads {args.threads}, angioscribe "
             f"{revision()}; load average {metrics['load_average_before']} before, "
             f"{metrics['load_average_after']} after. Sets: "
             + "; ".join(f"{name} {s['records']} records, clues from {s['clues']}"
                         for name, s in metrics["sets"].items()) + ". "
             f"Drafts with at least one error of each category, rate [95 % CI]; segment F1, "
             f"precision, recall pooled over drafts [95 % CI]; bootstrap {args.n_boot} "
             f"resamples over patients. n/a: not measurable there (ARCADE's truth has no %, "
             f"so no true lesion is significant, and its targets are the template's own "
             f"text).", "",
             "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        errors, naming, text = row["errors"], row["segments"], row["text"]
        arcade = row["set"].startswith("arcade")
        cells = [row["set"], row["lang"], row["drafter"], str(row["n"]),
                 *("n/a" if arcade and category in NOT_ON_ARCADE else _rate(errors, category)
                   for category in ERROR_CATEGORIES),
                 f"{naming['side_errors']} ({_rate(naming, 'side')})",
                 _estimate(naming, "f1"), _estimate(naming, "precision"),
                 _estimate(naming, "recall"),
                 *(f"{text[m]['mean']:.3f}" if m in text else "n/a" for m in TEXT_METRICS),
                 f"{row['ms_per_draft']:.3g}"]
        lines.append("| " + " | ".join(cells) + " |")
    if metrics["failed"]:
        lines += ["", f"Not drafted: {len(metrics['failed'])} records: "
                  + json.dumps(metrics["failed"][:5], ensure_ascii=False)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
