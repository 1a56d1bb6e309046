"""A seeded mutator of real DICOM files: what a hostile or broken PACS sends the readers.

Seeds are cut from the real XA files so the codecs see real streams: the first frames of each
phantom cine (JPEG lossless, as stored), the same frames re-encoded as RLE and stored
uncompressed, and the WG04 single frames (10-bit JPEG lossless and RLE) as they are. Each
mutation is one of the damage kinds below, drawn with a seeded generator, so a failing case is
named and reproducible from its number.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pydicom
from pydicom import config
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames, itemize_fragment
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.tag import Tag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLossless,
    JPEGLSLossless,
    RLELossless,
)

SEED_FRAMES = 3  # frames kept from each phantom cine: real streams, fast cases


@dataclass(frozen=True)
class Seed:
    """One real file to mutate, with where its Pixel Data value starts."""

    name: str
    data: bytes
    pixel_offset: int

    def dataset(self) -> Dataset:
        return pydicom.dcmread(BytesIO(self.data))


@dataclass(frozen=True)
class Mutation:
    name: str
    data: bytes


def real_seeds(dicom_folder: Path) -> list[Seed]:
    """Small seeds from the real files (see the module docstring)."""
    seeds: list[Seed] = []
    for path in sorted((dicom_folder / "phantom-xa").glob("IM*.dcm")):
        dataset = pydicom.dcmread(path)
        frames = list(generate_frames(dataset.PixelData, number_of_frames=dataset.NumberOfFrames))
        dataset.NumberOfFrames = SEED_FRAMES
        dataset.PixelData = encapsulate(frames[:SEED_FRAMES])
        seeds.append(_seed(f"{path.stem}-jpll", dataset))
        if path.stem == "IM1":
            seeds.append(_seed(f"{path.stem}-native", _uncompressed(dataset)))
            rle = _uncompressed(dataset)
            rle.compress(RLELossless)
            seeds.append(_seed(f"{path.stem}-rle", rle))
    for path in sorted((dicom_folder / "wg04-xa").glob("*.dcm")):
        seeds.append(_seed(path.stem, pydicom.dcmread(path)))
    return seeds


def _uncompressed(dataset: Dataset) -> Dataset:
    copy = pydicom.dcmread(BytesIO(_to_bytes(dataset)))
    copy.decompress()
    return copy


def _seed(name: str, dataset: Dataset) -> Seed:
    data = _to_bytes(dataset)
    deferred = pydicom.dcmread(BytesIO(data), defer_size=1024)
    return Seed(name, data, deferred.get_item("PixelData", keep_deferred=True).value_tell)


def _to_bytes(dataset: Dataset) -> bytes:
    buffer = BytesIO()
    with config.disable_value_validation():
        dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Damage kinds: each takes the generator and a seed, returns (what was done, the bytes).

Damage = Callable[[random.Random, Seed], tuple[str, bytes]]


def flip_header_bytes(rng: random.Random, seed: Seed) -> tuple[str, bytes]:
    data = bytearray(seed.data)
    spots = [rng.randrange(128, seed.pixel_offset + 16) for _ in range(rng.randint(1, 3))]
    for spot in spots:
        data[spot] ^= 1 << rng.randrange(8)
    return f"header bytes {spots}", bytes(data)


def flip_pixel_bytes(rng: random.Random, seed: Seed) -> tuple[str, bytes]:
    data = bytearray(seed.data)
    spots = [rng.randrange(seed.pixel_offset, len(data)) for _ in range(rng.randint(1, 8))]
    for spot in spots:
        data[spot] = rng.randrange(256)
    return f"pixel bytes {spots}", bytes(data)


def truncate(rng: random.Random, seed: Seed) -> tuple[str, bytes]:
    end = rng.choice(
        [rng.randrange(len(seed.data)), rng.randrange(seed.pixel_offset, len(seed.data))]
    )
    return f"cut at {end}", seed.data[:end]


DELETABLE = [
    "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
    "SamplesPerPixel", "PhotometricInterpretation", "NumberOfFrames", "PixelData", "FrameTime",
    "WindowCenter", "WindowWidth", "SOPInstanceUID",
]  # fmt: skip


def delete_tag(rng: random.Random, seed: Seed) -> tuple[str, bytes]:
    dataset = seed.dataset()
    keyword = rng.choice(DELETABLE)
    if keyword in dataset:
        delattr(dataset, keyword)
    if rng.random() < 0.2:
        del dataset.file_meta.TransferSyntaxUID
        return f"no {keyword}, no transfer syntax", _without_meta_check(dataset)
    return f"no {keyword}", _to_bytes(dataset)


ABSURD_VALUES: list[tuple[str, object]] = [
    ("Rows", 65535), ("Columns", 65535), ("Columns", 1), ("Columns", 1023), ("Rows", 511),
    ("Rows", 0), ("NumberOfFrames", 2**30), ("NumberOfFrames", 0), ("NumberOfFrames", 1),
    ("NumberOfFrames", 2), ("NumberOfFrames", 99), ("NumberOfFrames", "abc"),
    ("NumberOfFrames", "-4"), ("BitsStored", 0), ("BitsStored", 12), ("BitsStored", 17),
    ("BitsStored", 1), ("BitsAllocated", 12), ("BitsAllocated", 32), ("BitsAllocated", 8),
    ("BitsAllocated", 16), ("PixelRepresentation", 1), ("PixelRepresentation", 7),
    ("HighBit", 40), ("WindowCenter", "abc"), ("WindowWidth", "abc"), ("WindowWidth", "0"),
    ("WindowWidth", "-5"), ("WindowCenter", "nan"), ("RescaleSlope", "abc"),
    ("RescaleSlope", "nan"), ("RescaleSlope", "0"), ("RescaleIntercept", "inf"),
    ("VOILUTFunction", "SIGMOID"), ("VOILUTFunction", "BOGUS"),
    ("PositionerPrimaryAngle", "nan"), ("PositionerPrimaryAngle", "inf"),
    ("PositionerPrimaryAngle", "400"), ("PositionerSecondaryAngle", "-95"),
    ("PositionerSecondaryAngle", "abc"), ("ImagerPixelSpacing", ["0", "0.2"]),
    ("ImagerPixelSpacing", ["-1", "-1"]), ("ImagerPixelSpacing", ["nan", "0.3"]),
    ("ImagerPixelSpacing", "0.3"), ("DistanceSourceToDetector", "nan"),
    ("DistanceSourceToDetector", "-1000"), ("DistanceSourceToPatient", "0"),
    ("DistanceSourceToPatient", "inf"), ("FrameTime", "0"), ("FrameTime", "-66"),
    ("FrameTime", "nan"), ("FrameTime", "1e-320"), ("FrameTime", "abc"),
    ("CineRate", "-3"), ("RecommendedDisplayFrameRate", "nan"),
]  # fmt: skip


def absurd_value(rng: random.Random, seed: Seed) -> tuple[str, bytes]:
    dataset = seed.dataset()
    keyword, value = rng.choice(ABSURD_VALUES)
    _set_raw(dataset, keyword, value)
    return f"{keyword}={value!r}", _to_bytes(dataset)


def _set_raw(dataset: Dataset, keyword: str, value: object) -> None:
    """Store `value` as the element's bytes, unchecked, as a careless writer would."""
    tag = Tag(keyword)
    vr = dictionary_VR(tag)
    items = value if isinstance(value, list) else [value]
    if vr in ("US", "SS"):
        code = "<H" if vr == "US" else "<h"
        raw = b"".join(
            struct.pack(code, int(item) % 2**16 if vr == "US" else int(item)) for item in items
        )
    else:
        raw = "\\".join(str(item) for item in items).encode()
        raw += b" " * (len(raw) % 2)
    dataset[tag] = RawDataElement(tag, vr, len(raw), raw, 0, False, True)


