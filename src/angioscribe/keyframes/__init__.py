"""Key frames and laterality (CAG-VLM stage 1): which frames of a study to read, and which side.

Public API: `select_keyframes(study) -> KeyFrames`, `KeyframeClassifier`, `classify_cine`.
Definitions of better/bad/other and the training data: docs/keyframes.md.
"""

from angioscribe.keyframes.classify import FrameScore, KeyframeClassifier, classify_cine
from angioscribe.keyframes.select import KeyFrames, choose_keyframes, select_keyframes

__all__ = [
    "FrameScore",
    "KeyFrames",
    "KeyframeClassifier",
    "choose_keyframes",
    "classify_cine",
    "select_keyframes",
]
