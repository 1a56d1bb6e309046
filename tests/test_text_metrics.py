"""BLEU-4 and ROUGE-L sanity, and the Japanese tokenisation that makes them meaningful."""

from __future__ import annotations

import pytest

from angioscribe.evaluate.text_metrics import bleu4, rouge_l, tokenize

EN = "LCX #11 shows 75% stenosis. Consider treatment plan in context of other findings."
JA = (
    "LCX #11に75%の狭窄が確認できます。他のアンギオ画像や、合併症を考慮して、"
    "治療方針を検討してください。"
)
JA_PARAPHRASE = "LCX #11に75%狭窄を認めます。合併症を考慮し、治療方針を検討して下さい。"


@pytest.mark.parametrize(("text", "lang"), [(EN, "en"), (JA, "ja"), ("LAD 90%", "en")])
@pytest.mark.parametrize("metric", [bleu4, rouge_l])
def test_identical_scores_one(text, lang, metric):
    tokens = tokenize(text, lang)
    assert metric(tokens, tokens) == pytest.approx(1.0)


@pytest.mark.parametrize("metric", [bleu4, rouge_l])
def test_disjoint_scores_zero(metric):
    assert metric(tokenize("RCA occluded", "en"), tokenize("normal left main", "en")) == 0.0
    assert metric([], tokenize(EN, "en")) == 0.0


def test_english_tokens_keep_numbers_percent_and_hash():
    assert tokenize("LCX #11: 75% stenosis.", "en") == ["lcx", "#", "11", "75", "%", "stenosis"]


def test_japanese_is_split_into_words_without_punctuation():
    tokens = tokenize(JA, "ja")
    assert {"狭窄", "治療", "#", "11", "%"} <= set(tokens)
    assert not {"。", "、"} & set(tokens)


@pytest.mark.parametrize("metric", [bleu4, rouge_l])
def test_japanese_paraphrase_scores_above_zero_only_when_tokenised(metric):
    tokenised = metric(tokenize(JA_PARAPHRASE, "ja"), tokenize(JA, "ja"))
    whole = metric(JA_PARAPHRASE.replace(" ", "").split(), JA.replace(" ", "").split())
    assert 0 < tokenised < 1
    assert whole == 0.0


def test_bleu_prefers_the_closer_candidate_and_penalises_brevity():
    reference = tokenize(EN, "en")
    close = tokenize("LCX #11 shows 75% stenosis. Consider the treatment plan.", "en")
    far = tokenize("RCA #2 shows 90% stenosis.", "en")
    assert bleu4(close, reference) > bleu4(far, reference) > 0
    assert bleu4(reference[:3], reference) < bleu4(reference[:-1], reference)


def test_rouge_l_is_the_lcs_f1():
    assert rouge_l(list("abcd"), list("axcy")) == pytest.approx(0.5)
