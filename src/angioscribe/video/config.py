"""The video model's recipe: every switch a `model_config` mapping of a training config may set.

It travels in the artifact's entry, so a trained model is rebuilt exactly as it was trained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from angioscribe.errors import InputError

FRAME_FEATURES = "effnetl0-temporal"
MVIT = "mvit-v2-s"
VIDEO_ENCODERS = (FRAME_FEATURES, MVIT)
MINILM = "minilm"
POOLINGS = ("attention", "mean", "single")
FEATURE_POOLS = ("average", "max")
LOSSES = ("clip", "siglip")


@dataclass(frozen=True)
class VideoConfig:
    """Network, frame choice and loss of a video study model.

    `video_encoder` is `effnetl0-temporal` (frozen ImageNet EfficientNet-Lite0 per frame, its
    features cached on disk, then a small trainable temporal attention: the CPU default) or
    `mvit-v2-s` (the paper's MViT-v2-S, trained end to end; Kinetics weights when
    `video_pretrained` and online). `mvit_tiny` builds MViT with two small blocks (tests).
    `frames` frames `stride` apart at `reference_fps` (the stride follows the cine's real frame
    rate), resized to `size` px; `feature_grid` keeps a g x g grid of each frame's features
    (1 = global pooling), so the temporal encoder still sees where in the frame things are;
    `feature_pool` (`average` or `max`) is how each grid cell pools the frame's feature map.
    `text_encoder` is `minilm` (the offline package) or a hub id / folder of a BERT model
    (BiomedBERT); `text_pretrained: false` builds a random `BertModel` of `text_hidden` x
    `text_layers` on MiniLM's tokenizer (tests). `train_text` fine-tunes it; otherwise only its
    projection trains. `pooling` is how the views of a study are combined (the ablation).
    `clip_weight` and `head_weight` weigh the contrastive and the per-segment losses.
    `table` is the training CSV (docs/video.md) or a list of them, joined (several archives, or
    extra training studies written apart), `val_fraction` the share of patients held out
    when it has no `Split` column, `feature_cache` the folder of cached frame features.
    """

    video_encoder: str = FRAME_FEATURES
    video_pretrained: bool = True
    mvit_tiny: bool = False
    frames: int = 16
    stride: int = 2
    reference_fps: float = 30.0
    size: int = 224
    feature_grid: int = 2
    feature_pool: str = "average"
    temporal_width: int = 128
    temporal_depth: int = 1
    temporal_heads: int = 4
    embed_dim: int = 512
    text_encoder: str = MINILM
    text_pretrained: bool = True
    text_hidden: int = 32
    text_layers: int = 2
    train_text: bool = False
    text_max_length: int = 128
    max_videos: int = 10
    pooling: str = "attention"
    pool_heads: int = 4
    dropout: float = 0.1
    loss: str = "clip"
    temperature: float = 0.07
    clip_weight: float = 1.0
    head_weight: float = 1.0
    huber_delta: float = 10.0
    table: str | list[str] | None = None
    val_fraction: float = 0.2
    feature_cache: str = "runs/video-features"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "model_config") -> VideoConfig:
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(source, f"unknown video model keys: {', '.join(unknown)}")
        config = replace(cls(), **values)
        for name, value, allowed in (("video_encoder", config.video_encoder, VIDEO_ENCODERS),
                                     ("pooling", config.pooling, POOLINGS),
                                     ("feature_pool", config.feature_pool, FEATURE_POOLS),
                                     ("loss", config.loss, LOSSES)):
            if value not in allowed:
                raise InputError(source, f"{name} {value!r} is not one of {', '.join(allowed)}")
        if not 1 <= config.max_videos:
            raise InputError(source, "max_videos must be at least 1")
        return config

    @property
    def cached_features(self) -> bool:
        """Whether training reads frozen per-frame features from the cache, not pixels."""
        return self.video_encoder == FRAME_FEATURES
