"""DICOM grey levels: the display pipeline as one 8-bit lookup table per cine.

Modality LUT/rescale, then VOI LUT or window, then the 0-255 scale and MONOCHROME1 inversion
are all pointwise in the stored value, so they are evaluated once over every possible stored
value (at most 65,536) and each frame becomes a single table lookup: one pass from the decoded
frame to its 8-bit form, no float copy of the cine, and the same result as the per-pixel maths.

Header values these steps read are checked first, so a bad one is reported by name
("WindowCenter is not a number") instead of surfacing as a numpy type error.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi, apply_windowing

from angioscribe.errors import InputError
from angioscribe.io.dicom_pixels import PixelModule, header_value
from angioscribe.io.greyscale import luminance, scale_to_uint8
from angioscribe.io.header import number, shown

# LUT Descriptor bits per entry that each LUT may declare (PS3.3 C.11.1.1 and C.11.2.1.1).
MODALITY_LUT_BITS = frozenset({8, 16})
VOI_LUT_BITS = frozenset({8, *range(10, 17)})


class Display:
    """How one cine's stored values become 8-bit grey: checked once, applied frame by frame."""

    def __init__(self, path: Path, dataset: Dataset, module: PixelModule) -> None:
        self.path = path
        self.dataset = dataset
        self.module = module
        self.voi: str | None = None
        if module.samples == 1:
            _check_rescale(path, dataset)
            _check_lut(path, dataset, "ModalityLUTSequence", "Modality LUT", MODALITY_LUT_BITS)
            self.voi = _voi_kind(path, dataset)

    @property
    def needs_stored_range(self) -> bool:
        """True when 0-255 spans the cine's own range, known only once every frame is decoded.

        Deep (> 8 bits) grey data without a VOI step rarely fills its nominal range, so its
        actual min-max is used; one range for all frames keeps the bolus visible over time.
        """
        return self.module.samples == 1 and self.voi is None and self.module.bits_stored > 8

    def table(self, stored_range: tuple[int, int] | None = None) -> np.ndarray | None:
        """The uint8 grey level of every 16-bit stored pattern (None for colour data)."""
        if self.module.samples != 1:
            return None
        domain = np.arange(2**16, dtype=np.uint16)
        if self.module.signed:
            domain = domain.view(np.int16)
        try:
            values = apply_modality_lut(domain, self.dataset)
            if self.voi == "lut":
                values = apply_voi(values, self.dataset)
            elif self.voi == "window":
                values = apply_windowing(values, self.dataset)
            low, high = self._display_range(stored_range)
        except Exception as error:  # a LUT or window pydicom rejects after our checks
            raise InputError(
                self.path, f"cannot apply the header's Modality/VOI LUT: {error}"
            ) from error
        values = np.asarray(values, dtype=np.float64)
        if not (np.isfinite(values).all() and math.isfinite(low) and math.isfinite(high)):
            raise InputError(self.path, "the header's Modality/VOI LUT gives non-numeric levels")
        grey = scale_to_uint8(values, low, high)
        if self.module.photometric == "MONOCHROME1":
            np.subtract(255, grey, out=grey)
        return grey

    def grey(self, table: np.ndarray | None, frame: np.ndarray) -> np.ndarray:
        """One decoded frame as (H, W) uint8."""
        if table is None:  # colour: Rec. 601 luma on the stored scale
            return scale_to_uint8(luminance(frame), 0, 2**self.module.bits_stored - 1)
        index = frame.astype(np.int16 if self.module.signed else np.uint16, copy=False)
        return table[index.view(np.uint16)]

    def _display_range(self, stored_range: tuple[int, int] | None) -> tuple[float, float]:
        """The values that become 0 and 255.

        With a VOI step, its whole output range (the header says how the image should look).
        Without one, the nominal BitsStored range for <= 8-bit data, else `stored_range`.
        """
        if self.voi == "lut":
            depth = int(self.dataset.VOILUTSequence[0].LUTDescriptor[2])
            return 0.0, float(2**depth - 1)
        if self.voi == "window":
            ends = apply_windowing(np.array([-np.inf, np.inf]), self.dataset)
            return float(ends.min()), float(ends.max())
        bits = self.module.bits_stored
        if stored_range is not None:
            lowest, highest = stored_range
        elif self.module.signed:
            lowest, highest = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        else:
            lowest, highest = 0, 2**bits - 1
        ends = apply_modality_lut(np.array([lowest, highest]), self.dataset)
        return float(np.min(ends)), float(np.max(ends))


def _check_rescale(path: Path, dataset: Dataset) -> None:
    for keyword in ("RescaleSlope", "RescaleIntercept"):
        value = header_value(path, dataset, keyword)
        if value is not None and _first_number(value) is None:
            raise InputError(path, f"{keyword} is not a number: {shown(value)}")


def _check_lut(path: Path, dataset: Dataset, keyword: str, name: str, bits: frozenset) -> bool:
    """True for a complete, usable LUT in the sequence; InputError for a damaged one."""
    items = header_value(path, dataset, keyword)
    if not items:
        return False
    item = items[0]
    descriptor = header_value(path, item, "LUTDescriptor")
    if descriptor is None:
        raise InputError(path, f"the {name} has no LUT Descriptor")
    numbers = [_first_number(entry) for entry in _as_list(descriptor)]
    if len(numbers) != 3 or None in numbers:
        raise InputError(path, f"the {name} descriptor is not three numbers: {shown(descriptor)}")
    entries, _, depth = (int(entry) for entry in numbers)  # type: ignore[arg-type]
    if depth not in bits:
        allowed = "8 or 16" if bits == MODALITY_LUT_BITS else "8 or 10-16"
        raise InputError(path, f"the {name} descriptor says {depth}-bit entries ({allowed})")
    data = header_value(path, item, "LUTData")
    if data is None:
        raise InputError(path, f"the {name} has no LUT Data")
    values = _lut_values(data)
    if values.size < (entries or 2**16):
        raise InputError(
            path, f"the {name} holds {values.size} entries, its descriptor says {entries or 2**16}"
        )
    if values.size and int(values.max()) >= 2**depth:
        raise InputError(path, f"the {name} holds values beyond its {depth}-bit entries")
    return True


def _voi_kind(path: Path, dataset: Dataset) -> str | None:
    """'lut', 'window' or None; a complete VOI LUT wins over a window, as in pydicom."""
    if _check_lut(path, dataset, "VOILUTSequence", "VOI LUT", VOI_LUT_BITS):
        return "lut"
    centre = header_value(path, dataset, "WindowCenter")
    width = header_value(path, dataset, "WindowWidth")
    if centre is None or width is None:
        return None
    for keyword, value in (("WindowCenter", centre), ("WindowWidth", width)):
        if _first_number(value) is None:
            raise InputError(path, f"{keyword} is not a number: {shown(value)}")
    return "window"


def _as_list(value: Any) -> list[Any]:
    return list(value) if hasattr(value, "__len__") and not isinstance(value, str) else [value]


def _first_number(value: Any) -> float | None:
    """The first value of a (possibly multi-valued) number, if it is finite."""
    items = _as_list(value)
    return number(items[0]) if items else None


def _lut_values(data: Any) -> np.ndarray:
    """LUT Data as integers: OW bytes (16-bit little endian) or a list of numbers."""
    if isinstance(data, bytes):
        return np.frombuffer(data[: len(data) // 2 * 2], dtype="<u2")
    return np.asarray(_as_list(data), dtype=np.int64)
