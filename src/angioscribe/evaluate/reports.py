"""Score model drafts against ground truth: error categories, BLEU-4/ROUGE-L and VLScore.

The library side of `angioscribe evaluate reports`; the result is one `DraftScores` per draft,
which `report_tables` turns into Table 4 and Table 3 and `report_figures` into Figures 5-6.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from angioscribe.errors import InputError
from angioscribe.evaluate.embedders import Embedder, load_image
from angioscribe.evaluate.report_errors import report_errors, segment_agreement
from angioscribe.evaluate.report_tables import DraftScores
from angioscribe.evaluate.text_metrics import bleu4, rouge_l, tokenize
from angioscribe.evaluate.vlscore import Calibration, embed_triples, triangle_area, vlscore
from angioscribe.report.language import resolve_language
from angioscribe.report.parse import parse_report
from angioscribe.report.records import Draft, Truth


@dataclass
class CalibratedEmbedder:
    """An embedder with its stored C; the metric is named after the embedder."""

    embedder: Embedder
    calibration: Calibration

    @property
    def metric(self) -> str:
        return f"vlscore:{self.embedder.name}"


def score_drafts(
    drafts: Sequence[Draft],
    truths: Mapping[str, Truth],
    embedders: Sequence[CalibratedEmbedder] = (),
) -> list[DraftScores]:
    """Errors and text metrics for every draft; VLScore where the truth has an image."""
    missing = [d.case_id for d in drafts if d.case_id not in truths]
    if missing:
        raise InputError(
            "predictions", f"{len(missing)} drafts have no truth record (e.g. id {missing[0]!r})"
        )
    scores = [_score_text(draft, truths[draft.case_id]) for draft in drafts]
    for calibrated in embedders:
        _add_vlscore(drafts, truths, scores, calibrated)
    return scores


def _score_text(draft: Draft, truth: Truth) -> DraftScores:
    lang = resolve_language(draft.lang, draft.text, f"draft {draft.case_id}")
    parsed = parse_report(draft.text, lang)
    errors = report_errors(parsed, truth.report)
    scores = DraftScores(
        model=draft.model,
        case_id=draft.case_id,
        group=truth.group,
        errors={k: v for k, v in errors.to_dict().items() if k != "reasons"},
        reasons=errors.reasons,
        segments=segment_agreement(parsed, truth.report).to_dict(),
    )
    if truth.reference(lang):
        candidate, reference = tokenize(draft.text, lang), tokenize(truth.reference(lang), lang)
        scores.metrics["bleu4"] = bleu4(candidate, reference)
        scores.metrics["rouge_l"] = rouge_l(candidate, reference)
    return scores


def _add_vlscore(
    drafts: Sequence[Draft],
    truths: Mapping[str, Truth],
    scores: list[DraftScores],
    calibrated: CalibratedEmbedder,
) -> None:
    rows = [i for i, d in enumerate(drafts)
            if truths[d.case_id].image and truths[d.case_id].reference(d.lang)]
    if not rows:
        return
    images = [load_image(truths[drafts[i].case_id].image) for i in rows]
    references = [truths[drafts[i].case_id].reference(drafts[i].lang) for i in rows]
    generated = [drafts[i].text for i in rows]
    embedded = embed_triples(
        calibrated.embedder, images, references, generated, calibrated.calibration.normalize
    )
    values = vlscore(triangle_area(*embedded), calibrated.calibration.c)
    for i, value in zip(rows, values, strict=True):
        scores[i].metrics[calibrated.metric] = float(value)
