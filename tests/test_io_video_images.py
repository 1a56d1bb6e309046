"""Video and frame-image readers, header sidecars, and how folders expand into cine sources."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from angioscribe.errors import InputError
from angioscribe.io import find_inputs, read_cine
from angioscribe.io.images import parse_dicominfo, read_image_folder
from angioscribe.io.video import read_video

REAL_CINE = Path("cine") / "clinical-lca" / "Projection_0"


def write_frames(folder: Path, levels: list[int], size: int = 16, name: str = "IM0_{}.png") -> None:
    """One flat grey image per level, numbered from 1 without zero padding."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, level in enumerate(levels, start=1):
        Image.fromarray(np.full((size, size), level, dtype=np.uint8)).save(
            folder / name.format(number)
        )


def write_video(path: Path, levels: list[int], fps: int, codec: str, size: int = 64) -> None:
    """A clip of flat grey frames, encoded with PyAV (the same FFmpeg that reads it back)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p" if codec != "mjpeg" else "yuvj420p"
        for level in levels:
            image = np.full((size, size, 3), level, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


# ---------------------------------------------------------------------------------------------
# The real clinical cine (frame JPEGs + MATLAB dicominfo dump)


def test_real_cine_folder_reads_with_its_header(shared_data: Path):
    cine = read_cine(shared_data / REAL_CINE)
    assert (cine.n_frames, cine.rows, cine.cols) == (37, 512, 512)
    assert cine.primary_angle == pytest.approx(-27.7)
    assert cine.secondary_angle == pytest.approx(-18.1)
    assert cine.fps is None or cine.fps > 0
    assert cine.pixel_spacing_mm == pytest.approx((0.308, 0.308))
    assert (cine.sid_mm, cine.sod_mm) == (1009.0, 720.0)
    assert cine.modality == "XA"


def test_real_cine_frames_are_in_acquisition_order(shared_data: Path):
    folder = shared_data / REAL_CINE
    cine = read_cine(folder)
    with Image.open(folder / "IM0_10.jpg") as tenth:
        assert np.array_equal(cine.frames[9], np.asarray(tenth.convert("L")))


# ---------------------------------------------------------------------------------------------
# Frame-image folders


def test_frames_sort_naturally(tmp_path: Path):
    levels = list(range(10, 130, 10))  # 12 frames: IM0_1 .. IM0_12
    write_frames(tmp_path, levels)
    assert read_image_folder(tmp_path).frames[:, 0, 0].tolist() == levels


def test_dicominfo_dump_values():
    dump = """
                                      Format: 'DICOM'
                                    Modality: 'XA'
                    DistanceSourceToDetector: 1009
                          ImagerPixelSpacing: [2x1 double]  =  [ 0.3080, 0.3080]
                      PositionerPrimaryAngle: -27.7000
                                   FrameTime: 66.6667
                       IconImageSequence: [1x1 struct]
                                    Modality: 'CT'
    """
    values = parse_dicominfo(dump)
    assert values["Modality"] == "XA"  # first occurrence wins
    assert values["DistanceSourceToDetector"] == 1009
    assert values["ImagerPixelSpacing"] == [0.308, 0.308]
    assert values["PositionerPrimaryAngle"] == pytest.approx(-27.7)
    assert "IconImageSequence" not in values


def test_json_sidecar_fills_and_overrides_the_header(tmp_path: Path):
    write_frames(tmp_path, [50, 60, 70])
    (tmp_path / "scan_dicominfo.txt").write_text(
        "PositionerPrimaryAngle: 30\nPositionerSecondaryAngle: 20\nFrameTime: 100\n"
    )
    sidecar = {"fps": 12.5, "secondary_angle": -25.0, "pixel_spacing_mm": [0.2, 0.2], "rows": 9}
    (tmp_path / "header.json").write_text(json.dumps(sidecar))
    cine = read_cine(tmp_path)
    assert (cine.primary_angle, cine.secondary_angle) == (30.0, -25.0)
    assert cine.fps == 12.5  # the sidecar beats FrameTime's 10 fps
    assert cine.pixel_spacing_mm == (0.2, 0.2)
    assert cine.rows == 16  # header fields never change the pixels
    assert cine.extra["header_files"] == ["scan_dicominfo.txt", "header.json"]


def test_cine_header_round_trips_as_a_sidecar(tmp_path: Path, shared_data: Path):
    """`Cine.header()` (what ingest prints) is itself a valid sidecar."""
    original = read_cine(shared_data / REAL_CINE)
    write_frames(tmp_path, [1, 2])
    (tmp_path / "header.json").write_text(json.dumps(original.header()))
    copy = read_cine(tmp_path)
    assert (copy.primary_angle, copy.secondary_angle, copy.sid_mm) == (
        original.primary_angle,
        original.secondary_angle,
        original.sid_mm,
    )


def test_invalid_sidecar_names_the_field(tmp_path: Path):
    write_frames(tmp_path, [1, 2])
    (tmp_path / "header.json").write_text(json.dumps({"fps": "fast"}))
    with pytest.raises(InputError, match="fps") as error:
        read_cine(tmp_path)
    assert error.value.source.endswith("header.json")


def test_frames_of_different_sizes_are_refused(tmp_path: Path):
    write_frames(tmp_path, [10, 20], size=16)
    write_frames(tmp_path, [30], size=8, name="IM0_{}0.png")  # IM0_10.png
    with pytest.raises(InputError, match="differ in size.*IM0_10.png is 8x8"):
        read_cine(tmp_path)


def test_sixteen_bit_frames_are_scaled_by_the_cines_range(tmp_path: Path):
    for number, level in enumerate([1000, 3000, 5000], start=1):
        image = Image.fromarray(np.full((8, 8), level, dtype=np.uint16))
        image.save(tmp_path / f"f{number}.png")
    assert read_cine(tmp_path).frames[:, 0, 0].tolist() == [0, 128, 255]


def test_single_colour_image_is_one_grey_frame(tmp_path: Path):
    path = tmp_path / "still.bmp"
    Image.fromarray(np.full((10, 12, 3), 90, dtype=np.uint8)).save(path)
    cine = read_cine(path)
    assert cine.frames.shape == (1, 10, 12)
    assert cine.frames.max() == cine.frames.min() == 90


def test_unreadable_image_is_reported(tmp_path: Path):
    path = tmp_path / "broken.png"
    path.write_text("not an image")
    with pytest.raises(InputError, match="unreadable image"):
        read_cine(path)


def test_empty_folder_says_no_cine_was_found(tmp_path: Path):
    with pytest.raises(InputError, match="no cine found"):
        read_cine(tmp_path)


def test_unknown_file_type_is_reported(tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(InputError, match="not a DICOM, video or image file"):
        read_cine(path)


# ---------------------------------------------------------------------------------------------
# Video


@pytest.mark.parametrize(("suffix", "codec"), [(".mp4", "libx264"), (".avi", "mjpeg")])
def test_generated_video_reads_back(tmp_path: Path, suffix: str, codec: str):
    levels = [40, 80, 120, 160, 200, 240, 200, 160, 120, 80]
    path = tmp_path / f"clip{suffix}"
    write_video(path, levels, fps=15, codec=codec)
    cine = read_video(path)
    assert (cine.n_frames, cine.rows, cine.cols) == (len(levels), 64, 64)
    assert cine.fps == pytest.approx(15)
    # luma comes back on the full 0-255 scale, within codec error
    assert np.abs(cine.frames.mean(axis=(1, 2)) - levels).max() < 4


def test_broken_video_is_reported(tmp_path: Path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    with pytest.raises(InputError, match="video"):
        read_cine(path)


def test_video_with_undecodable_metadata_still_reads(tmp_path: Path):
    """A byte >= 0x80 in the MP4 brand used to raise UnicodeDecodeError from PyAV's metadata."""
    path = tmp_path / "clip.mp4"
    write_video(path, [10, 100, 200, 50], fps=10, codec="mpeg4")
    data = bytearray(path.read_bytes())
    data[data.index(b"ftyp") + 4] = 0x80
    path.write_bytes(bytes(data))
    assert read_cine(path).n_frames == 4


