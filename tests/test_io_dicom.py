"""DICOM reader: real XA files, every transfer syntax generated at test time, grey-level pipeline,
errors that name the problem, and batches that survive bad files."""

from __future__ import annotations

import shutil
import subprocess
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    JPEG2000,
    BasicTextSRStorage,
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
    XRayAngiographicImageStorage,
    generate_uid,
)

from angioscribe.errors import InputError
from angioscribe.io import decode_helper, read_cine, read_cines, read_studies
from angioscribe.io.dicom import read_dicom
from angioscribe.io.dicom_pixels import DecodeError, FrameDecoder

# ---------------------------------------------------------------------------------------------
# Generated data


def vessel_frames(bits: int, n_frames: int = 6, size: int = 64) -> np.ndarray:
    """Stored values of a smooth background crossed by a vessel that darkens frame by frame.

    Smooth like an angiogram, so lossy codecs behave as they do on real cines.
    """
    y, x = np.mgrid[0:size, 0:size] / size
    centre = 0.5 + 0.2 * np.sin(2 * np.pi * x)
    vessel = np.exp(-0.5 * ((y - centre) / 0.05) ** 2)
    depth = np.linspace(0.05, 0.45, n_frames)[:, None, None]
    fraction = 0.55 + 0.3 * x - depth * vessel
    dtype = np.uint8 if bits <= 8 else np.uint16
    return np.rint(fraction * (2**bits - 1)).astype(dtype)


def xa_dataset(stored: np.ndarray, bits: int, photometric: str = "MONOCHROME2") -> Dataset:
    """A minimal multi-frame X-Ray Angiographic Image with geometry, stored uncompressed."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = XRayAngiographicImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = XRayAngiographicImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "SYNTHETIC-1"
    ds.Modality = "XA"
    ds.FrameTime = 66.7
    ds.PositionerPrimaryAngle = 30.5
    ds.PositionerSecondaryAngle = -20.0
    ds.DistanceSourceToDetector = 1000.0
    ds.DistanceSourceToPatient = 750.0
    ds.ImagerPixelSpacing = [0.2, 0.25]
    ds.NumberOfFrames = stored.shape[0]
    ds.Rows, ds.Columns = stored.shape[1:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 if bits <= 8 else 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.PixelData = stored.tobytes()
    return ds


def save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def xa12(tmp_path: Path) -> Path:
    """The synthetic 12-bit multi-frame XA, uncompressed."""
    return save(xa_dataset(vessel_frames(12), 12), tmp_path / "xa12.dcm")


@pytest.fixture
def xa8(tmp_path: Path) -> Path:
    """The same scene at 8 bits (JPEG baseline only carries 8-bit samples)."""
    return save(xa_dataset(vessel_frames(8), 8), tmp_path / "xa8.dcm")


def dcmtk(*command: str) -> Callable[[Path, Path], None]:
    """An encoder running a dcmtk tool: `tool [options] source target`."""

    def encode(source: Path, target: Path) -> None:
        if shutil.which(command[0]) is None:
            pytest.skip(f"{command[0]} (dcmtk) is not installed")
        subprocess.run([*command, str(source), str(target)], check=True, capture_output=True)

    return encode


def pydicom_encoder(syntax: str, **options: object) -> Callable[[Path, Path], None]:
    """An encoder using pydicom's own compress() (RLE, JPEG 2000 via pylibjpeg-openjpeg)."""

    def encode(source: Path, target: Path) -> None:
        ds = pydicom.dcmread(source)
        if syntax == ImplicitVRLittleEndian:
            ds.file_meta.TransferSyntaxUID = syntax
        else:
            ds.compress(syntax, **options)
        ds.save_as(target)

    return encode


