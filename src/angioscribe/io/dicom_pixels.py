"""DICOM Pixel Data -> stored values, one frame at a time, read straight from the file.

A 2,000-frame cine is 500 MB decoded: holding the file, the decoded array and an 8-bit copy at
once would triple that. So the header's Image Pixel values are checked first (whole numbers, a
size the file can hold), then frames are read from the file one by one (native data by offset,
encapsulated data fragment by fragment), decoded by pydicom's decoder for the transfer syntax,
checked against the header, and handed to the caller, who keeps only its 8-bit result.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import get_decoder
from pydicom.uid import UID

from angioscribe.errors import InputError
from angioscribe.io.codestreams import contradiction
from angioscribe.io.decode_helper import SharedDecoding, helper_for

# Decoded pixel data larger than this is refused before anything is allocated.
MAX_DECODED_BYTES = 4 * 2**30
# Compressed data claiming to decode to more than this many times the file's size is refused
# (lossless XA codecs reach 2-10x; a lying Rows or NumberOfFrames reaches hundreds) ...
MAX_EXPANSION = 100
# ... once the claim is large enough to matter; small images are never refused by ratio.
EXPANSION_CHECKED_FROM_BYTES = 256 * 2**20

GREY_PHOTOMETRICS = frozenset({"MONOCHROME1", "MONOCHROME2"})
COLOUR_PHOTOMETRICS = frozenset(
    {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420"}
)

# Pydicom reads values larger than this only when asked, so Pixel Data stays in the file.
DEFER_BYTES = 64 * 1024


class DecodeError(Exception):
    """Pixel data the installed decoders could not turn into the frames the header describes.

    Kept apart from InputError because another decoder (dcmtk) may still succeed, unless it
    is `conclusive`: the data contradicts the header, or a codec crashed on damaged bytes.
    """

    def __init__(self, problem: str, conclusive: bool = False) -> None:
        super().__init__(problem)
        self.conclusive = conclusive

    def __reduce__(self) -> tuple:  # crosses from the decode helper process intact
        return DecodeError, (str(self), self.conclusive)


def damaged(detail: str, conclusive: bool = False) -> DecodeError:
    return DecodeError(f"truncated or corrupt pixel data: {detail}", conclusive)


@dataclass(frozen=True)
class PixelModule:
    """The Image Pixel attributes a decoder needs, checked to be whole numbers in range."""

    frames: int
    rows: int
    columns: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str
    planar_configuration: int

    @property
    def frame_shape(self) -> tuple[int, ...]:
        plane = (self.rows, self.columns)
        return plane if self.samples == 1 else (*plane, self.samples)

    @property
    def decoded_bytes(self) -> int:
        """Bytes of all decoded frames at the stored sample size."""
        return self.frames * self.rows * self.columns * self.samples * self.bits_allocated // 8

    def native_frame_bytes(self) -> int:
        """Bytes one uncompressed frame takes in the file (YBR_FULL_422 stores 2 of 3 samples)."""
        samples = 2 if self.photometric == "YBR_FULL_422" else self.samples
        return self.rows * self.columns * samples * self.bits_allocated // 8

    def describe(self) -> str:
        colour = f", {self.samples} samples per pixel" if self.samples != 1 else ""
        return f"{self.frames} frames of {self.columns}x{self.rows}{colour}"

    def same_image(self, other: PixelModule) -> bool:
        """Same frames, size and samples: what a second decoder must reproduce."""
        shape = (self.frames, self.rows, self.columns, self.samples)
        return shape == (other.frames, other.rows, other.columns, other.samples)

    def decoder_options(self) -> dict[str, Any]:
        """pydicom decoding options for ONE frame of this module."""
        return {
            "rows": self.rows,
            "columns": self.columns,
            "samples_per_pixel": self.samples,
            "bits_allocated": self.bits_allocated,
            "bits_stored": self.bits_stored,
            "pixel_representation": int(self.signed),
            "photometric_interpretation": self.photometric,
            "planar_configuration": self.planar_configuration,
            "number_of_frames": 1,
            "pixel_keyword": "PixelData",
        }


def pixel_module(path: Path, dataset: Dataset) -> PixelModule:
    """The dataset's Image Pixel values; InputError names the first one that is unusable."""
    samples = _whole(path, dataset, "SamplesPerPixel", (1, 3), default=1)
    if samples not in (1, 3):
        raise InputError(path, f"unsupported pixel format: {samples} samples per pixel")
    bits_allocated = _whole(path, dataset, "BitsAllocated", (8, 16))
    if bits_allocated not in (8, 16):
        raise InputError(
            path, f"unsupported pixel format: {bits_allocated} bits allocated (8 or 16 are read)"
        )
    photometric = _photometric(path, dataset, samples)
    return PixelModule(
        frames=_whole(path, dataset, "NumberOfFrames", (1, 2**31 - 1), default=1),
        rows=_whole(path, dataset, "Rows", (1, 2**16 - 1)),
        columns=_whole(path, dataset, "Columns", (1, 2**16 - 1)),
        samples=samples,
        bits_allocated=bits_allocated,
        bits_stored=_whole(path, dataset, "BitsStored", (1, bits_allocated)),
        signed=_whole(path, dataset, "PixelRepresentation", (0, 1)) == 1,
        photometric=photometric,
        planar_configuration=_whole(path, dataset, "PlanarConfiguration", (0, 1), default=0),
    )


