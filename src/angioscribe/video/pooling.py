"""The views of a study into one vector: attention with a CLS token, a mean, or one view.

Padding slots (a study has fewer than `max_videos` cines) are masked out of every mode: they are
never attended, never averaged, never picked, so a padded study predicts exactly as it would
alone. `mean` and `single` are DeepCORO-CLIP's ablations of the attention pooling.
"""

from __future__ import annotations

import torch
from torch import nn


class StudyPooling(nn.Module):
    """(B, V, D) video embeddings + (B, V) validity -> (B, D)."""

    def __init__(self, dim: int, mode: str, heads: int, dropout: float) -> None:
        super().__init__()
        self.mode = mode
        self.norm = nn.LayerNorm(dim)
        if mode == "attention":  # only then: DDP refuses parameters a forward never uses
            self.cls = nn.Parameter(torch.zeros(1, 1, dim))
            self.attention = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout,
                                                        batch_first=True, norm_first=True)
            nn.init.trunc_normal_(self.cls, std=0.02)

    def forward(self, videos: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        if self.mode == "mean":
            weights = valid.unsqueeze(-1).to(videos.dtype)
            return self.norm((videos * weights).sum(1) / weights.sum(1).clamp(min=1))
        if self.mode == "single":
            first = valid.to(torch.int8).argmax(1)
            return self.norm(videos[torch.arange(len(videos)), first])
        tokens = torch.cat([self.cls.expand(len(videos), -1, -1), videos], dim=1)
        padding = torch.cat([torch.zeros_like(valid[:, :1]), ~valid], dim=1)
        return self.norm(self.attention(tokens, src_key_padding_mask=padding)[:, 0])
