"""The key-frame label of a simulated frame, from its known opacification and motion.

CAG-VLM's annotators sorted frames into "better" (a frame to read the study from), "bad"
(contrast present but the frame is not a good one) and "other" (no useful contrast). For a
simulated frame both ingredients are known, so the label follows from a rule:

- other:  opacification < 0.2 (before the bolus arrives, or after it has washed out);
- better: opacification >= 0.8 and heart motion below `HEAVY_MOTION_MM_S` (a still, full frame);
- bad:    everything in between: partial filling, or a full frame blurred by systolic motion.

Opacification is the mean contrast concentration (0..1) over the part of the injected tree that
antegrade flow reaches; motion is the 90th-percentile speed of that tree's centreline projected
onto the detector, in mm/s at the isocentre.
"""

from __future__ import annotations

from typing import Literal

KeyframeLabel = Literal["better", "bad", "other"]

OPACIFIED = 0.8
UNOPACIFIED = 0.2
HEAVY_MOTION_MM_S = 45.0


def keyframe_label(opacification: float, motion_mm_s: float) -> KeyframeLabel:
    if opacification < UNOPACIFIED:
        return "other"
    if opacification >= OPACIFIED and motion_mm_s < HEAVY_MOTION_MM_S:
        return "better"
    return "bad"
