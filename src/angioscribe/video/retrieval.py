"""Text->video and video->text retrieval in the shared space, with the chance level of each
number (a Recall@10 means nothing without it: over 20 candidates chance is already 0.5).

A query's positives are every candidate whose text is the query's text (several videos of a
study share a side's report, and identical reports of different studies are not told apart).
"""

from __future__ import annotations

from typing import Any

import numpy as np

RECALL_AT = (1, 5, 10, 25, 50)


def first_positive_ranks(similarity: np.ndarray, match: np.ndarray) -> np.ndarray:
    """1-based rank of each query's best-ranked positive (rows: queries, columns: candidates)."""
    order = np.argsort(-similarity, axis=1, kind="stable")
    hits = np.take_along_axis(match, order, axis=1)
    return hits.argmax(axis=1) + 1


def _first_hit_distribution(candidates: int, positives: int) -> np.ndarray:
    """P(first positive at rank r), r = 1..candidates, for a random order."""
    ranks = np.arange(1, candidates - positives + 2)
    miss = np.r_[1.0, np.cumprod((candidates - positives - np.arange(len(ranks) - 1))
                                 / (candidates - np.arange(len(ranks) - 1)))]
    return miss * positives / (candidates - ranks + 1)


def retrieval_metrics(similarity: np.ndarray, match: np.ndarray) -> dict[str, Any]:
    """Recall@k, median rank and MRR, each beside its expected value for a random order."""
    match = np.asarray(match, bool)
    keep = match.any(axis=1)
    similarity, match = similarity[keep], match[keep]
    ranks = first_positive_ranks(similarity, match)
    candidates = similarity.shape[1]
    chance = [_first_hit_distribution(candidates, int(p)) for p in match.sum(axis=1)]
    record: dict[str, Any] = {"queries": int(len(ranks)), "candidates": int(candidates)}
    for k in RECALL_AT:
        record[f"recall@{k}"] = float(np.mean(ranks <= k))
        record[f"chance_recall@{k}"] = float(np.mean([d[:k].sum() for d in chance]))
    record["median_rank"] = float(np.median(ranks))
    record["chance_median_rank"] = float(np.median(
        [int(np.searchsorted(np.cumsum(d), 0.5)) + 1 for d in chance]))
    record["mrr"] = float(np.mean(1.0 / ranks))
    record["chance_mrr"] = float(np.mean([(d / np.arange(1, len(d) + 1)).sum() for d in chance]))
    return record


def retrieval_report(videos: np.ndarray, video_texts: list[str], texts: list[str],
                     text_embeddings: np.ndarray) -> dict[str, Any]:
    """Both directions over normalised embeddings: videos (N, D) with the text each shows,
    unique texts (M,) with their embeddings (M, D)."""
    similarity = _normalise(videos) @ _normalise(text_embeddings).T
    match = np.asarray(video_texts)[:, None] == np.asarray(texts)[None, :]
    return {"text_to_video": retrieval_metrics(similarity.T, match.T),
            "video_to_text": retrieval_metrics(similarity, match)}


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
