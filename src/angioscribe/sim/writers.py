"""Simulated studies to files: XA DICOM per cine, truth JSON, DeepCORO-style CSV, masks, media.

Layout of one study folder (`write_study`):

    <study_id>/
      dicom/<NN>_<LCA|RCA>.dcm     multi-frame XA, X-Ray Angiographic Image Storage
      masks/<NN>.npz               per-frame segment label maps (codes in truth.json)
      truth.json                   everything known: patient, segments, lesions, views, reports
      deepcoro.csv                 one row per cine, DeepCORO-CLIP's 18 segments x 4 tasks
      reports/{clinical,summary}_{en,ja}.txt
      png/<NN>/<frame>.png, mp4/<NN>.mp4   only when asked for

A dataset (`write_dataset`) is a folder of such studies plus one `deepcoro.csv` for all cines.
"""

from __future__ import annotations

import csv
import json
import zipfile
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, XRayAngiographicImageStorage

from angioscribe import __version__
from angioscribe.anatomy import DEEPCORO_SEGMENTS, deepcoro_to_syntax
from angioscribe.report.guideline import is_significant
from angioscribe.sim.lesions import CALCIFICATION_GRADES
from angioscribe.sim.study import SimulatedStudy, SimulatedView, simulate_study

# Column stems of the DeepCORO-CLIP code base (their `*_stenosis` etc. columns).
DEEPCORO_COLUMN_STEMS: dict[str, str] = {
    "Left Main": "left_main", "Proximal LAD": "prox_lad", "Mid LAD": "mid_lad",
    "Distal LAD": "dist_lad", "D1": "D1", "D2": "D2", "RI": "bx", "Proximal LCX": "prox_lcx",
    "Mid LCX": "mid_lcx", "Distal LCX": "dist_lcx", "LVP": "lvp", "OM1": "om1", "OM2": "om2",
    "Proximal RCA": "prox_rca", "Mid RCA": "mid_rca", "Distal RCA": "dist_rca", "PDA": "pda",
    "Posterolateral": "posterolateral",
}
MAIN_STRUCTURE = {"LCA": "Left Coronary", "RCA": "Right Coronary"}
MANUFACTURER = "angioscribe-sim"


def series_name(view: SimulatedView) -> str:
    return f"{view.series_number:02d}_{view.laterality}"


