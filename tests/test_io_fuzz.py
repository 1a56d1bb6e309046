"""Hostile input for the DICOM reader: seeded mutations of the real XA files, and one regression
test for each way a damaged file used to escape the InputError contract or read as a wrong cine.

ANGIOSCRIBE_FUZZ_CASES scales the mutation run (default 330, about half a minute); a run of
several thousand is the release check.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames, itemize_fragment
from pydicom.uid import RLELossless

from angioscribe.cine import Cine
from angioscribe.errors import InputError
from angioscribe.io import read_cine, read_cines
from angioscribe.io.header import GEOMETRY_RANGES
from dicom_mutations import Seed, mutations, real_seeds

FUZZ_CASES = int(os.environ.get("ANGIOSCRIBE_FUZZ_CASES", "330"))
SLOWEST_CASE_S = 20.0  # far above any real read here: a case this slow is a hang


@pytest.fixture(scope="module")
def seeds(shared_data: Path) -> list[Seed]:
    return real_seeds(shared_data / "dicom")


def assert_faithful(cine: Cine, path: Path) -> None:
    """What a read returned agrees with the file's own header, and is valid JSON."""
    header = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    assert cine.frames.dtype == np.uint8 and cine.frames.ndim == 3
    assert cine.n_frames == int(header.get("NumberOfFrames") or 1)
    assert (cine.rows, cine.cols) == (int(header.Rows), int(header.Columns))
    record = cine.header()
    json.dumps(record, allow_nan=False)
    for name, (low, high) in GEOMETRY_RANGES.items():
        values = record[name] if isinstance(record[name], tuple | list) else [record[name]]
        assert all(value is None or low <= value <= high for value in values), (name, record)


@pytest.mark.filterwarnings("ignore")  # pydicom warns on every damaged value it meets
def test_mutated_real_files_raise_only_input_error(tmp_path: Path, seeds: list[Seed]):
    """Header and pixel byte flips, truncation, deleted tags, absurd values, wrong transfer
    syntaxes, photometric lies, broken fragments and empty files: each case either reads as a
    cine faithful to its header or raises an InputError naming the file, promptly."""
    outcomes = {"read": 0, "refused": 0}
    for mutation in mutations(seeds, FUZZ_CASES):
        path = tmp_path / "mutated.dcm"
        path.write_bytes(mutation.data)
        started = time.perf_counter()
        try:
            cine = read_cine(path)
        except InputError as error:
            assert error.source == str(path), mutation.name
            outcomes["refused"] += 1
        except BaseException as error:  # noqa: BLE001 - the point: nothing else may leave
            pytest.fail(f"{mutation.name}: {type(error).__name__}: {error}")
        else:
            assert_faithful(cine, path)
            outcomes["read"] += 1
        assert time.perf_counter() - started < SLOWEST_CASE_S, mutation.name
    assert outcomes["read"] > 0 and outcomes["refused"] > 0  # both paths were exercised


# ---------------------------------------------------------------------------------------------
# Regression tests: one per escape found by the first hostile run, each built from a real file.


def phantom(shared_data: Path) -> Dataset:
    return pydicom.dcmread(shared_data / "dicom" / "phantom-xa" / "IM1.dcm")


def wg04_rle(shared_data: Path) -> Dataset:
    return pydicom.dcmread(shared_data / "dicom" / "wg04-xa" / "XA1_RLE.dcm")


def saved(dataset: Dataset, path: Path) -> Path:
    dataset.save_as(path, enforce_file_format=True)
    return path


def refusal(path: Path) -> str:
    """The problem read_cine reports for `path` (it must refuse it with an InputError)."""
    with pytest.raises(InputError) as error:
        read_cine(path)
    assert error.value.source == str(path)
    return error.value.problem