# (id, source bits, encoder, transfer syntax written, lossless?)
ENCODINGS = [
    ("implicit-le", 12, pydicom_encoder(ImplicitVRLittleEndian), ImplicitVRLittleEndian, True),
    ("rle-pydicom", 12, pydicom_encoder(RLELossless), RLELossless, True),
    ("rle-dcmtk", 12, dcmtk("dcmcrle"), RLELossless, True),
    ("jpeg-baseline", 8, dcmtk("dcmcjpeg", "+eb", "+sr"), JPEGBaseline8Bit, False),
    ("jpeg-extended-12bit", 12, dcmtk("dcmcjpeg", "+ee", "+sr"), JPEGExtended12Bit, False),
    ("jpeg-lossless", 12, dcmtk("dcmcjpeg", "+el"), JPEGLossless, True),
    ("jpeg-lossless-sv1", 12, dcmtk("dcmcjpeg", "+e1"), JPEGLosslessSV1, True),
    ("jpeg-ls-lossless", 12, dcmtk("dcmcjpls", "+el"), JPEGLSLossless, True),
    ("jpeg-ls-near-lossless", 12, dcmtk("dcmcjpls", "+en"), JPEGLSNearLossless, False),
    ("j2k-lossless", 12, pydicom_encoder(JPEG2000Lossless), JPEG2000Lossless, True),
    ("j2k-lossy", 12, pydicom_encoder(JPEG2000, j2k_cr=[10]), JPEG2000, False),
]


def assert_close(decoded: np.ndarray, reference: np.ndarray, lossless: bool) -> None:
    assert decoded.shape == reference.shape
    difference = np.abs(decoded.astype(int) - reference.astype(int))
    if lossless:
        assert difference.max() == 0
    else:  # on the 0-255 display scale: small on average, no gross errors
        assert difference.mean() < 1.5
        assert difference.max() <= 8


# ---------------------------------------------------------------------------------------------
# Real files


def test_every_real_dicom_decodes_with_its_header_values(shared_dicom: Path):
    header = pydicom.dcmread(shared_dicom, stop_before_pixels=True)
    cine = read_cine(shared_dicom)
    assert cine.n_frames == int(header.get("NumberOfFrames", 1))
    assert (cine.rows, cine.cols) == (header.Rows, header.Columns)
    assert cine.frames.dtype == np.uint8
    assert cine.frames.max() > cine.frames.min()
    for field, keyword in (
        ("primary_angle", "PositionerPrimaryAngle"),
        ("secondary_angle", "PositionerSecondaryAngle"),
    ):
        expected = header.get(keyword)
        assert getattr(cine, field) == (pytest.approx(float(expected)) if expected else None)
    assert cine.modality == header.Modality
    assert cine.sop_uid == header.SOPInstanceUID


def test_phantom_cines_are_multi_frame_with_angles_and_frame_rate(shared_data: Path):
    for path in sorted((shared_data / "dicom" / "phantom-xa").glob("IM*.dcm")):
        header = pydicom.dcmread(path, stop_before_pixels=True)
        cine = read_dicom(path)
        assert 8 <= cine.n_frames <= 16
        assert (cine.rows, cine.cols) == (512, 512)
        assert cine.primary_angle is not None and cine.secondary_angle is not None
        assert cine.fps == pytest.approx(1000.0 / float(header.FrameTime), abs=1e-3)
        assert cine.sid_mm == pytest.approx(float(header.DistanceSourceToDetector))


def test_phantom_pixels_match_the_stored_8_bit_values(shared_data: Path):
    """The phantom's window (centre 128, width 256) spans the 8-bit range: grey = stored value."""
    path = shared_data / "dicom" / "phantom-xa" / "IM1.dcm"
    stored = pydicom.dcmread(path).pixel_array
    assert np.abs(read_dicom(path).frames.astype(int) - stored).max() <= 1


def test_wg04_jpeg_lossless_and_rle_decode_to_identical_pixels(shared_data: Path):
    folder = shared_data / "dicom" / "wg04-xa"
    jpll, rle = read_dicom(folder / "XA1_JPLL.dcm"), read_dicom(folder / "XA1_RLE.dcm")
    assert jpll.frames.shape == rle.frames.shape == (1, 1024, 1024)
    assert np.array_equal(jpll.frames, rle.frames)
    assert jpll.frames.min() == 0 and jpll.frames.max() == 255  # 10-bit data spread by min-max


# ---------------------------------------------------------------------------------------------
# Transfer syntaxes generated at test time