def xa_dataset(study: SimulatedStudy, view: SimulatedView) -> Dataset:
    """A complete multi-frame XA image (patient, study, series, equipment, XA image and
    acquisition, cine, multi-frame and SOP common modules), pixels uncompressed."""
    patient, arm, timeline = study.patient, view.arm, view.timeline
    sop_uid = view.sop_instance_uid(study)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = XRayAngiographicImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationVersionName = f"ANGIOSCRIBE_{__version__}"[:16]
    ds = Dataset()
    ds.file_meta = meta
    date = patient.study_date.strftime("%Y%m%d")
    time = f"{9 + view.series_number // 6:02d}{(view.series_number * 7) % 60:02d}00"
    # SOP common, patient, general study
    ds.SOPClassUID, ds.SOPInstanceUID = XRayAngiographicImageStorage, sop_uid
    ds.PatientName = f"SIM^{patient.patient_id}"
    ds.PatientID = patient.patient_id  # a follow-up's study id adds its visit; the patient's not
    ds.PatientBirthDate = patient.birth_date.strftime("%Y%m%d")
    ds.PatientSex = patient.sex
    ds.PatientAge = f"{patient.age:03d}Y"
    ds.PatientSize = round(patient.height_cm / 100, 2)
    ds.PatientWeight = patient.weight_kg
    ds.StudyInstanceUID = study.study_instance_uid
    ds.StudyDate, ds.StudyTime = date, "090000"
    ds.ReferringPhysicianName = ""
    ds.StudyID = study.study_id[-16:]
    ds.AccessionNumber = ""
    ds.StudyDescription = "Coronary angiography (simulated)"
    # general series, equipment, general image, acquisition
    ds.Modality = "XA"
    ds.SeriesInstanceUID = view.series_instance_uid(study)
    ds.SeriesNumber = view.series_number
    ds.SeriesDescription = f"{view.laterality} {view.view or 'Other'}"
    ds.BodyPartExamined = "HEART"
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = "angioscribe.sim phantom"
    ds.SoftwareVersions = __version__
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.ContentDate, ds.ContentTime = date, time
    ds.AcquisitionDate, ds.AcquisitionTime = date, time
    ds.ImageType = ["ORIGINAL", "PRIMARY", "SINGLE PLANE"]
    ds.ContrastBolusAgent = "Iopamidol 370"
    # XA acquisition
    ds.PositionerMotion = "STATIC"
    ds.PositionerPrimaryAngle = arm.primary_deg
    ds.PositionerSecondaryAngle = arm.secondary_deg
    ds.DistanceSourceToDetector = arm.sid_mm
    ds.DistanceSourceToPatient = arm.sod_mm
    ds.EstimatedRadiographicMagnificationFactor = round(arm.magnification, 4)
    ds.ImagerPixelSpacing = [arm.pixel_spacing_mm, arm.pixel_spacing_mm]
    ds.RadiationSetting = "GR"
    ds.KVP = 80
    ds.XRayTubeCurrent = 400
    ds.ExposureTime = round(1000 / timeline.fps)
    ds.AveragePulseWidth = 5
    ds.FieldOfViewShape = "RECTANGLE"
    ds.IntensifierSize = round(arm.pixels * arm.pixel_spacing_mm, 1)
    # cine and multi-frame
    ds.NumberOfFrames = timeline.n_frames
    ds.FrameIncrementPointer = (0x0018, 0x1063)  # Frame Time
    ds.FrameTime = round(1000 / timeline.fps, 4)
    ds.CineRate = round(timeline.fps)
    ds.RecommendedDisplayFrameRate = round(timeline.fps)
    ds.RepresentativeFrameNumber = view.best_frame + 1
    ds.StartTrim, ds.StopTrim = 1, timeline.n_frames
    # XA image pixels: 8-bit, display-ready (log-like), vessels dark
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelIntensityRelationship = "LOG"
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    ds.Rows, ds.Columns = view.cine.frames.shape[1:]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "00"
    ds.PixelData = view.cine.frames.tobytes()
    return ds


def write_dicom(study: SimulatedStudy, view: SimulatedView, path: Path, rle: bool = False) -> Path:
    dataset = xa_dataset(study, view)
    if rle:
        dataset.compress(RLELossless, encoding_plugin="pylibjpeg")
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=True)
    return path


def deepcoro_labels(study: SimulatedStudy) -> dict[str, Any]:
    """Study-level labels in DeepCORO-CLIP's columns: for each of their 18 segments (which
    group SYNTAX segments: e.g. D1 is #9 and #9a) the worst stenosis, significance, the
    highest calcification grade, and any CTO or thrombus. A segment this anatomy lacks (a PDA
    from a non-dominant side) is left empty, not healthy."""
    findings = {f["segment"]: f for f in study.findings()}
    labels: dict[str, Any] = {}
    for name in DEEPCORO_SEGMENTS:
        stem = DEEPCORO_COLUMN_STEMS[name]
        present = [findings[n] for n in deepcoro_to_syntax[name] if n in findings]
        if not present:
            labels.update({f"{stem}_stenosis": "", f"{stem}_stenosis_binary": "",
                           f"{stem}_calcif_binary": "", f"{stem}_cto": "",
                           f"{stem}_thrombus": ""})
            continue
        worst = max(f["stenosis_percent"] for f in present)
        labels[f"{stem}_stenosis"] = worst
        labels[f"{stem}_stenosis_binary"] = int(is_significant(present[0]["segment"], worst))
        labels[f"{stem}_calcif_binary"] = max(
            (f["calcification"] for f in present), key=CALCIFICATION_GRADES.index)
        labels[f"{stem}_cto"] = any(f["cto"] for f in present)
        labels[f"{stem}_thrombus"] = any(f["thrombus"] for f in present)
    return labels


