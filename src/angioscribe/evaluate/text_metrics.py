"""BLEU-4 and ROUGE-L for report text, with Japanese tokenised into words.

Japanese has no spaces, so a whitespace tokenizer sees a whole sentence as one "word" and any
paraphrase scores 0. Japanese is tokenised with MeCab (fugashi) and the UniDic-lite dictionary;
English with a simple word regex. Both lowercase and keep "%" and "#", which carry the stenosis
grade and segment number ("#11", "75 %"). Sentence-level scores, averaged per model.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from functools import cache

from angioscribe.report.language import Language

_ENGLISH_WORD = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*|[%#]")


def tokenize(text: str, lang: Language) -> list[str]:
    """Words of `text`: MeCab surface forms for Japanese, regex words for English."""
    normalised = unicodedata.normalize("NFKC", text).lower()
    if lang == "ja":
        return [word for word in (w.surface for w in _tagger()(normalised)) if _is_word(word)]
    return _ENGLISH_WORD.findall(normalised)


@cache
def _tagger():
    """One MeCab tagger per process; loading the dictionary takes a moment."""
    import fugashi

    return fugashi.Tagger()


def _is_word(token: str) -> bool:
    return token in ("%", "#") or any(unicodedata.category(c)[0] in "LN" for c in token)


def _ngrams(tokens: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def bleu4(candidate: list[str], reference: list[str]) -> float:
    """Sentence BLEU-4 with Lin & Och's add-one smoothing of the 2- to 4-gram precisions.

    Unsmoothed sentence BLEU is 0 whenever one 4-gram order has no match, which short reports
    hit constantly; smoothing only orders >= 2 keeps "no word in common" at exactly 0.
    """
    if not candidate or not reference:
        return 0.0
    log_precision = 0.0
    for n in range(1, 5):
        cand, ref = _ngrams(candidate, n), _ngrams(reference, n)
        matches = sum((cand & ref).values())
        total = sum(cand.values())
        if n == 1 and matches == 0:
            return 0.0
        smoothing = 0 if n == 1 else 1
        log_precision += math.log((matches + smoothing) / (total + smoothing)) / 4
    brevity = min(0.0, 1.0 - len(reference) / len(candidate))
    return math.exp(brevity + log_precision)


def rouge_l(candidate: list[str], reference: list[str]) -> float:
    """ROUGE-L F1: the longest common subsequence against both lengths."""
    lcs = _lcs_length(candidate, reference)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(candidate), lcs / len(reference)
    return 2 * precision * recall / (precision + recall)


def _lcs_length(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]
