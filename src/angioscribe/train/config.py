"""Training configuration: one dataclass, defaults per task, overrides from a YAML/JSON file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from angioscribe.errors import InputError


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs; saved into every checkpoint so a resume uses the same recipe.

    `model` names the registry entry whose architecture and labels are trained; `encoder`
    and `encoder_weights` override it (e.g. a larger timm encoder with "timm" hub weights).
    `init_from` (a .safetensors artifact of the same entry) starts from trained
    weights instead of ImageNet: fine-tuning a shipped model costs minutes, not an hour.
    `foreground_focus` is the share of segmentation crops centred near a labelled pixel.
    `lesion_gap` (stenosis) trains on masks with background between touching lesions, so
    adjacent annotations come out as separate polygons (`ArcadeImage.mask`).
    `lesion_centres` (stenosis, px) labels each lesion's centre as a third class within that
    radius (`ArcadeImage.mask(centres=...)`), for a model such as `stenosis-seg-centres`.
    `lesion_dice` (stenosis) scores the Dice term per annotated lesion, as the metric does,
    instead of over the batch (`DiceCELoss(lesion_reach=...)`, `lesion_dice_loss`).
    `zoom` (segmentation) enlarges frames by that factor before the network, in training crops
    and at inference alike (`Preprocess.zoom`; the artifact carries it).
    `augment: false` trains segmentation on plain crops (and flips where labels allow), without
    the X-ray geometry and exposure jitter (`XrayAugment.crops_only`).
    `extra_train` adds frames outside ARCADE's split to the training set, each entry a
    mapping with `images` (a folder) and `annotations` (a COCO file naming those frames): e.g.
    the stenosis pseudo-labels `angioscribe segment` writes for the syntax task's frames, which
    carry no stenosis labels of their own (self-training). Validation stays ARCADE val.
    `bf16` runs each training step's forward pass under bf16 autocast on a CPU too (on GPUs
    accelerate's bf16 is always on): about 25 % less time per step on a CPU with AMX. Weights,
    optimizer state, checkpoints, evaluation and export stay fp32.
    `sim_dir` adds simulated studies (`angioscribe sim dataset`) as a key-frame data source:
    the first `sim_studies` of them (by study id; all if None), of which the last
    `sim_val_studies` are validation studies, so a split never cuts through a study.
    `corpus` (report) is the JSONL corpus a drafter trains on, `lang` the one language it
    writes, and `model_config` overrides the drafter entry's network and prompt settings
    (`angioscribe.models.vlm.VLMConfig`: LoRA rank, clue switches, ...).
    `cache_workers` (video) computes the frame-feature cache before the first epoch in that
    many processes of one thread each (one per core is right); it changes no result.
    """

    task: str = "syntax"
    model: str = "syntax-seg"
    encoder: str | None = None
    encoder_weights: str | None = None
    init_from: str | None = None
    data_root: str = "../shared/data"
    sim_dir: str | None = None
    sim_studies: int | None = None
    sim_val_studies: int = 0
    out_dir: str = "runs/syntax-seg"
    epochs: int = 30
    batch_size: int = 8
    crop_size: int = 288
    foreground_focus: float = 0.0
    zoom: float | None = None
    lesion_gap: int = 0
    lesion_centres: int = 0
    augment: bool = True
    lesion_dice: bool = False
    extra_train: tuple[dict[str, str], ...] = ()
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    dice_weight: float = 1.0
    class_weight_power: float = 0.5
    eval_every_epochs: int = 2
    val_limit: int | None = None
    train_limit: int | None = None
    checkpoint_minutes: float = 10.0
    log_every_steps: int = 10
    max_steps: int | None = None
    threads: int = 2
    cache_workers: int = 1
    bf16: bool = False
    corpus: str | None = None
    lang: str = "en"
    model_config: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


TASK_DEFAULTS: dict[str, TrainConfig] = {
    "syntax": TrainConfig(),
    "stenosis": TrainConfig(task="stenosis", model="stenosis-seg", out_dir="runs/stenosis-seg"),
    "keyframe": TrainConfig(
        task="keyframe", model="keyframe-effnetl0", out_dir="runs/keyframe-effnetl0", epochs=6,
        batch_size=32, lr=5e-4, weight_decay=0.01, warmup_steps=50, class_weight_power=1.0,
        eval_every_epochs=1, checkpoint_minutes=5.0, threads=1,
    ),
    "report": TrainConfig(
        task="report", model="angio-vlm-270m", out_dir="runs/angio-vlm-270m-en", epochs=5,
        batch_size=4, lr=1e-4, weight_decay=0.0, warmup_steps=20, eval_every_epochs=1,
        log_every_steps=5, bf16=True, threads=1,
    ),
    "video": TrainConfig(
        task="video", model="video-effnetl0", out_dir="runs/video-effnetl0", epochs=40,
        batch_size=16, lr=5e-4, weight_decay=0.05, warmup_steps=20, eval_every_epochs=2,
        log_every_steps=5, checkpoint_minutes=5.0, threads=1,
    ),
}


def load_config(task: str, path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """The task's defaults, updated by the file (YAML or JSON) and then by `overrides`."""
    if task not in TASK_DEFAULTS:
        raise InputError(task, f"unknown training task; expected one of {sorted(TASK_DEFAULTS)}")
    values: dict[str, Any] = {}
    if path is not None:
        values.update(_read_mapping(Path(path)))
    values.update({key: value for key, value in overrides.items() if value is not None})
    known = {field.name for field in fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(path or "overrides", f"unknown config keys: {', '.join(unknown)}")
    if "extra_train" in values:  # a YAML list; the frozen config keeps a tuple
        values["extra_train"] = tuple(values["extra_train"] or ())
    config = replace(TASK_DEFAULTS[task], **values)
    if config.zoom is not None and not float(config.zoom) > 0:
        raise InputError(path or "overrides", f"zoom must be a positive factor, got {config.zoom}")
    if config.task != task:
        raise InputError(path or task, f"config is for task {config.task!r}, not {task!r}")
    return config


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(path, f"cannot read config: {error}") from error
    import yaml

    kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
    try:
        data = json.loads(text) if kind == "JSON" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise InputError(path, f"config is not valid {kind}: {error}") from error
    if not isinstance(data, dict):
        raise InputError(path, "config must be a mapping of TrainConfig fields")
    return data
