"""Video files (mp4, avi, ...) -> greyscale Cine, via PyAV (FFmpeg).

Cines exported for teaching or research often arrive as video; the first video stream's
luma is the grey image, and its average frame rate is the acquisition rate as far as it is known.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from angioscribe.cine import Cine
from angioscribe.errors import InputError

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv"})


def read_video(path: str | Path) -> Cine:
    """All frames of the first video stream as (T, H, W) uint8 full-range grey."""
    path = Path(path)
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            if not container.streams.video:
                raise InputError(path, "no video stream")
            stream = container.streams.video[0]
            frames = [frame.to_ndarray(format="gray") for frame in container.decode(stream)]
            rate = stream.average_rate or stream.guessed_rate
            codec = stream.codec_context.name
    except av.FFmpegError as error:
        raise InputError(path, f"not a readable video: {error}") from error
    if not frames:
        raise InputError(path, "the video stream has no decodable frames")
    return Cine(
        frames=np.stack(frames),
        source=str(path),
        fps=float(rate) if rate else None,
        extra={"codec": codec},
    )
