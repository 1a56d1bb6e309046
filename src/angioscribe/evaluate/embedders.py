"""Image-text embedders for VLScore: CLIP-style models by hub id or local path, or any object
with `embed_images` and `embed_texts`.

VLScore needs an image and two texts in one embedding space, so an embedder must embed both.
Hub models load through transformers (`AutoModel` with `get_image_features`/`get_text_features`:
SigLIP, SigLIP2, CLIP and their medical fine-tunes; ConceptCLIP with `trust_remote_code`).
MedCLIP ships as its own package rather than a transformers checkpoint; wrap it (or a project
model) in a small class with the two methods below and pass that instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from angioscribe.errors import InputError

HUB_PREFIX = "hf-hub:"


@runtime_checkable
class Embedder(Protocol):
    """What VLScore needs: images and texts as rows of one embedding space."""

    name: str

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


class HubClipEmbedder:
    """A transformers dual encoder (SigLIP/SigLIP2/CLIP-like) from a hub id or a local folder.

    The folder (or hub repository) holds the model, its tokenizer and its image processor, as
    `save_pretrained` writes them. Texts are padded to the model's maximum length, as SigLIP was
    trained (CLIP-like models are indifferent to it), and truncated to it.
    """

    def __init__(
        self,
        source: str,
        device: str = "cpu",
        batch_size: int = 16,
        trust_remote_code: bool = False,
    ) -> None:
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        self.name = source
        self.device = device
        self.batch_size = batch_size
        location = source.removeprefix(HUB_PREFIX)
        try:
            options = {"trust_remote_code": trust_remote_code}
            self.model = AutoModel.from_pretrained(location, **options).to(device).eval()
            self.tokenizer = AutoTokenizer.from_pretrained(location, **options)
            self.processor = AutoImageProcessor.from_pretrained(location, **options)
        except (OSError, ValueError) as error:
            raise InputError(source, f"cannot load a CLIP-style embedder here: {error}") from None
        text_config = getattr(self.model.config, "text_config", self.model.config)
        self.max_length = min(
            self.tokenizer.model_max_length, getattr(text_config, "max_position_embeddings", 512)
        )

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self._batched(images, self._image_batch)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._batched(texts, self._text_batch)

    def _batched(self, items: Sequence, embed) -> np.ndarray:
        import torch

        with torch.inference_mode():
            parts = [
                embed(items[i : i + self.batch_size]) for i in range(0, len(items), self.batch_size)
            ]
        return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)

    def _image_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        rgb = [image.convert("RGB") for image in images]
        pixels = self.processor(images=rgb, return_tensors="pt")["pixel_values"].to(self.device)
        return _pooled(self.model.get_image_features(pixel_values=pixels))

    def _text_batch(self, texts: Sequence[str]) -> np.ndarray:
        tokens = self.tokenizer(
            list(texts),
            padding="max_length",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.device)
        inputs = {k: v for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        return _pooled(self.model.get_text_features(**inputs))


def _pooled(output) -> np.ndarray:
    """transformers 5 returns a model output whose pooled (projected) embedding is the feature."""
    tensor = output if hasattr(output, "float") else output.pooler_output
    return tensor.float().cpu().numpy()


def load_embedder(source: str, device: str = "cpu", trust_remote_code: bool = False) -> Embedder:
    """An embedder from `hf-hub:ORG/NAME`, a bare hub id, or a local model folder.

    Nothing is downloaded unless transformers is allowed to reach the hub; offline, a hub id
    that is not in the local cache fails with an InputError that says so.
    """
    if not source.startswith(HUB_PREFIX) and not Path(source).exists() and "/" not in source:
        raise InputError(source, "not a local model folder, and not a hub id (hf-hub:ORG/NAME)")
    return HubClipEmbedder(source, device=device, trust_remote_code=trust_remote_code)


def load_image(path: str | Path) -> Image.Image:
    """An image file (PNG/JPEG/...) for embedding; errors name the file."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as error:
        raise InputError(path, f"cannot read image: {error}") from None
