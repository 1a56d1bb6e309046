"""VLScore: how close a generated report is to the reference, seen from the image.

Dawidowicz et al. (NeurIPS 2024), as CAG-VLM uses it. With image embedding i, reference g and
generated report r, T is the area of the triangle they span,

    T = 1/2 * sqrt(|i - g|^2 |i - r|^2 - <i - g, i - r>^2),

and VLScore = max(1 - T / C, 0), where C is the largest T seen on a calibration set for the
same embedder (and the same normalisation choice): areas are not comparable across embedding
spaces, so C is stored beside the embedder and a score is only meaningful with its C.

The original does not L2-normalise embeddings; `normalize=True` puts all three on the unit
sphere first, which removes the influence of embedding norms (useful when a model's text and
image norms differ by orders of magnitude, as SigLIP's do).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from angioscribe.errors import InputError
from angioscribe.evaluate.embedders import HUB_PREFIX, Embedder

CALIBRATION_FILE = "vlscore_calibration.json"


def triangle_area(image: np.ndarray, reference: np.ndarray, generated: np.ndarray) -> np.ndarray:
    """T for each row of (N, D) embeddings (or one triple of (D,) vectors).

    Computed as 1/2 |a| |b - proj_a(b)| with a = i - g, b = i - r: the same quantity as the
    Gram form above, without its cancellation (for nearly collinear points the Gram form's
    difference of two large products loses half the digits). Averaging both projection orders
    keeps T exactly symmetric in reference and generated.
    """
    i = np.asarray(image, dtype=np.float64)
    a = i - np.asarray(reference, dtype=np.float64)
    b = i - np.asarray(generated, dtype=np.float64)
    return 0.25 * (_height_times_base(a, b) + _height_times_base(b, a))


def _height_times_base(base: np.ndarray, side: np.ndarray) -> np.ndarray:
    """|base| times the distance of `side` from the line through `base` (twice the area)."""
    length2 = (base * base).sum(-1, keepdims=True)
    scale = np.divide(
        (base * side).sum(-1, keepdims=True), length2, out=np.zeros_like(length2), where=length2 > 0
    )
    height = np.linalg.norm(side - scale * base, axis=-1)
    return np.sqrt(length2[..., 0]) * height


def vlscore(area: np.ndarray | float, c: float) -> np.ndarray:
    """max(1 - T / C, 0): 1 for a degenerate triangle, 0 at or beyond the calibration maximum."""
    if not c > 0:
        raise ValueError(f"calibration constant C must be positive, got {c}")
    return np.maximum(1.0 - np.asarray(area, dtype=np.float64) / c, 0.0)


def l2_normalise(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.where(norms == 0, 1.0, norms)


@dataclass(frozen=True)
class Calibration:
    """C for one embedder and normalisation choice, and how it was obtained."""

    embedder: str
    normalize: bool
    c: float
    triples: int

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        stored = _read_calibrations(path) if path.exists() else {}
        stored[_key(self.normalize)] = asdict(self)
        path.write_text(json.dumps(stored, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path, normalize: bool) -> Calibration:
        stored = _read_calibrations(Path(path)) if Path(path).exists() else {}
        if _key(normalize) not in stored:
            raise InputError(
                path,
                f"no VLScore calibration with normalize={normalize}; run "
                "`angioscribe evaluate vlscore-calibrate` with that setting",
            )
        return cls(**stored[_key(normalize)])


def _key(normalize: bool) -> str:
    return "normalized" if normalize else "raw"


def _read_calibrations(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(path, f"cannot read VLScore calibration: {error}") from None


def calibration_path(embedder_source: str, cache: Path | None = None) -> Path:
    """Where C lives: inside a local model folder, else in a cache folder named after the id."""
    folder = Path(embedder_source)
    if not embedder_source.startswith(HUB_PREFIX) and folder.is_dir():
        return folder / CALIBRATION_FILE
    cache = cache or Path.home() / ".cache" / "angioscribe" / "vlscore"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "--", embedder_source.removeprefix(HUB_PREFIX))
    return cache / f"{slug}.json"


def embed_triples(
    embedder: Embedder,
    images: Sequence[Image.Image],
    references: Sequence[str],
    generated: Sequence[str],
    normalize: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, reference, generated) embeddings, each (N, D), optionally L2-normalised."""
    if not len(images) == len(references) == len(generated):
        raise ValueError("images, references and generated reports must pair up one to one")
    parts = (
        embedder.embed_images(images),
        embedder.embed_texts(list(references)),
        embedder.embed_texts(list(generated)),
    )
    return tuple(l2_normalise(p) if normalize else p for p in parts)  # type: ignore[return-value]


def calibrate(areas: Sequence[float] | np.ndarray) -> float:
    """C: the largest triangle area on the calibration set."""
    values = np.asarray(areas, dtype=np.float64)
    if values.size == 0 or not values.max() > 0:
        raise ValueError("calibration needs at least one non-degenerate triangle")
    return float(values.max())


def mismatched(texts: Sequence[str], seed: int = 0) -> list[str]:
    """Each text replaced by another case's text: a calibration set's "wrong report" triples.

    A random derangement, so every triple pairs an image with a report written for a different
    study: the far end of the area scale that C should cover.
    """
    if len(texts) < 2:
        raise ValueError("calibration needs at least two cases to mismatch reports")
    rng = np.random.default_rng(seed)
    order = np.arange(len(texts))
    while np.any(order == np.arange(len(texts))):
        order = rng.permutation(len(texts))
    return [texts[i] for i in order]
