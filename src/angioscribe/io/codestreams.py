"""What a compressed DICOM frame says about itself, to catch a header that lies about it.

A JPEG or JPEG-LS frame carries its own height, width and component count (the SOF segment);
an RLE frame, how many byte planes it holds (samples x bytes per sample). When these contradict
the header, no decoder can make the cine the header describes: dcmtk would still "succeed"
with three times the frames or a sheared image, so the contradiction is reported instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydicom.uid import UID, JPEGLSTransferSyntaxes, JPEGTransferSyntaxes, RLELossless

# Start-of-frame markers: JPEG processes (C0-CF except DHT C4, JPG C8, DAC CC) and JPEG-LS (F7).
_SOF_MARKERS = frozenset({*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC} | {0xF7})
# Markers without a length field: TEM, RSTn, SOI, EOI.
_BARE_MARKERS = frozenset({0x01, *range(0xD0, 0xDA)})
_RLE_HEADER_BYTES = 64

if TYPE_CHECKING:
    from angioscribe.io.dicom_pixels import PixelModule


@dataclass(frozen=True)
class FrameClaim:
    """The image size a frame's own codestream declares (None where it does not say)."""

    samples: int
    rows: int | None = None
    columns: int | None = None


def frame_claim(syntax: UID, frame: bytes) -> FrameClaim | None:
    """The frame's own description, or None for syntaxes (or damage) that give none."""
    if syntax in JPEGTransferSyntaxes or syntax in JPEGLSTransferSyntaxes:
        return _jpeg_claim(frame)
    if syntax == RLELossless and len(frame) >= _RLE_HEADER_BYTES:
        return FrameClaim(samples=int.from_bytes(frame[:4], "little"))
    return None


def _jpeg_claim(frame: bytes) -> FrameClaim | None:
    """Height, width and components from the first SOF segment after SOI."""
    if frame[:2] != b"\xff\xd8":
        return None
    position = 2
    while position + 4 <= len(frame):
        if frame[position] != 0xFF:
            return None
        marker = frame[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _BARE_MARKERS:
            position += 2
            continue
        if marker in _SOF_MARKERS and position + 10 <= len(frame):
            rows = int.from_bytes(frame[position + 5 : position + 7], "big")
            columns = int.from_bytes(frame[position + 7 : position + 9], "big")
            return FrameClaim(samples=frame[position + 9], rows=rows or None, columns=columns)
        position += 2 + int.from_bytes(frame[position + 2 : position + 4], "big")
    return None


def contradiction(syntax: UID, frame: bytes, module: PixelModule) -> str | None:
    """Why the frame cannot be the header's image, or None when it may be."""
    claim = frame_claim(syntax, frame)
    if claim is None:
        return None
    if syntax == RLELossless:
        planes = module.samples * module.bits_allocated // 8
        if claim.samples != planes:
            return (
                f"the RLE frame holds {claim.samples} byte planes, the header's "
                f"{module.samples} sample(s) of {module.bits_allocated} bits need {planes}"
            )
        return None
    said = (claim.samples, claim.rows or module.rows, claim.columns)
    if said != (module.samples, module.rows, module.columns):
        return (
            f"the JPEG frame is {claim.columns}x{claim.rows} with {claim.samples} "
            f"component(s), the header says {module.columns}x{module.rows} with "
            f"{module.samples} sample(s)"
        )
    return None