@pytest.mark.parametrize(
    ("name", "sidecar"),
    [
        ("nan", '{"primary_angle": NaN}'),
        ("range", '{"secondary_angle": 95}'),
        ("zero", '{"sid_mm": 0}'),
    ],
)
def test_impossible_sidecar_geometry_is_refused(tmp_path: Path, name: str, sidecar: str):
    """JSON allows NaN; a sidecar is deliberate, so an impossible value is an error, not None."""
    write_frames(tmp_path, [1, 2])
    (tmp_path / "header.json").write_text(sidecar)
    with pytest.raises(InputError, match="invalid value"):
        read_cine(tmp_path)


def test_impossible_dicominfo_geometry_is_dropped_with_a_warning(tmp_path: Path):
    write_frames(tmp_path, [1, 2])
    (tmp_path / "IM_dicominfo.txt").write_text(
        "PositionerPrimaryAngle: NaN\nDistanceSourceToDetector: -1000\n"
        "PositionerSecondaryAngle: 12.5\n"
    )
    cine = read_cine(tmp_path)
    assert (cine.primary_angle, cine.sid_mm, cine.secondary_angle) == (None, None, 12.5)
    assert len(cine.warnings) == 2
    json.dumps(cine.header(), allow_nan=False)


# ---------------------------------------------------------------------------------------------
# Finding cine sources


def test_find_inputs_expands_folders_into_cine_sources(tmp_path: Path):
    study = tmp_path / "study"
    write_frames(study / "run1", [10, 20])
    write_frames(study / "run2", [30])
    write_video(study / "loop.mp4", [50, 60], fps=10, codec="libx264")
    (study / "run1" / "notes.txt").write_text("not a cine")
    (study / "empty").mkdir()
    assert find_inputs([study]) == [study / "loop.mp4", study / "run1", study / "run2"]
    assert find_inputs([study / "empty"]) == [study / "empty"]
    loose = study / "run1" / "IM0_1.png"
    assert find_inputs([loose]) == [loose]
