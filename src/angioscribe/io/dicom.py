"""DICOM (XA, XRF or any image IOD) -> Cine: uint8 frames in MONOCHROME2 plus the header values.

Pixels decode through pydicom 3 and its pylibjpeg plugins (RLE, JPEG baseline/extended/lossless,
JPEG-LS, JPEG 2000). When they fail on a syntax dcmtk also handles, the file is transcoded to
uncompressed with dcmtk's command-line decoders and read again, so a codec gap in one library
does not lose a cine. Grey levels then follow the DICOM display pipeline: Modality LUT/rescale,
then VOI LUT or window, then MONOCHROME1 inversion.
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
from pydicom.pixels import apply_modality_lut, apply_voi, apply_windowing, get_decoder
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
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
from angioscribe.io.greyscale import luminance, scale_to_uint8
from angioscribe.io.header import cine_fields

DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ".dic"})

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
    """One DICOM file as a Cine; InputError says why a file cannot be one."""
    path = Path(path)
    dataset = _read_dataset(path)
    stored, described_by, decoder = _decode_pixels(path, dataset)
    frames = _display_frames(path, stored, described_by)
    transfer_syntax = str(dataset.file_meta.get("TransferSyntaxUID", ""))
    return Cine(
        frames=frames,
        source=str(path),
        **cine_fields(dataset),
        extra={"transfer_syntax": transfer_syntax, "decoder": decoder},
    )


def _read_dataset(path: Path) -> Dataset:
    """The parsed dataset, which must hold pixel data.

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
        return pydicom.dcmread(path)
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
        dataset = pydicom.dcmread(path, force=True)
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


def _decode_pixels(path: Path, dataset: Dataset) -> tuple[np.ndarray, Dataset, str]:
    """Stored pixel values, the dataset that describes them, and the decoder that made them.

    The dcmtk-decoded dataset replaces the original for the grey-level steps because dcmtk may
    rewrite attributes such as PhotometricInterpretation while decompressing.
    """
    try:
        return dataset.pixel_array, dataset, "pydicom"
    except Exception as error:  # any plugin failure: unsupported codec or damaged data
        problem = _decode_problem(dataset, error)
    syntax = str(dataset.file_meta.get("TransferSyntaxUID", ""))
    tool = DCMTK_DECODERS.get(syntax)
    if tool is None or shutil.which(tool) is None:
        raise InputError(path, problem)
    stored, decoded = _decode_with_dcmtk(path, tool, problem)
    return stored, decoded, tool


def _decode_problem(dataset: Dataset, error: Exception) -> str:
    """Tell a missing codec apart from damaged data: the fixes differ (install vs. re-export)."""
    syntax = dataset.file_meta.get("TransferSyntaxUID")
    try:
        available = syntax is not None and get_decoder(syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        name = UID(syntax).name if syntax else "a missing transfer syntax"
        return f"no installed decoder for {name} (install the pylibjpeg plugins or dcmtk): {error}"
    return f"truncated or corrupt pixel data: {error}"


def _decode_with_dcmtk(path: Path, tool: str, problem: str) -> tuple[np.ndarray, Dataset]:
    """Transcode to uncompressed in a temporary folder with a dcmtk tool, then decode."""
    with tempfile.TemporaryDirectory(prefix="angioscribe-") as folder:
        target = Path(folder) / "decoded.dcm"
        try:
            run = subprocess.run(
                [tool, str(path.resolve()), str(target)],
                capture_output=True,
                text=True,
                timeout=DCMTK_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise InputError(path, f"{problem}; {tool} timed out") from None
        if run.returncode != 0:
            raise InputError(path, f"{problem}; {tool}: {run.stderr.strip() or 'failed'}")
        try:
            decoded = pydicom.dcmread(target)
            return decoded.pixel_array, decoded
        except Exception as error:  # dcmtk wrote something pydicom still cannot decode
            raise InputError(path, f"{problem}; after {tool}: {error}") from error


def _display_frames(path: Path, stored: np.ndarray, dataset: Dataset) -> np.ndarray:
    """(T, H, W) uint8 in MONOCHROME2 from stored values, converted one frame at a time.

    A float copy of a whole 12-bit cine would be several times its size; per frame it is not.
    """
    samples = int(dataset.get("SamplesPerPixel", 1))
    frames = stored if stored.ndim == (3 if samples == 1 else 4) else stored[None]
    if samples == 3:
        bits = int(dataset.get("BitsStored", 8))
        return np.stack([scale_to_uint8(luminance(frame), 0, 2**bits - 1) for frame in frames])
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise InputError(
            path, f"unsupported pixel format: {samples} samples per pixel, {photometric}"
        )
    try:
        grey = _apply_luts(frames, dataset)
    except (ValueError, NotImplementedError) as error:  # invalid LUT or window in the header
        raise InputError(path, f"cannot apply the header's Modality/VOI LUT: {error}") from error
    if photometric == "MONOCHROME1":
        np.subtract(255, grey, out=grey)
    return grey


def _apply_luts(frames: np.ndarray, dataset: Dataset) -> np.ndarray:
    voi = _voi_kind(dataset)
    low, high = _display_range(frames, dataset, voi)
    grey = np.empty(frames.shape, dtype=np.uint8)
    for index, frame in enumerate(frames):
        values = apply_modality_lut(frame, dataset)
        if voi == "lut":
            values = apply_voi(values, dataset)
        elif voi == "window":
            values = apply_windowing(values, dataset)
        grey[index] = scale_to_uint8(values, low, high)
    return grey


def _voi_kind(dataset: Dataset) -> str | None:
    """'lut', 'window' or None; a complete VOI LUT wins over a window, as in pydicom."""
    items = dataset.get("VOILUTSequence")
    if items and "LUTDescriptor" in items[0] and "LUTData" in items[0]:
        return "lut"
    if dataset.get("WindowCenter") is not None and dataset.get("WindowWidth") is not None:
        return "window"
    return None


def _display_range(frames: np.ndarray, dataset: Dataset, voi: str | None) -> tuple[float, float]:
    """The values that become 0 and 255.

    With a VOI step, its whole output range (the header says how the image should look).
    Without one, the stored range for <= 8-bit data, and the cine's actual min-max for deeper
    data, which rarely fills its nominal range; one range for all frames keeps the contrast
    bolus visible as a change over time.
    """
    if voi == "lut":
        depth = int(dataset.VOILUTSequence[0].LUTDescriptor[2])
        return 0.0, float(2**depth - 1)
    if voi == "window":
        ends = apply_windowing(np.array([-np.inf, np.inf]), dataset)
        return float(ends.min()), float(ends.max())
    bits = int(dataset.get("BitsStored", frames.dtype.itemsize * 8))
    if bits <= 8:
        signed = int(dataset.get("PixelRepresentation", 0)) == 1
        lowest, highest = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    else:
        lowest, highest = int(frames.min()), int(frames.max())
    ends = apply_modality_lut(np.array([lowest, highest]), dataset)
    return float(ends.min()), float(ends.max())