def rle_split_frame(dataset: Dataset) -> Dataset:
    """An RLE cine whose second frame is stored as two fragments (RLE allows one)."""
    dataset.decompress()
    dataset.NumberOfFrames = 3
    dataset.PixelData = dataset.PixelData[: 3 * 512 * 512]
    dataset.compress(RLELossless)
    frames = list(generate_frames(dataset.PixelData, number_of_frames=3))
    parts = [frames[0], frames[1][:100], frames[1][100:], frames[2]]
    dataset.PixelData = b"".join(itemize_fragment(part) for part in [b"", *parts])
    return dataset


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda ds: setattr(ds, "Columns", 1023), id="columns-1023"),
        pytest.param(lambda ds: setattr(ds, "Columns", 1), id="columns-1"),
        pytest.param(lambda ds: _set_pixel_byte(ds, 154, 155), id="flipped-byte"),
    ],
)
def test_rle_codec_panic_is_an_input_error(tmp_path: Path, shared_data: Path, damage):
    """The Rust RLE decoder panics (a BaseException) on these; the reader names the frame and
    does not hand the damaged data to dcmtk, which would return a sheared image."""
    dataset = wg04_rle(shared_data)
    damage(dataset)
    problem = refusal(saved(dataset, tmp_path / "rle.dcm"))
    assert "RLE Lossless frame 1 of 1 is corrupt" in problem


def test_rle_frame_split_in_two_fragments_reads_exactly_or_is_refused(
    tmp_path: Path, shared_data: Path
):
    """pydicom cannot tell where the split frame ends; dcmtk joins the fragments correctly."""
    path = saved(rle_split_frame(phantom(shared_data)), tmp_path / "split.dcm")
    if shutil.which("dcmdrle") is None:
        assert "corrupt pixel data" in refusal(path)
        return
    cine = read_cine(path)
    stored = pydicom.dcmread(shared_data / "dicom" / "phantom-xa" / "IM1.dcm").pixel_array
    assert cine.extra["decoder"] == "dcmdrle"
    assert np.array_equal(cine.frames, stored[:3])  # window 128/256: grey = stored value


def _set_pixel_byte(dataset: Dataset, offset: int, value: int) -> None:
    data = bytearray(dataset.PixelData)
    data[offset] = value
    dataset.PixelData = bytes(data)


def test_dcmtk_error_output_with_corrupt_bytes_is_reported(tmp_path: Path, shared_data: Path):
    """A flipped VR byte in the Pixel Data header: dcmdjpeg echoes it (not UTF-8) and fails."""
    if shutil.which("dcmdjpeg") is None:
        pytest.skip("dcmdjpeg (dcmtk) is not installed")
    source = saved(phantom(shared_data), tmp_path / "source.dcm")
    data = bytearray(source.read_bytes())
    vr = data.index(b"\xe0\x7f\x10\x00OB") + 4
    data[vr : vr + 2] = b"O\xff"
    path = tmp_path / "flipped-vr.dcm"
    path.write_bytes(bytes(data))
    assert "dcmdjpeg" in refusal(path)


def lut_item(descriptor: list[int], data: bytes | None) -> Dataset:
    item = Dataset()
    item.LUTDescriptor = descriptor
    if data is not None:
        item.add_new("LUTData", "OW", data)
    return item


def ramp(entries: int, top: int) -> bytes:
    return np.linspace(0, top, entries).astype("<u2").tobytes()


@pytest.mark.parametrize(
    ("keyword", "value", "problem"),
    [
        ("WindowCenter", "abc", "WindowCenter is not a number"),
        ("WindowWidth", "abc", "WindowWidth is not a number"),
        ("ModalityLUTSequence", [lut_item([256, 0, 12], ramp(256, 4095))], "12-bit entries"),
        ("VOILUTSequence", [lut_item([256, 0, 0], ramp(256, 255))], "0-bit entries"),
        ("ModalityLUTSequence", [lut_item([256, 0, 8], ramp(256, 4095))], "beyond its 8-bit"),
        ("VOILUTSequence", [lut_item([256, 0, 16], ramp(100, 65535))], "holds 100 entries"),
        ("ModalityLUTSequence", [lut_item([256, 0, 16], None)], "has no LUT Data"),
    ],
)
def test_bad_window_or_lut_is_named(
    tmp_path: Path, shared_data: Path, keyword: str, value: object, problem: str
):
    dataset = phantom(shared_data)
    if isinstance(value, str):
        tag = pydicom.tag.Tag(keyword)
        dataset[tag] = pydicom.dataelem.RawDataElement(tag, "DS", 4, b"abc ", 0, False, True)
    else:
        setattr(dataset, keyword, value)
    assert problem in refusal(saved(dataset, tmp_path / "lut.dcm"))