@pytest.mark.parametrize(
    ("bits", "encode", "syntax", "lossless"),
    [pytest.param(*encoding[1:], id=encoding[0]) for encoding in ENCODINGS],
)
def test_transfer_syntax_decodes_like_the_uncompressed_original(
    tmp_path: Path, xa12: Path, xa8: Path, bits: int, encode, syntax: str, lossless: bool
):
    original = xa12 if bits == 12 else xa8
    encoded = tmp_path / "encoded.dcm"
    encode(original, encoded)
    assert pydicom.dcmread(encoded, stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax
    cine, reference = read_dicom(encoded), read_dicom(original)
    assert cine.n_frames == 6
    assert_close(cine.frames, reference.frames, lossless)


@pytest.mark.parametrize(
    ("encode", "syntax", "tool", "lossless"),
    [
        pytest.param(
            dcmtk("dcmcjpeg", "+ee", "+sr"), JPEGExtended12Bit, "dcmdjpeg", False, id="jpeg-12"
        ),
        pytest.param(dcmtk("dcmcjpls", "+el"), JPEGLSLossless, "dcmdjpls", True, id="jpeg-ls"),
        pytest.param(dcmtk("dcmcrle"), RLELossless, "dcmdrle", True, id="rle"),
    ],
)
def test_dcmtk_decodes_when_pydicom_cannot(
    monkeypatch, tmp_path: Path, xa12: Path, encode, syntax: str, tool: str, lossless: bool
):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} (dcmtk) is not installed")
    encoded = tmp_path / "encoded.dcm"
    encode(xa12, encoded)
    reference = read_dicom(xa12)
    decode = FrameDecoder.decode

    def decode_without_codec(decoder: FrameDecoder, index: int, encoded: bytes) -> np.ndarray:
        if decoder.syntax == syntax:
            raise DecodeError("simulated: no plugin decodes this transfer syntax")
        return decode(decoder, index, encoded)

    monkeypatch.setattr(FrameDecoder, "decode", decode_without_codec)
    cine = read_dicom(encoded)
    assert cine.extra["decoder"] == tool
    assert_close(cine.frames, reference.frames, lossless)


def test_header_values_reach_the_cine(xa12: Path):
    cine = read_dicom(xa12)
    header = pydicom.dcmread(xa12, stop_before_pixels=True)
    assert cine.fps == pytest.approx(1000.0 / header.FrameTime, abs=1e-3)
    assert cine.primary_angle == header.PositionerPrimaryAngle
    assert cine.secondary_angle == header.PositionerSecondaryAngle
    assert cine.pixel_spacing_mm == tuple(float(v) for v in header.ImagerPixelSpacing)
    assert (cine.sid_mm, cine.sod_mm) == (
        header.DistanceSourceToDetector,
        header.DistanceSourceToPatient,
    )
    assert cine.patient_id == header.PatientID
    assert (cine.study_uid, cine.series_uid) == (header.StudyInstanceUID, header.SeriesInstanceUID)


def test_headerless_dataset_is_read_by_content(tmp_path: Path):
    """Old exports store the dataset without preamble or meta, often with no extension."""
    stored = vessel_frames(12)
    ds = xa_dataset(stored, 12)
    path = tmp_path / "1.2.3.4"
    del ds.file_meta
    ds.save_as(path, implicit_vr=True, little_endian=True)
    assert path.read_bytes()[128:132] != b"DICM"
    assert np.array_equal(
        read_cine(path).frames,
        read_dicom(save(xa_dataset(stored, 12), tmp_path / "ref.dcm")).frames,
    )


# ---------------------------------------------------------------------------------------------
# Grey levels: modality LUT, VOI, MONOCHROME1


def test_deep_data_without_window_spans_its_actual_range(xa12: Path):
    stored = pydicom.dcmread(xa12).pixel_array.astype(float)
    expected = (stored - stored.min()) / (stored.max() - stored.min()) * 255
    assert np.abs(read_dicom(xa12).frames - expected).max() <= 0.5 + 1e-3


def test_monochrome1_comes_out_inverted(tmp_path: Path):
    stored = vessel_frames(8)
    mono2 = read_dicom(save(xa_dataset(stored, 8, "MONOCHROME2"), tmp_path / "m2.dcm"))
    mono1 = read_dicom(save(xa_dataset(stored, 8, "MONOCHROME1"), tmp_path / "m1.dcm"))
    assert np.array_equal(mono1.frames, 255 - mono2.frames)


