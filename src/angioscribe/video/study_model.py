"""The whole study model: video encoder, text encoder, view pooling, per-segment heads.

One forward pass gives what both losses need: every valid video's embedding (contrastive, with
the texts' embeddings) and the study's per-segment outputs from the pooled views. The heads
cover DeepCORO-CLIP's 18 segments x 5 findings: stenosis % (regression, 0-100), >= 70 %
stenosis, CTO, thrombus and calcification (logits).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from angioscribe.anatomy import DEEPCORO_SEGMENTS
from angioscribe.video.config import FRAME_FEATURES, VideoConfig
from angioscribe.video.encoders import build_video_encoder
from angioscribe.video.pooling import StudyPooling
from angioscribe.video.text import TextEncoder

FINDINGS = ("stenosis_percent", "significant", "cto", "thrombus", "calcification")
BINARY_FINDINGS = FINDINGS[1:]


class VideoStudyModel(nn.Module):
    """(B, V, ...) video inputs with a (B, V) validity mask (+ texts) -> embeddings and heads."""

    def __init__(self, config: VideoConfig, pretrained: bool) -> None:
        super().__init__()
        self.config = config
        self.video = build_video_encoder(config, pretrained)
        self.text = TextEncoder(config)
        self.pooling = StudyPooling(config.embed_dim, config.pooling, config.pool_heads,
                                    config.dropout)
        self.heads = nn.Linear(config.embed_dim, len(DEEPCORO_SEGMENTS) * len(FINDINGS))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / config.temperature)))
        self.logit_bias = nn.Parameter(torch.tensor(-10.0 if config.loss == "siglip" else 0.0),
                                       requires_grad=config.loss == "siglip")

    def forward(self, inputs: torch.Tensor, valid: torch.Tensor,
                texts: list[str] | None = None) -> dict[str, torch.Tensor]:
        """`videos` (B, V, D) (zeros where not valid), `study` (B, 18, 5): stenosis % in
        column 0, logits in the others; `texts` (N, D) when texts are given; the contrastive
        temperature and bias (returned, so DDP sees them used in the forward pass)."""
        embedded = self.video(inputs[valid])
        videos = embedded.new_zeros(*valid.shape, embedded.shape[-1])
        videos[valid] = embedded
        study = self.heads(self.pooling(videos, valid)).view(len(videos),
                                                             len(DEEPCORO_SEGMENTS), -1)
        percent = 100 * torch.sigmoid(study[..., :1])
        outputs = {"videos": videos, "study": torch.cat([percent, study[..., 1:]], dim=-1),
                   "logit_scale": self.logit_scale, "logit_bias": self.logit_bias}
        if texts is not None:
            outputs["texts"] = self.text(list(texts))
        return outputs

    def frozen_prefixes(self) -> tuple[str, ...]:
        """State-dict prefixes of the frozen parts with package weights: they load from their
        packages, not from the artifact, which stays a few MB (frozen random weights, in
        tests, travel in the artifact)."""
        config, prefixes = self.config, []
        if config.video_encoder == FRAME_FEATURES and config.video_pretrained:
            prefixes.append("video.frame_encoder.")
        if config.text_pretrained and not config.train_text:
            prefixes.append("text.bert.")
        return tuple(prefixes)

    def trained_state(self) -> dict[str, torch.Tensor]:
        """The weights an artifact keeps: everything but `frozen_prefixes`."""
        frozen = self.frozen_prefixes()
        return {key: value for key, value in self.state_dict().items()
                if not key.startswith(frozen)}


def build_video_study_model(config: dict[str, Any], encoder_pretrained: bool
                            ) -> VideoStudyModel:
    """Registry builder. Frozen parts always load their package weights; a trainable MViT
    loads Kinetics weights only at a training start (`encoder_pretrained`)."""
    settings = VideoConfig.from_dict(config)
    frozen_video = settings.video_encoder == FRAME_FEATURES
    pretrained = settings.video_pretrained and (frozen_video or encoder_pretrained)
    return VideoStudyModel(settings, pretrained)