def test_flipped_vr_byte_in_the_header_leaves_that_value_unknown(tmp_path: Path, shared_data: Path):
    """pydicom raises 'Unknown Value Representation' on access; the rest of the file reads."""
    source = saved(phantom(shared_data), tmp_path / "source.dcm")
    data = bytearray(source.read_bytes())
    angle = data.index(b"\x18\x00\x10\x15DS")  # (0018,1510) PositionerPrimaryAngle
    data[angle + 5] = ord("X")
    path = tmp_path / "flipped-vr.dcm"
    path.write_bytes(bytes(data))
    cine = read_cine(path)
    assert cine.primary_angle is None
    assert any("PositionerPrimaryAngle" in warning for warning in cine.warnings)
    assert cine.secondary_angle is not None and cine.n_frames == 14


def test_single_frame_time_vector_without_frame_time(tmp_path: Path, shared_data: Path):
    dataset = pydicom.dcmread(shared_data / "dicom" / "wg04-xa" / "XA1_JPLL.dcm")
    dataset.FrameTimeVector = 0.0  # one value: stored as a bare DSfloat
    cine = read_cine(saved(dataset, tmp_path / "one.dcm"))
    assert cine.fps is None and cine.n_frames == 1


@pytest.mark.parametrize(
    ("samples", "photometric"), [(3, "RGB"), (1, "RGB"), (3, "MONOCHROME2"), (1, "YBR_FULL")]
)
def test_photometric_lie_is_refused_not_read_as_more_frames(
    tmp_path: Path, shared_data: Path, samples: int, photometric: str
):
    """dcmtk used to return 3x the frames (two thirds zeros) for the first case."""
    dataset = phantom(shared_data)
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = samples, photometric
    refusal(saved(dataset, tmp_path / "lie.dcm"))


def test_lost_fragment_is_refused_not_read_one_frame_short(tmp_path: Path, shared_data: Path):
    dataset = phantom(shared_data)
    frames = list(generate_frames(dataset.PixelData, number_of_frames=14))
    dataset.PixelData = encapsulate(frames[:5] + frames[6:])
    problem = refusal(saved(dataset, tmp_path / "lost.dcm"))
    assert "14" in problem


@pytest.mark.parametrize("keyword", ["Rows", "Columns"])
def test_absurd_size_is_refused_before_decoding(tmp_path: Path, shared_data: Path, keyword: str):
    """65535 x 512 x 14 frames from a 3.6 MB file: refused at once, not 2 GB of zeros."""
    dataset = phantom(shared_data)
    setattr(dataset, keyword, 65535)
    path = saved(dataset, tmp_path / "huge.dcm")
    started = time.perf_counter()
    assert "more than 100x" in refusal(path)
    assert time.perf_counter() - started < 2.0


def test_impossible_geometry_is_unknown_with_warnings_and_valid_json(
    tmp_path: Path, shared_data: Path
):
    dataset = phantom(shared_data)
    raw = {
        "PositionerPrimaryAngle": b"nan ",
        "PositionerSecondaryAngle": b"-95 ",
        "DistanceSourceToDetector": b"inf ",
        "DistanceSourceToPatient": b"-720",
        "ImagerPixelSpacing": b"0\\0.2 ",
    }
    for keyword, value in raw.items():
        tag = pydicom.tag.Tag(keyword)
        dataset[tag] = pydicom.dataelem.RawDataElement(tag, "DS", len(value), value, 0, False, True)
    dataset.FrameTime = "1e-320"
    cine = read_cine(saved(dataset, tmp_path / "geometry.dcm"))
    fields = ("primary_angle", "secondary_angle", "sid_mm", "sod_mm", "pixel_spacing_mm", "fps")
    assert all(getattr(cine, field) is None for field in fields)
    for keyword in raw:
        assert any(keyword in warning for warning in cine.warnings), keyword
    record = json.loads(json.dumps(cine.header(), allow_nan=False))
    assert record["warnings"] == cine.warnings and not any(
        isinstance(value, float) and not math.isfinite(value) for value in record.values()
    )


def test_batch_with_a_panicking_file_reports_every_good_file(tmp_path: Path, shared_data: Path):
    bad = wg04_rle(shared_data)
    bad.Columns = 1023
    paths = [
        shared_data / "dicom" / "phantom-xa" / "IM2.dcm",
        saved(bad, tmp_path / "bad.dcm"),
        shared_data / "dicom" / "wg04-xa" / "XA1_JPLL.dcm",
    ]
    assert [result.ok for result in read_cines(paths)] == [True, False, True]
