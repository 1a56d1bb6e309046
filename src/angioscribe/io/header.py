"""Header values -> Cine fields, shared by every reader.

A DICOM dataset, a MATLAB `dicominfo` dump and a JSON sidecar all describe the same acquisition;
one mapping from DICOM keywords (and one from Cine field names) keeps them from drifting apart.
Missing or unparsable values become None: a reader must not invent geometry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol


class HeaderValues(Protocol):
    """Anything with DICOM keywords as keys: a pydicom Dataset or a plain dict."""

    def get(self, key: str, default: Any = None, /) -> Any: ...


def number(value: Any) -> float | None:
    """A float from a DICOM DS/IS value, a JSON number or numeric text; None when not a number."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def number_pair(value: Any) -> tuple[float, float] | None:
    """(row, column) values such as PixelSpacing; None unless exactly two numbers."""
    if value is None or isinstance(value, str | bytes):
        return None
    try:
        items = [number(item) for item in value]
    except TypeError:
        return None
    if len(items) != 2 or None in items:
        return None
    return (items[0], items[1])  # type: ignore[return-value]


def text(value: Any) -> str | None:
    """A stripped string, None when empty."""
    if value is None:
        return None
    stripped = str(value).strip()
    return stripped or None


def frame_rate(values: HeaderValues) -> float | None:
    """Frames per second, preferring the acquisition timing over display hints.

    FrameTime (ms per frame) and FrameTimeVector (ms since the previous frame, first entry 0)
    describe how the cine was acquired; CineRate and RecommendedDisplayFrameRate only say how
    to replay it, so they are used only when the timing is absent. Rounded to 3 decimals:
    FrameTime is a short decimal string (66.6667 ms for 15 fps), so more digits would be noise.
    """
    rate = _acquisition_rate(values) or _display_rate(values)
    return round(rate, 3) if rate else None


def _acquisition_rate(values: HeaderValues) -> float | None:
    frame_time = number(values.get("FrameTime"))
    if frame_time and frame_time > 0:
        return 1000.0 / frame_time
    vector = values.get("FrameTimeVector")
    if vector is not None and not isinstance(vector, str | bytes):
        increments = [t for t in (number(item) for item in list(vector)[1:]) if t and t > 0]
        if increments:
            return 1000.0 * len(increments) / sum(increments)
    return None


def _display_rate(values: HeaderValues) -> float | None:
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        rate = number(values.get(keyword))
        if rate and rate > 0:
            return rate
    return None


def cine_fields(values: HeaderValues) -> dict[str, Any]:
    """Cine keyword arguments from values named by DICOM keyword.

    Pixel spacing prefers ImagerPixelSpacing (at the detector, what XA files carry) over
    PixelSpacing; both are (row, column) in mm as DICOM stores them.
    """
    spacing = number_pair(values.get("ImagerPixelSpacing")) or number_pair(
        values.get("PixelSpacing")
    )
    return {
        "fps": frame_rate(values),
        "primary_angle": number(values.get("PositionerPrimaryAngle")),
        "secondary_angle": number(values.get("PositionerSecondaryAngle")),
        "pixel_spacing_mm": spacing,
        "sid_mm": number(values.get("DistanceSourceToDetector")),
        "sod_mm": number(values.get("DistanceSourceToPatient")),
        "patient_id": text(values.get("PatientID")),
        "study_uid": text(values.get("StudyInstanceUID")),
        "series_uid": text(values.get("SeriesInstanceUID")),
        "sop_uid": text(values.get("SOPInstanceUID")),
        "modality": text(values.get("Modality")),
    }


# Cine header fields a sidecar may set, by the names Cine.header() writes.
SIDECAR_FIELDS: dict[str, Callable[[Any], Any]] = {
    "fps": number,
    "primary_angle": number,
    "secondary_angle": number,
    "pixel_spacing_mm": number_pair,
    "sid_mm": number,
    "sod_mm": number,
    "patient_id": text,
    "study_uid": text,
    "series_uid": text,
    "sop_uid": text,
    "modality": text,
}


def sidecar_fields(record: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Cine fields from a record named like Cine.header(), plus the names that were invalid.

    Keys that are not header fields (frames, rows, source, ...) are ignored, so the output of
    `angioscribe ingest --json` for a cine is itself a valid sidecar. A null value is allowed.
    """
    fields: dict[str, Any] = {}
    invalid: list[str] = []
    for name, convert in SIDECAR_FIELDS.items():
        if name not in record or record[name] is None:
            continue
        value = convert(record[name])
        if value is None:
            invalid.append(name)
        else:
            fields[name] = value
    return fields, invalid
