"""Header values -> Cine fields, shared by every reader.

A DICOM dataset, a MATLAB `dicominfo` dump and a JSON sidecar all describe the same acquisition;
one mapping from DICOM keywords (and one from Cine field names) keeps them from drifting apart.
Missing or unparsable values become None: a reader must not invent geometry. A value that is
present but unreadable, not finite or outside its physical range (a flipped byte, NaN, a
negative distance) also becomes None, with a warning saying which value was dropped, so
`--json` records never carry NaN or Infinity and a reader can see why a field is unknown.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

# Cine field -> (lowest, highest) physical range, ends included; "> 0" fields use a tiny low end.
_POSITIVE = (math.ulp(0.0), math.inf)
GEOMETRY_RANGES: dict[str, tuple[float, float]] = {
    "fps": _POSITIVE,
    "primary_angle": (-180.0, 180.0),
    "secondary_angle": (-90.0, 90.0),
    "pixel_spacing_mm": _POSITIVE,
    "sid_mm": _POSITIVE,
    "sod_mm": _POSITIVE,
}


class HeaderValues(Protocol):
    """Anything with DICOM keywords as keys: a pydicom Dataset or a plain dict."""

    def get(self, key: str, default: Any = None, /) -> Any: ...


def number(value: Any) -> float | None:
    """A finite float from a DICOM DS/IS value, a JSON number or numeric text; else None."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return result if math.isfinite(result) else None


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
        # One value is stored as a bare number, not a list: a single frame, no increment.
        items = list(vector) if hasattr(vector, "__len__") else []
        increments = [t for t in (number(item) for item in items[1:]) if t and t > 0]
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
    """Cine keyword arguments from values named by DICOM keyword, with `warnings` for dropped ones.

    Pixel spacing prefers ImagerPixelSpacing (at the detector, what XA files carry) over
    PixelSpacing; both are (row, column) in mm as DICOM stores them.
    """
    header = _GuardedValues(values)
    spacing = header.geometry("pixel_spacing_mm", "ImagerPixelSpacing", number_pair)
    if spacing is None:
        spacing = header.geometry("pixel_spacing_mm", "PixelSpacing", number_pair)
    fps = frame_rate(header)
    if fps is not None and not in_range("fps", fps):
        header.warnings.append(f"the frame timing gives {fps} frames/s; frame rate left unknown")
        fps = None
    return {
        "fps": fps,
        "primary_angle": header.geometry("primary_angle", "PositionerPrimaryAngle", number),
        "secondary_angle": header.geometry("secondary_angle", "PositionerSecondaryAngle", number),
        "pixel_spacing_mm": spacing,
        "sid_mm": header.geometry("sid_mm", "DistanceSourceToDetector", number),
        "sod_mm": header.geometry("sod_mm", "DistanceSourceToPatient", number),
        "patient_id": text(header.get("PatientID")),
        "study_uid": text(header.get("StudyInstanceUID")),
        "series_uid": text(header.get("SeriesInstanceUID")),
        "sop_uid": text(header.get("SOPInstanceUID")),
        "modality": text(header.get("Modality")),
        "warnings": header.warnings,
    }


def in_range(name: str, value: Any) -> bool:
    """True when a Cine field's value lies in its physical range (fields without one: always)."""
    if name not in GEOMETRY_RANGES:
        return True
    low, high = GEOMETRY_RANGES[name]
    items = value if isinstance(value, tuple) else (value,)
    return all(
        isinstance(item, float | int) and math.isfinite(item) and low <= item <= high
        for item in items
    )


class _GuardedValues:
    """Header access that never raises: a value pydicom cannot convert (an unknown VR from a
    flipped byte, a malformed number) is None, and every dropped value leaves a warning."""

    def __init__(self, values: HeaderValues) -> None:
        self._values = values
        self.warnings: list[str] = []

    def get(self, key: str, default: Any = None, /) -> Any:
        try:
            value = self._values.get(key, default)
        except Exception as error:  # pydicom converts lazily and raises many types
            self.warnings.append(f"{key} is unreadable ({error}); left unknown")
            return default
        if isinstance(value, bytes):  # an element whose VR was lost reads as raw bytes
            self.warnings.append(f"{key} has no readable value; left unknown")
            return default
        return value

    def geometry(self, name: str, key: str, convert: Callable[[Any], Any]) -> Any:
        """`key` converted to the Cine field `name`; None (with a warning) if not plausible."""
        raw = self.get(key)
        value = convert(raw)
        if value is None and raw is not None and raw != "":
            what = "two numbers" if convert is number_pair else "a number"
            self.warnings.append(f"{key} {shown(raw)} is not {what}; left unknown")
        elif value is not None and not in_range(name, value):
            low, high = GEOMETRY_RANGES[name]
            self.warnings.append(
                f"{key} {shown(raw)} is outside {low:g}..{high:g}; left unknown"
                if math.isfinite(high)
                else f"{key} {shown(raw)} is not positive; left unknown"
            )
            value = None
        return value


def shown(value: Any, limit: int = 40) -> str:
    """A header value as short quoted text for a message."""
    many = hasattr(value, "__len__") and not isinstance(value, str)
    text = str(list(value)) if many else str(value)
    return repr(text if len(text) <= limit else text[:limit] + "...")


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
        if value is None or not in_range(name, value):
            invalid.append(name)
        else:
            fields[name] = value
    return fields, invalid