def deepcoro_rows(study: SimulatedStudy, dicom_paths: list[Path], root: Path
                  ) -> list[dict[str, Any]]:
    """One row per cine, as DeepCORO-CLIP's loader expects (labels repeated per video)."""
    labels = deepcoro_labels(study)
    return [{
        "ss_patient_id": study.patient.patient_id,
        "ss_event_cath_id": study.study_id,
        "StudyInstanceUID": study.study_instance_uid,
        **labels,
        "main_structure": MAIN_STRUCTURE[view.laterality],
        "dominance": f"{study.anatomy.dominance}_dominant",
        "view": view.view or "Other",
        "primary_angle": view.arm.primary_deg,
        "secondary_angle": view.arm.secondary_deg,
        "fps": view.timeline.fps,
        "frames": view.timeline.n_frames,
        "best_frame": view.best_frame,
        "DICOMPath": path.relative_to(root).as_posix(),
    } for view, path in zip(study.views, dicom_paths, strict=True)]


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_masks(view: SimulatedView, path: Path) -> Path:
    """The (T, H, W) label maps as an .npz (`np.load(path)["masks"]`), deflated at level 1:
    mostly zeros, they shrink ~100x at a fraction of the default level's time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        entry = zipfile.ZipInfo("masks.npy", date_time=(1980, 1, 1, 0, 0, 0))  # reproducible
        with archive.open(entry, "w", force_zip64=True) as member:
            np.lib.format.write_array(member, view.cine.masks)
    return path


def write_png_frames(view: SimulatedView, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(view.cine.frames):
        Image.fromarray(frame).save(folder / f"{index:03d}.png")
    return folder


def write_mp4(view: SimulatedView, path: Path) -> Path:
    """An H.264 preview at the cine's frame rate (lossy: for viewing, not for training)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        rate = Fraction(view.timeline.fps).limit_denominator(100)  # 12.5 fps stays 25/2
        stream = container.add_stream("libx264", rate=rate)
        stream.height, stream.width = view.cine.frames.shape[1:]
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "18"}
        for frame in view.cine.frames:
            image = av.VideoFrame.from_ndarray(np.repeat(frame[..., None], 3, axis=2), "rgb24")
            container.mux(stream.encode(image))
        container.mux(stream.encode())
    return path


def write_reports(study: SimulatedStudy, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    reports = study.reports()
    for kind in ("clinical", "summary"):
        for language in ("en", "ja"):
            (folder / f"{kind}_{language}.txt").write_text(reports[kind][language] + "\n",
                                                           encoding="utf-8")


def write_study(study: SimulatedStudy, out: Path, *, rle: bool = False, png: bool = False,
                mp4: bool = False, root: Path | None = None) -> list[dict[str, Any]]:
    """Write one study under `out/<study_id>/`; returns its DeepCORO rows (paths from `root`)."""
    folder = Path(out) / study.study_id
    dicom_paths = []
    for view in study.views:
        name = series_name(view)
        dicom_paths.append(write_dicom(study, view, folder / "dicom" / f"{name}.dcm", rle))
        write_masks(view, folder / "masks" / f"{name}.npz")
        if png:
            write_png_frames(view, folder / "png" / name)
        if mp4:
            write_mp4(view, folder / "mp4" / f"{name}.mp4")
    write_reports(study, folder / "reports")
    truth = study.truth()
    for record, view in zip(truth["views"], study.views, strict=True):
        name = series_name(view)
        record.update(dicom=f"dicom/{name}.dcm", masks=f"masks/{name}.npz")
    (folder / "truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n",
                                       encoding="utf-8")
    rows = deepcoro_rows(study, dicom_paths, folder)
    write_csv(rows, folder / "deepcoro.csv")
    return deepcoro_rows(study, dicom_paths, Path(root) if root else folder)


def dataset_seeds(seed: int, count: int) -> list[int]:
    """Study seeds for a dataset: independent streams from one seed (each is a valid
    `sim study --seed`, so any study of a dataset can be regenerated on its own)."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(count)]


def write_dataset(out: Path, seeds: Iterable[int], workers: int = 1, **options: Any) -> Path:
    """Simulate and write each study, then one DeepCORO CSV over all cines of the dataset.

    `seeds` may be wrapped in a progress bar by the caller; options go to `write_study`.
    """
    out = Path(out)
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        rows += write_study(simulate_study(seed, workers=workers), out, root=out, **options)
    return write_csv(rows, out / "deepcoro.csv")
