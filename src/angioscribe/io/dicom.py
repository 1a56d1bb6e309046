"""DICOM (XA, XRF or any image IOD) -> Cine: uint8 frames in MONOCHROME2 plus the header values.

Pixels decode through pydicom 3 and its pylibjpeg plugins (RLE, JPEG baseline/extended/lossless,
JPEG-LS, JPEG 2000), frame by frame from the file into the 8-bit output (`dicom_pixels`), each
frame through the display pipeline as one table lookup (`dicom_display`). When they fail on a
syntax dcmtk also handles, the file is transcoded to uncompressed with dcmtk's command-line
decoders and read again, so a codec gap in one library does not lose a cine; what dcmtk makes
must still match the original header.

`read_dicom` is the boundary of all this: whatever pydicom or a codec raises on a damaged file
leaves it as an InputError naming the file, with the original error as its cause.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from angioscribe.cine import Cine
from angioscribe.errors import InputError
from angioscribe.io.dicom_display import Display
from angioscribe.io.dicom_pixels import (
    DEFER_BYTES,
    DecodeError,
    PixelData,
    PixelModule,
    check_size,
    decode_frames,
    locate_pixel_data,
    pixel_module,
)
from angioscribe.io.header import cine_fields

DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ".dic"})

# Every transfer syntax these readers decode (docs/io.md): what a DICOM listener may accept.
READABLE_TRANSFER_SYNTAXES = (
    ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian, RLELossless, JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless,
    JPEGLosslessSV1, JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless, JPEG2000,
)

# dcmtk tools that rewrite a compressed file as uncompressed (dcmtk has no free JPEG 2000 codec).
DCMTK_DECODERS: dict[str, str] = {
    JPEGBaseline8Bit: "dcmdjpeg",
    JPEGExtended12Bit: "dcmdjpeg",
    JPEGLossless: "dcmdjpeg",
    JPEGLosslessSV1: "dcmdjpeg",
    JPEGLSLossless: "dcmdjpls",
    JPEGLSNearLossless: "dcmdjpls",
    RLELossless: "dcmdrle",
}
DCMTK_TIMEOUT_S = 300
# dcmtk's error (E:) and fatal (F:) lines kept in a message, the last ones, each cut short.
DCMTK_MESSAGE_LINES = 2
DCMTK_LINE_CHARS = 160

# A dataset written without preamble starts with a File Meta (0002) or Identifying (0008) tag.
_DATASET_START_GROUPS = (0x0002, 0x0008)


def looks_like_dicom(path: Path) -> bool:
    """True for a file with the 'DICM' marker at byte 128, or one that starts like a dataset.

    Content, not the extension, decides: PACS exports often name files by UID or number.
    """
    with path.open("rb") as stream:
        head = stream.read(132)
    if head[128:132] == b"DICM":
        return True
    return len(head) >= 8 and int.from_bytes(head[:2], "little") in _DATASET_START_GROUPS


def read_dicom(path: str | Path) -> Cine:
    """One DICOM file as a Cine; InputError says why a file cannot be one.

    Known problems are reported in words where they are found; anything else pydicom or a
    codec raises on a damaged file is caught here, so nothing but InputError leaves. Only
    interrupts and MemoryError pass: they are not properties of the file.
    """
    path = Path(path)
    try:
        return _read(path)
    except (InputError, MemoryError):
        raise
    except Exception as error:  # the boundary: a damaged file can fail anywhere inside pydicom
        raise InputError(path, f"unreadable DICOM ({type(error).__name__}: {error})") from error


def _read(path: Path) -> Cine:
    dataset = _read_dataset(path)
    module = pixel_module(path, dataset)
    pixels = locate_pixel_data(path, dataset)
    check_size(pixels, module)
    fields = cine_fields(dataset)
    try:
        frames = _grey_frames(pixels, module, Display(path, dataset, module))
        decoder = "pydicom"
    except DecodeError as error:
        if error.conclusive:
            raise InputError(path, str(error)) from error
        frames, decoder = _decode_with_dcmtk(path, pixels, module, str(error))
    return Cine(
        frames=frames,
        source=str(path),
        **fields,
        extra={"transfer_syntax": str(pixels.syntax), "decoder": decoder},
    )


def _grey_frames(pixels: PixelData, module: PixelModule, display: Display) -> np.ndarray:
    """(T, H, W) uint8 frames, decoded one at a time straight into the output.

    Peak memory is the output plus a frame or two. Deep data without a VOI step needs the
    cine's min-max before any frame can be scaled; rather than decoding twice (the decode is
    the cost), its frames are kept as stored values and scaled in place afterwards.
    """
    shape = (module.frames, module.rows, module.columns)
    if display.needs_stored_range:
        return _grey_frames_in_place(pixels, module, display, shape)
    frames = np.empty(shape, dtype=np.uint8)
    table = display.table()

    def store(index: int, stored: np.ndarray) -> None:
        frames[index] = display.grey(table, stored)

    decode_frames(pixels, module, store)
    return frames


def _grey_frames_in_place(
    pixels: PixelData, module: PixelModule, display: Display, shape: tuple[int, int, int]
) -> np.ndarray:
    """Stored values first, then each frame scaled by the cine's range over its own memory.

    The 8-bit frame i lands on bytes [i*HW, (i+1)*HW) of the buffer, which hold stored frames
    before i only (each takes 2*HW bytes), all already scaled; the buffer then shrinks to the
    8-bit cine. So the peak is the 16-bit cine: twice the 8-bit one, never three copies.
    """
    pixels_per_frame = shape[1] * shape[2]
    dtype = np.dtype(np.int16 if module.signed else np.uint16)
    buffer = np.empty(shape[0] * pixels_per_frame * dtype.itemsize, dtype=np.uint8)
    stored = buffer.view(dtype).reshape(shape)
    lows, highs = np.zeros(shape[0], np.int64), np.zeros(shape[0], np.int64)

    def store(index: int, frame: np.ndarray) -> None:
        stored[index] = frame
        lows[index], highs[index] = frame.min(), frame.max()

    decode_frames(pixels, module, store)
    table = display.table((int(lows.min()), int(highs.max())))
    for index in range(shape[0]):
        start = index * pixels_per_frame
        buffer[start : start + pixels_per_frame] = display.grey(table, stored[index]).ravel()
    # `stored` is not used past this point; the shrink keeps the buffer's start in place.
    buffer.resize(shape[0] * pixels_per_frame, refcheck=False)
    return buffer.reshape(shape)


def _read_dataset(path: Path) -> Dataset:
    """The parsed dataset, which must hold pixel data (left in the file until decoded).

    pydicom only warns when a file ends early, and returns what it kept: an empty dataset, or
    one without the Pixel Data element the file ended inside. Both are truncated images, told
    apart from a genuinely pixel-less object (SR, KOS) by the missing data or image attributes.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = _parse(path)
    if "PixelData" in dataset:
        return dataset
    if len(dataset) == 0 or ("Rows" in dataset and "Columns" in dataset):
        detail = str(caught[-1].message) if caught else "the file ends before the image's pixels"
        raise InputError(path, f"truncated or corrupt pixel data: {detail}")
    raise InputError(path, "no pixel data (not an image DICOM)")