def _whole(
    path: Path,
    dataset: Dataset,
    keyword: str,
    limits: tuple[int, int],
    default: int | None = None,
) -> int:
    """A whole-number header value within `limits`, else an InputError naming it."""
    value = header_value(path, dataset, keyword)
    if value is None:
        if default is None:
            raise InputError(path, f"{keyword} is missing")
        return default
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(path, f"{keyword} is not a number: {value!r}") from None
    low, high = limits
    if not (number.is_integer() and low <= number <= high):
        raise InputError(path, f"{keyword} {value} is not a whole number in {low}..{high}")
    return int(number)


def _photometric(path: Path, dataset: Dataset, samples: int) -> str:
    """PhotometricInterpretation, consistent with the samples per pixel."""
    value = header_value(path, dataset, "PhotometricInterpretation")
    photometric = str(value or "").strip().upper()
    if not photometric:
        raise InputError(path, "PhotometricInterpretation is missing")
    expected = GREY_PHOTOMETRICS if samples == 1 else COLOUR_PHOTOMETRICS
    if photometric not in expected:
        raise InputError(
            path, f"unsupported pixel format: {samples} samples per pixel, {photometric}"
        )
    return photometric


def header_value(path: Path, dataset: Dataset, keyword: str) -> Any:
    """A header value, None when absent or empty; InputError when pydicom cannot convert it."""
    try:
        value = dataset.get(keyword)
    except Exception as error:  # pydicom converts lazily; a damaged element raises on access
        raise InputError(path, f"{keyword} is unreadable: {error}") from error
    return None if value is None or value == "" else value


@dataclass(frozen=True)
class PixelData:
    """Where the Pixel Data value lies: at `offset` in the file, or held in memory when small."""

    path: Path
    syntax: UID
    offset: int
    length: int | None  # None: undefined length (encapsulated)
    value: bytes | None  # the value itself when pydicom did not defer it
    extended_offsets: tuple[bytes, bytes] | None = None

    @contextmanager
    def stream(self) -> Iterator[BinaryIO]:
        """A binary stream positioned at the start of the value."""
        if self.value is not None:
            yield io.BytesIO(self.value)
            return
        with self.path.open("rb") as stream:
            stream.seek(self.offset)
            yield stream