def windowed(tmp_path: Path, name: str, **header: object) -> tuple[np.ndarray, np.ndarray]:
    """(stored values, displayed frames) of the 12-bit scene with extra header attributes."""
    stored = vessel_frames(12)
    ds = xa_dataset(stored, 12)
    for keyword, value in header.items():
        setattr(ds, keyword, value)
    return stored.astype(float), read_dicom(save(ds, tmp_path / name)).frames.astype(float)


def test_voi_window_is_applied(tmp_path: Path):
    centre, width = 2048, 1024
    stored, shown = windowed(tmp_path, "w.dcm", WindowCenter=centre, WindowWidth=width)
    low, high = centre - width / 2, centre + width / 2
    assert (shown[stored <= low] == 0).all()
    assert (shown[stored > high] == 255).all()
    inside = (stored > low + 1) & (stored < high - 1)
    assert inside.any()
    assert np.abs(shown[inside] - (stored[inside] - low) / width * 255).max() <= 1.0


def test_rescale_comes_before_the_window(tmp_path: Path):
    """A window given in rescaled units must show the same as the equivalent stored window."""
    _, plain = windowed(tmp_path, "plain.dcm", WindowCenter=2048, WindowWidth=1024)
    _, rescaled = windowed(
        tmp_path,
        "rescaled.dcm",
        RescaleSlope=2,
        RescaleIntercept=-1000,
        WindowCenter=2 * 2048 - 1000,
        WindowWidth=2 * 1024,
    )
    assert np.abs(plain - rescaled).max() <= 1


def test_voi_lut_wins_over_window(tmp_path: Path):
    lut = Dataset()
    lut.LUTDescriptor = [4096, 0, 12]
    lut.add_new("LUTData", "OW", np.arange(4095, -1, -1, dtype="<u2").tobytes())  # inverting
    stored, shown = windowed(
        tmp_path, "lut.dcm", VOILUTSequence=[lut], WindowCenter=100, WindowWidth=10
    )
    assert np.abs(shown - (4095 - stored) / 4095 * 255).max() <= 0.5 + 1e-3


def test_rgb_image_becomes_its_grey_level(tmp_path: Path):
    grey = vessel_frames(8)
    ds = xa_dataset(grey, 8)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.PixelData = np.repeat(grey[..., None], 3, axis=-1).tobytes()
    assert np.abs(read_dicom(save(ds, tmp_path / "rgb.dcm")).frames.astype(int) - grey).max() <= 1


# ---------------------------------------------------------------------------------------------
# Errors and batches