def _parse(path: Path) -> Dataset:
    try:
        return pydicom.dcmread(path, defer_size=DEFER_BYTES)
    except InvalidDicomError:
        if not looks_like_dicom(path):
            raise InputError(
                path, "not a DICOM file (no 'DICM' marker and no DICOM elements at its start)"
            ) from None
        return _parse_headerless(path)
    except Exception as error:  # pydicom raises many types on a damaged header
        raise InputError(path, f"unreadable DICOM header: {error}") from error


def _parse_headerless(path: Path) -> Dataset:
    """A dataset stored without preamble/meta: read it as found and record its encoding.

    Such files are always uncompressed, so the encoding pydicom detected is the transfer syntax.
    """
    try:
        dataset = pydicom.dcmread(path, force=True, defer_size=DEFER_BYTES)
    except Exception as error:  # garbage parsed as DICOM fails in arbitrary ways
        raise InputError(path, f"unreadable DICOM header: {error}") from error
    if "TransferSyntaxUID" not in dataset.file_meta:
        implicit_vr, little_endian = dataset.original_encoding
        if implicit_vr:
            syntax = ImplicitVRLittleEndian
        else:
            syntax = ExplicitVRLittleEndian if little_endian else ExplicitVRBigEndian
        dataset.file_meta.TransferSyntaxUID = syntax
    return dataset


def _decode_with_dcmtk(
    path: Path, pixels: PixelData, module: PixelModule, problem: str
) -> tuple[np.ndarray, str]:
    """Transcode to uncompressed with a dcmtk tool in a temporary folder, then read that.

    dcmtk may rewrite attributes such as PhotometricInterpretation while decompressing, so its
    dataset drives the grey levels; but it must hold the frames the original header describes
    (dcmtk happily returns a lost fragment's cine one frame short, or a lying header's pixels
    as three times the frames).
    """
    tool = DCMTK_DECODERS.get(str(pixels.syntax))
    if tool is None or shutil.which(tool) is None:
        raise InputError(path, problem)
    with tempfile.TemporaryDirectory(prefix="angioscribe-") as folder:
        target = Path(folder) / "decoded.dcm"
        _run_dcmtk(path, tool, target, problem)
        try:
            decoded = _read_dataset(target)
            decoded_module = pixel_module(target, decoded)
            if not decoded_module.same_image(module):
                raise InputError(
                    target, f"it decoded {decoded_module.describe()}, not {module.describe()}"
                )
            decoded_pixels = locate_pixel_data(target, decoded)
            check_size(decoded_pixels, decoded_module)
            display = Display(target, decoded, decoded_module)
            return _grey_frames(decoded_pixels, decoded_module, display), tool
        except (InputError, DecodeError) as error:
            detail = error.problem if isinstance(error, InputError) else str(error)
            raise InputError(path, f"{problem}; after {tool}: {detail}") from error


def _run_dcmtk(path: Path, tool: str, target: Path, problem: str) -> None:
    """Run `tool source target`; its error output may echo corrupt bytes, so it is decoded
    leniently rather than as text."""
    try:
        run = subprocess.run(
            [tool, str(path.resolve()), str(target)],
            capture_output=True,
            timeout=DCMTK_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise InputError(path, f"{problem}; {tool} timed out") from None
    if run.returncode != 0:
        lines = run.stderr.decode("utf-8", errors="replace").splitlines()
        errors = [line[:DCMTK_LINE_CHARS] for line in lines if line[:2] in ("E:", "F:")]
        message = "; ".join(errors[-DCMTK_MESSAGE_LINES:]) or "failed"
        raise InputError(path, f"{problem}; {tool}: {message}")
