"""Video encoders behind one factory: a cine in, one `embed_dim` vector out.

- `effnetl0-temporal` (the CPU default): frozen EfficientNet-Lite0 features per frame (cached,
  `features`), then a small trainable temporal attention over frames x grid cells with a CLS
  token, projected to the shared space (a few hundred thousand parameters).
- `mvit-v2-s` (DeepCORO-CLIP's): torchvision's MViT-v2-S on the clip's pixels, grey repeated to
  RGB, its classifier replaced by a projection; Kinetics-400 weights by name when online.

Each encoder says which input it trains on (`input_kind`: cached "features" or "frames") and
turns a cine into that input (`prepare`), so datasets and inference never branch on the type.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.models.video import mvit

from angioscribe.cine import Cine
from angioscribe.errors import AngioscribeError
from angioscribe.video.config import FRAME_FEATURES, VideoConfig
from angioscribe.video.features import LITE0_FEATURES, FeatureCache, FrameFeatureEncoder
from angioscribe.video.frames import choose_frames, clip_tensor


class TemporalAttention(nn.Module):
    """(B, T, G, F) frame features -> (B, embed_dim): attention over all T*G tokens."""

    def __init__(self, config: VideoConfig, feature_dim: int = LITE0_FEATURES) -> None:
        super().__init__()
        width, tokens = config.temporal_width, config.frames * config.feature_grid ** 2
        self.input = nn.Sequential(nn.LayerNorm(feature_dim), nn.Linear(feature_dim, width))
        self.position = nn.Parameter(torch.zeros(1, tokens, width))
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        layer = nn.TransformerEncoderLayer(width, config.temporal_heads, 2 * width,
                                           config.dropout, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, config.temporal_depth,
                                            enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.project = nn.Linear(width, config.embed_dim)
        nn.init.trunc_normal_(self.position, std=0.02)
        nn.init.trunc_normal_(self.cls, std=0.02)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.input(features.float().flatten(1, 2)) + self.position
        x = torch.cat([self.cls.expand(len(x), -1, -1), x], dim=1)
        return self.project(self.norm(self.blocks(x)[:, 0]))


class FrameFeatureVideoEncoder(nn.Module):
    """Frozen Lite0 per frame + trainable `TemporalAttention`; trains on cached features."""

    input_kind = "features"

    def __init__(self, config: VideoConfig, pretrained: bool) -> None:
        super().__init__()
        self.config = config
        self.frame_encoder = FrameFeatureEncoder(config.feature_grid, pretrained,
                                                 config.feature_pool)
        self.temporal = TemporalAttention(config)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.temporal(features)

    def prepare(self, source: Path, read: Callable[[], Cine], cache: FeatureCache | None
                ) -> torch.Tensor:
        """The cine's (T, G, F) float16 features, from the cache when one is given."""
        if cache is not None:
            return torch.from_numpy(cache.load_or_compute(source, read, self.frame_encoder))
        from angioscribe.video.features import cine_features

        return torch.from_numpy(cine_features(read(), self.frame_encoder, self.config))


class MViTVideoEncoder(nn.Module):
    """MViT-v2-S (or a two-block MViT of the same class for tests) on (B, T, 1, H, W) clips."""

    input_kind = "frames"

    def __init__(self, config: VideoConfig, pretrained: bool) -> None:
        super().__init__()
        self.config = config
        self.net = _tiny_mvit(config) if config.mvit_tiny else _mvit_v2_s(config, pretrained)
        features = self.net.head[1].in_features
        self.net.head = nn.Sequential(nn.Dropout(config.dropout),
                                      nn.Linear(features, config.embed_dim))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        rgb = frames.float().expand(-1, -1, 3, -1, -1).transpose(1, 2)
        return self.net(rgb)

    def prepare(self, source: Path, read: Callable[[], Cine], cache: FeatureCache | None
                ) -> torch.Tensor:
        """The clip's (T, 1, size, size) pixels (pixels are not cached: MViT trains on them)."""
        cine = read()
        config = self.config
        indices = choose_frames(cine.frames, cine.fps, config.frames, config.stride,
                                config.reference_fps)
        return clip_tensor(cine.frames, np.asarray(indices), config.size)


def _mvit_v2_s(config: VideoConfig, pretrained: bool) -> mvit.MViT:
    if (config.frames, config.size) != (16, 224):
        raise AngioscribeError("MViT-v2-S takes 16 frames at 224 px; set mvit_tiny for others")
    if not pretrained:
        return mvit.mvit_v2_s()
    try:
        return mvit.mvit_v2_s(weights=mvit.MViT_V2_S_Weights.KINETICS400_V1)
    except Exception as error:  # offline, proxy, cache: the user needs the same advice
        raise AngioscribeError(
            f"could not get torchvision's Kinetics-400 MViT-v2-S weights ({error}); go online "
            "once so torchvision caches them, or set video_pretrained: false") from error


def _tiny_mvit(config: VideoConfig) -> mvit.MViT:
    """MViT-v2 (relative positions, residual pooling) with two 16-channel blocks."""
    blocks = [mvit.MSBlockConfig(1, 16, 16, [3, 3, 3], [3, 3, 3], [1, 1, 1], [1, 4, 4]),
              mvit.MSBlockConfig(2, 16, 32, [3, 3, 3], [3, 3, 3], [1, 2, 2], [1, 2, 2])]
    return mvit.MViT(spatial_size=(config.size, config.size), temporal_size=config.frames,
                     block_setting=blocks, residual_pool=True, residual_with_cls_embed=False,
                     rel_pos_embed=True, proj_after_attn=True)


def build_video_encoder(config: VideoConfig, pretrained: bool) -> nn.Module:
    """The configured video encoder; `pretrained` loads its ImageNet/Kinetics weights."""
    if config.video_encoder == FRAME_FEATURES:
        return FrameFeatureVideoEncoder(config, pretrained)
    return MViTVideoEncoder(config, pretrained)
