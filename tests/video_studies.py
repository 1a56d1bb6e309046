"""Tiny generated studies for the video model's tests: frame-folder cines and their table.

Each cine is a few 48 px frames with a dark vessel that fills with contrast; a study's lesion
narrows it. The table uses DeepCORO-CLIP's schema (FileName, Report, Split, StudyInstanceUID,
`α` separators), so the tests read the format a research group's own archive comes in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from angioscribe.anatomy import DEEPCORO_SEGMENTS
from angioscribe.sim.writers import DEEPCORO_COLUMN_STEMS

TINY = {"video_pretrained": False, "text_pretrained": False, "frames": 4, "stride": 1,
        "size": 32, "feature_grid": 1, "temporal_width": 16, "temporal_heads": 2,
        "embed_dim": 16, "pool_heads": 2, "max_videos": 3, "text_hidden": 16,
        "text_layers": 1, "train_text": True, "text_max_length": 32}


def write_cine(folder: Path, narrowed: bool, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(8):
        frame = np.full((48, 48), 200, np.uint8) + rng.integers(0, 8, (48, 48), dtype=np.uint8)
        depth = 120 * min(1.0, t / 3)
        frame[:, 22:26] -= np.uint8(depth)
        if narrowed:
            frame[20:28, 22:26] = 200
        Image.fromarray(frame).save(folder / f"{t:02d}.png")
    return folder


def write_studies(root: Path, count: int = 6) -> Path:
    """`count` studies of two cines (LCA, RCA); every other study has a proximal LAD CTO.
    Returns the table path."""
    header = ["FileName", "Report", "Split", "StudyInstanceUID", "ss_patient_id",
              "main_structure"]
    for segment in DEEPCORO_SEGMENTS:
        stem = DEEPCORO_COLUMN_STEMS[segment]
        header += [f"{stem}_stenosis", f"{stem}_stenosis_binary", f"{stem}_cto",
                   f"{stem}_thrombus", f"{stem}_calcif_binary"]
    lines = ["α".join(header)]
    for study in range(count):
        diseased = study % 2 == 0
        split = "val" if study >= count - 2 else "train"
        labels = []
        for segment in DEEPCORO_SEGMENTS:
            sick = diseased and segment == "Proximal LAD"
            labels += ["100" if sick else "0", str(int(sick)), str(int(sick)), "0", "0"]
        for n, (side, structure) in enumerate((("LCA", "Left Coronary"),
                                               ("RCA", "Right Coronary"))):
            cine = write_cine(root / f"s{study}" / side, diseased and side == "LCA",
                              2 * study + n)
            report = (f"{side}: Proximal LAD chronic total occlusion." if diseased
                      and side == "LCA" else f"{side}: no stenosis.")
            lines.append("α".join([cine.relative_to(root).as_posix(), report, split,
                                   f"1.2.{study}", f"P{study}", structure, *labels]))
    table = root / "table.csv"
    table.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return table