def structured_report(path: Path) -> Path:
    """A Basic Text SR: valid DICOM with no pixels."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = BasicTextSRStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = BasicTextSRStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "SR"
    ds.ValueType = "CONTAINER"
    return save(ds, path)


def truncated_copy(source: Path, target: Path, keep: float = 0.6) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def test_truncated_uncompressed_file_is_reported(tmp_path: Path, xa12: Path):
    with pytest.raises(InputError, match="truncated or corrupt pixel data"):
        read_dicom(truncated_copy(xa12, tmp_path / "cut.dcm"))


def test_truncated_compressed_file_is_reported(tmp_path: Path, shared_data: Path):
    source = shared_data / "dicom" / "phantom-xa" / "IM1.dcm"
    with pytest.raises(InputError, match="truncated or corrupt pixel data") as error:
        read_dicom(truncated_copy(source, tmp_path / "cut.dcm"))
    assert error.value.source.endswith("cut.dcm")


def test_text_file_named_dcm_is_not_dicom(tmp_path: Path):
    path = tmp_path / "notes.dcm"
    path.write_text("Patient went home.\n")
    with pytest.raises(InputError, match="not a DICOM file"):
        read_cine(path)


def test_structured_report_has_no_pixels(tmp_path: Path):
    with pytest.raises(InputError, match=r"no pixel data \(not an image DICOM\)"):
        read_cine(structured_report(tmp_path / "sr.dcm"))


def test_batch_reports_each_bad_file_and_continues(tmp_path: Path, xa12: Path):
    text = tmp_path / "text.dcm"
    text.write_text("not dicom")
    bad = [truncated_copy(xa12, tmp_path / "cut.dcm"), text, structured_report(tmp_path / "sr.dcm")]
    results = list(read_cines([*bad, xa12]))
    assert [result.source for result in results] == [*bad, xa12]
    assert [result.ok for result in results] == [False, False, False, True]
    assert all(result.error.source == str(result.source) for result in results[:3])
    assert results[3].cine.n_frames == 6


def test_studies_group_by_study_uid_then_folder(tmp_path: Path):
    stored = vessel_frames(8, n_frames=2, size=16)
    first, second = xa_dataset(stored, 8), xa_dataset(stored, 8)
    second.StudyInstanceUID = first.StudyInstanceUID
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    save(first, tmp_path / "a" / "1.dcm")
    save(second, tmp_path / "b" / "2.dcm")
    loose = xa_dataset(stored, 8)
    del loose.StudyInstanceUID
    save(loose, tmp_path / "b" / "3.dcm")
    structured_report(tmp_path / "b" / "sr.dcm")
    studies = read_studies(tmp_path)
    assert [(study.key, len(study.cines)) for study in studies] == [
        (first.StudyInstanceUID, 2),
        (str(tmp_path / "b"), 1),
    ]
    assert studies[0].patient_id == first.PatientID


# ---------------------------------------------------------------------------------------------
# Long cines: bounded memory, and the decode helper on the second core


def test_long_cine_is_read_in_one_copy_of_its_frames(tmp_path: Path):
    """Frames go from the file straight into the 8-bit output: no whole Pixel Data in memory,
    no decoded copy beside the output (tracemalloc sees numpy's and Python's allocations)."""
    stored = np.tile(vessel_frames(8, n_frames=10, size=128), (30, 1, 1))
    path = save(xa_dataset(stored, 8), tmp_path / "long.dcm")
    tracemalloc.start()
    try:
        cine = read_dicom(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert cine.n_frames == 300 and np.array_equal(cine.frames, stored)
    assert peak <= 1.2 * stored.nbytes + 2**20


@pytest.fixture
def fresh_helper(monkeypatch):
    """A decode helper started for this test alone, and stopped after it."""
    monkeypatch.setenv("ANGIOSCRIBE_DECODE_HELPER", "1")
    monkeypatch.setattr(decode_helper, "_helper", None)
    monkeypatch.setattr(decode_helper, "_disabled", False)
    yield decode_helper
    if decode_helper._helper is not None:
        decode_helper._helper.close()


def read_with_ready_helper(helper_module, path: Path) -> np.ndarray:
    read_dicom(path)  # starts the helper
    assert helper_module._helper is not None and helper_module._helper.ready.wait(30)
    return read_dicom(path).frames


def test_decode_helper_takes_frames_and_changes_nothing(
    monkeypatch, fresh_helper, shared_data: Path
):
    path = shared_data / "dicom" / "phantom-xa" / "IM1.dcm"
    monkeypatch.setenv("ANGIOSCRIBE_DECODE_HELPER", "0")
    alone = read_dicom(path).frames
    monkeypatch.setenv("ANGIOSCRIBE_DECODE_HELPER", "1")
    sent: list[int] = []
    send = decode_helper.Helper.send

    def counted_send(helper, cine, call, index, encoded):
        sent.append(index)
        return send(helper, cine, call, index, encoded)

    monkeypatch.setattr(decode_helper.Helper, "send", counted_send)
    assert np.array_equal(read_with_ready_helper(fresh_helper, path), alone)
    assert sent  # the second core did part of the work


def test_a_dead_helper_is_not_the_files_fault(fresh_helper, shared_data: Path):
    path = shared_data / "dicom" / "phantom-xa" / "IM1.dcm"
    reference = read_with_ready_helper(fresh_helper, path)
    fresh_helper._helper._process.kill()
    assert np.array_equal(read_dicom(path).frames, reference)
    assert np.array_equal(read_dicom(path).frames, reference)