def locate_pixel_data(path: Path, dataset: Dataset) -> PixelData:
    """The Pixel Data element of a dataset read with `defer_size=DEFER_BYTES`."""
    element = dataset.get_item("PixelData", keep_deferred=True)
    syntax = UID(str(dataset.file_meta.get("TransferSyntaxUID") or "").strip())
    if not syntax.is_transfer_syntax:
        raise InputError(path, f"unknown transfer syntax {str(syntax)!r} in the file meta")
    value = getattr(element, "value", None)
    if value is not None and not isinstance(value, bytes):
        raise InputError(path, "the Pixel Data element is not binary data")
    length = getattr(element, "length", None)
    undefined = length is None or length == 0xFFFFFFFF
    return PixelData(
        path=path,
        syntax=syntax,
        offset=int(getattr(element, "value_tell", 0) or 0),
        length=None if undefined else int(length),
        value=value,
        extended_offsets=_extended_offsets(dataset),
    )


def _extended_offsets(dataset: Dataset) -> tuple[bytes, bytes] | None:
    """The Extended Offset Table, when both of its elements are present and binary."""
    try:
        offsets = dataset.get("ExtendedOffsetTable")
        lengths = dataset.get("ExtendedOffsetTableLengths")
    except Exception:  # a damaged table is ignored: frames are then found by their fragments
        return None
    if isinstance(offsets, bytes) and isinstance(lengths, bytes):
        return offsets, lengths
    return None


def check_size(pixels: PixelData, module: PixelModule) -> None:
    """Refuse pixel data the file cannot hold, before any output is allocated."""
    path = pixels.path
    claimed = module.decoded_bytes
    if claimed > MAX_DECODED_BYTES:
        raise InputError(
            path,
            f"the header claims {module.describe()} ({claimed / 2**30:.1f} GiB decoded), over "
            f"the {MAX_DECODED_BYTES // 2**30} GiB limit",
        )
    file_bytes = path.stat().st_size
    if pixels.syntax.is_encapsulated:
        if claimed > EXPANSION_CHECKED_FROM_BYTES and claimed > MAX_EXPANSION * file_bytes:
            raise InputError(
                path,
                f"the header claims {module.describe()} ({claimed / 2**20:.0f} MB decoded) "
                f"from a {file_bytes / 2**20:.1f} MB file: more than {MAX_EXPANSION}x, "
                "so Rows, Columns or NumberOfFrames is wrong",
            )
        return
    stored = _native_length(pixels, file_bytes)
    frame_bytes = module.native_frame_bytes()
    needed = frame_bytes * module.frames
    if stored < needed:
        raise InputError(
            path,
            f"truncated or corrupt pixel data: {stored} bytes stored, {module.describe()} "
            f"need {needed}",
        )
    if stored - needed >= frame_bytes:  # more than padding: whole frames the header omits
        raise InputError(
            path,
            f"the pixel data holds {stored // frame_bytes} frames of {module.columns}x"
            f"{module.rows}, the header says {module.frames}",
        )


def _native_length(pixels: PixelData, file_bytes: int) -> int:
    """Bytes of uncompressed pixel data actually present (the element may claim more)."""
    if pixels.value is not None:
        return len(pixels.value)
    if pixels.length is None:
        raise InputError(pixels.path, "uncompressed Pixel Data has an undefined length")
    return min(pixels.length, max(file_bytes - pixels.offset, 0))


def encoded_frames(stream: BinaryIO, pixels: PixelData, module: PixelModule) -> Iterator[bytes]:
    """Each frame's encoded bytes in order, exactly `module.frames` of them.

    A missing or surplus frame (a lost fragment, a frame split in two) is a DecodeError: the
    header and the data disagree, and guessing which frames are which would misplace the bolus.
    """
    if not pixels.syntax.is_encapsulated:
        size = module.native_frame_bytes()
        for _ in range(module.frames):
            yield stream.read(size)
        return
    try:
        frames = generate_frames(
            stream, number_of_frames=module.frames, extended_offsets=pixels.extended_offsets
        )
        count = 0
        for frame in frames:
            if count == module.frames:
                raise damaged(f"it holds more frames than the header's {module.frames}")
            count += 1
            yield frame
    except (ValueError, EOFError, OSError, KeyError, IndexError) as error:
        raise damaged(f"its fragments do not make {module.frames} frames: {error}") from error
    if count < module.frames:
        raise damaged(f"it holds {count} frames, the header says {module.frames}")