def bad_frame_timing(rng: random.Random, seed: Seed) -> tuple[str, bytes]:
    """A FrameTimeVector of one value (or junk) with no FrameTime."""
    dataset = seed.dataset()
    if "FrameTime" in dataset:
        del dataset.FrameTime
    value = rng.choice(["0", "66.7", ["0", "nan", "inf"], ["0", "-5", "0"], "abc"])
    _set_raw(dataset, "FrameTimeVector", value)
    return f"FrameTimeVector={value!r}", _to_bytes(dataset)


def _lut_item(descriptor: list[int], data: bytes | None) -> Dataset:
    item = Dataset()
    with config.disable_value_validation():
        item.LUTDescriptor = descriptor
        if data is not None:
            item.add_new("LUTData", "OW", data)
    return item


def broken_lut(rng: random.Random, seed: Seed) -> tuple[str, bytes]:
    """Modality or VOI LUTs with odd depths, short, missing or too-large data."""
    entries = rng.choice([256, 1024, 4096])
    depth = rng.choice([0, 8, 12, 16, 17])
    values = [rng.randrange(2 ** rng.choice([8, 12, 16])) for _ in range(entries)]
    length = rng.choice([entries, entries // 2, 0])
    data = (
        None if rng.random() < 0.2 else b"".join(v.to_bytes(2, "little") for v in values[:length])
    )
    sequence = rng.choice(["ModalityLUTSequence", "VOILUTSequence"])
    dataset = seed.dataset()
    setattr(dataset, sequence, [_lut_item([entries, 0, depth], data)])
    size = "no data" if data is None else f"{length} entries"
    return f"{sequence} [{entries}, 0, {depth}] {size}", _to_bytes(dataset)


SYNTAXES = [
    ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian, RLELossless,
    JPEGBaseline8Bit, JPEGLossless, JPEGLSLossless, JPEG2000Lossless,
    DeflatedExplicitVRLittleEndian, "1.2.3.4", "1.2.840.10008.1.2.4.9999",
]  # fmt: skip


def wrong_syntax(rng: random.Random, seed: Seed) -> tuple[str, bytes]:
    """The file meta names another transfer syntax; the dataset bytes stay as they were."""
    syntax = rng.choice(SYNTAXES)
    meta = pydicom.dcmread(BytesIO(seed.data), stop_before_pixels=True).file_meta
    meta.TransferSyntaxUID = syntax
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_file_meta_info(buffer, meta, enforce_standard=True)
    group_length = int.from_bytes(seed.data[140:144], "little")
    dataset_start = 144 + group_length
    return f"transfer syntax {syntax!r}", seed.data[:132] + buffer.getvalue() + seed.data[
        dataset_start:
    ]


PHOTOMETRIC_LIES = [
    (1, "RGB"), (3, "MONOCHROME2"), (3, "RGB"), (3, "YBR_FULL_422"), (1, "PALETTE COLOR"),
    (1, "MONOCHROME1"), (4, "CMYK"), (1, "YBR_FULL"), (2, "MONOCHROME2"),
]  # fmt: skip


def photometric_lie(rng: random.Random, seed: Seed) -> tuple[str, bytes]:
    samples, photometric = rng.choice(PHOTOMETRIC_LIES)
    dataset = seed.dataset()
    dataset.SamplesPerPixel = samples
    dataset.PhotometricInterpretation = photometric
    if samples > 1:
        dataset.PlanarConfiguration = rng.choice([0, 1])
    return f"{samples} samples, {photometric}", _to_bytes(dataset)


def broken_fragments(rng: random.Random, seed: Seed) -> tuple[str, bytes]:
    """Encapsulated frames re-itemised: one lost, one split in two, one doubled, one empty."""
    dataset = seed.dataset()
    if not dataset.file_meta.TransferSyntaxUID.is_encapsulated:
        return flip_pixel_bytes(rng, seed)
    frames = list(
        generate_frames(dataset.PixelData, number_of_frames=dataset.get("NumberOfFrames", 1))
    )
    index = rng.randrange(len(frames))
    how = rng.choice(["lost", "split", "doubled", "empty", "with offsets"])
    fragments = [[frame] for frame in frames]
    if how == "lost":
        del fragments[index]
    elif how == "split":
        cut = rng.randrange(1, len(frames[index]))
        fragments[index] = [frames[index][:cut], frames[index][cut:]]
    elif how == "doubled":
        fragments.insert(index, [frames[index]])
    elif how == "empty":
        fragments[index] = [b""]
    offsets = b""
    if how == "with offsets":  # a Basic Offset Table that points one frame off
        positions, position = [], 0
        for frame in frames:
            positions.append(position + rng.choice([0, 0, 8, -8]))
            position += len(frame) + len(frame) % 2 + 8
        offsets = b"".join(max(p, 0).to_bytes(4, "little") for p in positions)
    items = [itemize_fragment(offsets)]
    items += [
        itemize_fragment(part + b"\0" * (len(part) % 2)) for frame in fragments for part in frame
    ]
    dataset.PixelData = b"".join(items)
    dataset["PixelData"].is_undefined_length = True
    return f"frame {index + 1} {how}", _to_bytes(dataset)


def empty_file(rng: random.Random, seed: Seed) -> tuple[str, bytes]:
    data = rng.choice([b"", b"DICM", b"\0" * 128 + b"DICM", seed.data[:132], seed.data[:200]])
    return f"{len(data)} bytes", data


def _without_meta_check(dataset: Dataset) -> bytes:
    buffer = BytesIO()
    with config.disable_value_validation():
        dataset.save_as(buffer, implicit_vr=False, little_endian=True)
    return buffer.getvalue()


DAMAGES: list[Damage] = [
    flip_header_bytes, flip_pixel_bytes, truncate, delete_tag, absurd_value, bad_frame_timing,
    broken_lut, wrong_syntax, photometric_lie, broken_fragments, empty_file,
]  # fmt: skip


def mutations(seeds: list[Seed], count: int, seed: int = 21) -> Iterator[Mutation]:
    """`count` mutated files, cycling through the damage kinds, reproducible from `seed`."""
    rng = random.Random(seed)
    for number in range(count):
        source = rng.choice(seeds)
        damage = DAMAGES[number % len(DAMAGES)]
        what, data = damage(rng, source)
        yield Mutation(f"{number:05d} {source.name} {damage.__name__}: {what}", data)