class FrameDecoder:
    """pydicom's decoder for one transfer syntax, used one frame at a time."""

    def __init__(self, syntax: UID, module: PixelModule) -> None:
        try:
            self._decoder = get_decoder(syntax)
        except NotImplementedError as error:
            raise DecodeError(f"no decoder for transfer syntax {syntax!r}") from error
        if not self._decoder.is_available:
            raise DecodeError(
                f"no installed decoder for {syntax.name} (install the pylibjpeg plugins or dcmtk)"
            )
        self.syntax = syntax
        self._module = module
        self._options = module.decoder_options()

    def decode(self, index: int, encoded: bytes) -> np.ndarray:
        """Frame `index` as stored values shaped as the header says; DecodeError otherwise."""
        problem = contradiction(self.syntax, encoded, self._module)
        if problem is not None:
            raise damaged(f"frame {index + 1} of {self._module.frames}: {problem}", True)
        if not encoded:
            raise damaged(f"frame {index + 1} of {self._module.frames} is empty", True)
        try:
            source = encapsulate([encoded]) if self.syntax.is_encapsulated else encoded
            array, _ = self._decoder.as_array(source, **self._options)
        except Exception as error:  # plugins raise many types on damaged data
            raise self._corrupt(index, error) from error
        except BaseException as error:  # Rust codecs (RLE) panic with a BaseException
            if not is_codec_panic(error):
                raise
            raise self._corrupt(index, error, conclusive=True) from error
        if array.shape != self._module.frame_shape:
            raise damaged(
                f"{self.syntax.name} frame {index + 1} of {self._module.frames} decodes to shape "
                f"{array.shape}, the header says {self._module.frame_shape}"
            )
        return array

    def _corrupt(self, index: int, error: BaseException, conclusive: bool = False) -> DecodeError:
        detail = str(error).strip().splitlines()
        reason = detail[-1].strip() if detail else type(error).__name__
        where = f"{self.syntax.name} frame {index + 1} of {self._module.frames}"
        return damaged(f"{where} is corrupt: {reason}", conclusive)


def is_codec_panic(error: BaseException) -> bool:
    """A Rust extension's panic (pyo3_runtime.PanicException): a codec bug hit by bad data."""
    return type(error).__module__ == "pyo3_runtime"


def decode_frames(
    pixels: PixelData,
    module: PixelModule,
    store: Callable[[int, np.ndarray], None],
) -> None:
    """Decode every frame and pass it to `store(index, stored_values)`, once each.

    Only a few encoded and decoded frames exist at a time: `store` keeps what it needs.
    Frames may arrive out of order when the decode helper (another core) takes some.
    """
    _frame_decoder(pixels.syntax, module)  # fails here, before any frame, if no decoder exists
    decode = partial(decode_frame, pixels.syntax, module)
    sharing = SharedDecoding(decode, helper_for(pixels.syntax, module.frames), store)
    try:
        with pixels.stream() as stream:
            for index, encoded in enumerate(encoded_frames(stream, pixels, module)):
                sharing.add(index, encoded)
        sharing.finish()
    finally:
        sharing.close()


def decode_frame(syntax: UID, module: PixelModule, index: int, encoded: bytes) -> np.ndarray:
    """One frame, by the decoder cached for this cine (here or in the decode helper)."""
    return _frame_decoder(syntax, module).decode(index, encoded)


@lru_cache(maxsize=1)
def _frame_decoder(syntax: UID, module: PixelModule) -> FrameDecoder:
    return FrameDecoder(syntax, module)
