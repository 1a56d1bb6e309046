"""ARCADE import: images, SYNTAX-segment and stenosis polygons, masks.

ARCADE (Popov et al., Sci Data 2024; MICCAI 2023 challenge) ships two COCO tasks, `syntax`
(categories 1..25 = SYNTAX segments) and `stenosis` (category 26), each split into train/val/test.
Three folder layouts are in circulation and all are read here, so a model trained on the project's
JPEG copy can be checked against the official PNG release without renaming anything:

- release (Zenodo 10390295, `arcade.zip`), also the project's shared copy:
  `<root>/<task>/<split>/images/*.png|jpg` and `<root>/<task>/<split>/annotations/<split>.json`
- the same under an `arcade/` folder (`../shared/data`, or the folder the zip was unpacked into)
- challenge phase 1 (Zenodo 7981245): `<root>/dataset_phase_1/segmentation_dataset/seg_<split>/`
  and `<root>/dataset_phase_1/stenosis_dataset/sten_<split>/` (train and val only), each with
  `images/` and `annotations/seg_<split>.json` / `sten_<split>.json`

The JSON's `file_name` and the file on disk may disagree on the extension (the shared copy stores
JPEGs, the official JSON says .png, or the reverse), so images are matched by file stem when the
exact name is absent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from angioscribe.anatomy import (
    ARCADE_STENOSIS_ID,
    Laterality,
    laterality_of_segments,
    segment_by_arcade_id,
)
from angioscribe.errors import InputError
from angioscribe.regions import CENTRE_CLASS, distance_from_one_end

Task = Literal["syntax", "stenosis"]
TASKS: tuple[Task, ...] = ("syntax", "stenosis")
SPLITS: tuple[str, ...] = ("train", "val", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

# Challenge-phase folder names; the final-phase test folders were named inconsistently between
# copies, and the test split is held out here anyway, so only train/val are mapped.
_CHALLENGE_SPLIT_DIRS: dict[tuple[str, str], str] = {
    ("syntax", "train"): "dataset_phase_1/segmentation_dataset/seg_train",
    ("syntax", "val"): "dataset_phase_1/segmentation_dataset/seg_val",
    ("stenosis", "train"): "dataset_phase_1/stenosis_dataset/sten_train",
    ("stenosis", "val"): "dataset_phase_1/stenosis_dataset/sten_val",
}


@dataclass
class ArcadeAnnotation:
    """One COCO annotation: a SYNTAX segment (category 1..25) or a stenosis (26).

    `polygon` is the annotation's first polygon, (N, 2) float pixel coordinates (x, y); the
    official ARCADE metric reads only that one. COCO allows more polygons per annotation; they go
    to `extra_polygons` so masks still cover them.
    """

    category_id: int
    segment: str
    polygon: np.ndarray
    extra_polygons: tuple[np.ndarray, ...] = ()

    @property
    def is_stenosis(self) -> bool:
        return self.category_id == ARCADE_STENOSIS_ID

    @property
    def polygons(self) -> tuple[np.ndarray, ...]:
        return (self.polygon, *self.extra_polygons)


@dataclass
class ArcadeImage:
    """One ARCADE image with its annotations in file order (the order masks are drawn in)."""

    image_id: int
    file_name: str
    path: Path
    width: int
    height: int
    annotations: list[ArcadeAnnotation] = field(default_factory=list)

    @property
    def segments(self) -> set[str]:
        """SYNTAX numbers ("6", "9a") annotated in this image; stenoses are not segments."""
        return {a.segment for a in self.annotations if not a.is_stenosis}

    @property
    def laterality(self) -> Laterality | None:
        """LCA/RCA judged from the annotated segments; None for stenosis-task images."""
        return laterality_of_segments(self.segments)

    @property
    def stenosis_polygons(self) -> list[np.ndarray]:
        return [polygon for a in self.annotations if a.is_stenosis for polygon in a.polygons]

    def load(self) -> np.ndarray:
        """The image as (H, W) uint8 grey values (ARCADE PNGs and the JPEG copy are both 8-bit)."""
        try:
            with Image.open(self.path) as image:
                return np.array(image.convert("L"))
        except OSError as error:
            raise InputError(self.path, f"cannot read image: {error}") from error

    def mask(self, kind: Task = "syntax", lesion_gap: int = 0,
             numbered: bool = False, centres: int = 0) -> np.ndarray:
        """Rasterised annotations, (H, W) uint8.

        `syntax`: a label map, 0 background, otherwise the ARCADE category id (1..25); where
        polygons overlap the later one in the file wins. `stenosis`: 1 inside any stenosis polygon.
        PIL fills every pixel the outline touches, so a mask is about one boundary pixel larger
        than the polygon's exact area (some 8% on ARCADE's thin segments); the official metric
        works on polygons, not on these masks, so it is unaffected.

        `lesion_gap` (stenosis only) leaves background wherever two lesions come within that many
        pixels of each other. Annotators often split one diseased stretch into adjacent
        polygons, and the metric scores each lesion as its own polygon: a network trained on the
        plain union paints them as one blob, one trained with the gap learns to cut it.

        `numbered` (stenosis only) gives each lesion its own value, 1..K in file order, for a
        loss scored per lesion as the metric scores it.

        `centres` (stenosis only) marks each lesion's middle with `CENTRE_CLASS` (2): the
        lesion's pixels within that many px of the midpoint of its course (`lesion_centre`). A
        network that learns them tells where one lesion ends and the next begins inside one
        painted blob.
        """
        if kind not in TASKS:
            raise ValueError(f"mask kind must be one of {TASKS}, got {kind!r}")
        if (lesion_gap or numbered or centres) and kind != "stenosis":
            raise ValueError("lesion_gap, numbered and centres apply to stenosis masks only")
        if numbered and centres:
            raise ValueError("numbered and centres masks cannot be combined")
        chosen = [annotation for annotation in self.annotations
                  if annotation.is_stenosis == (kind == "stenosis")]
        mask = self._rasterise(chosen, kind, numbered)
        if lesion_gap and len(chosen) > 1:
            reach = np.ones((2 * lesion_gap + 1,) * 2, bool)
            near = sum(ndimage.binary_dilation(self._rasterise([lesion], kind) > 0, reach)
                       .astype(np.uint8) for lesion in chosen)
            mask[near >= 2] = 0
        for lesion in chosen if centres else ():
            mark_centre(mask, self._rasterise([lesion], kind) > 0, centres)
        return mask

    def _rasterise(self, annotations: list[ArcadeAnnotation], kind: Task,
                   numbered: bool = False) -> np.ndarray:
        """The annotations drawn in order onto one canvas (later ones over earlier ones)."""
        canvas = Image.new("L", (self.width, self.height), 0)
        draw = ImageDraw.Draw(canvas)
        for number, annotation in enumerate(annotations, 1):
            if kind == "syntax":
                value = annotation.category_id
            else:
                value = number if numbered else 1
            for polygon in annotation.polygons:
                draw.polygon([tuple(point) for point in polygon.tolist()], fill=value)
        return np.array(canvas)


@dataclass
class ArcadeSplit:
    """One task/split as read: images in JSON order, category names by id, and the raw COCO."""

    task: Task
    split: str
    images: list[ArcadeImage]
    categories: dict[int, str]
    coco: dict[str, Any]
    annotations_path: Path

    @property
    def n_annotations(self) -> int:
        return sum(len(image.annotations) for image in self.images)


def find_arcade_root(path: str | Path) -> Path:
    """The ARCADE dataset root given it or a folder holding it as `arcade/` (../shared/data)."""
    path = Path(path)
    for candidate in (path, path / "arcade"):
        if arcade_splits(candidate):
            return candidate
    raise InputError(
        path,
        "no ARCADE dataset here: expected <task>/<split>/images (release layout) or "
        "dataset_phase_1/ (challenge layout), directly or under arcade/",
    )


def arcade_splits(root: str | Path) -> list[tuple[Task, str]]:
    """(task, split) pairs present under `root`, in task then train/val/test order."""
    return [
        (task, split)
        for task in TASKS
        for split in SPLITS
        if _split_dir(Path(root), task, split) is not None
    ]


def load_arcade(root: str | Path, task: Task, split: str) -> ArcadeSplit:
    """Read one task/split; every JSON image must have its file, every annotation its image."""
    if task not in TASKS:
        raise InputError(root, f"unknown ARCADE task {task!r}; expected one of {TASKS}")
    root = find_arcade_root(root)
    split_dir = _split_dir(root, task, split)
    if split_dir is None:
        present = ", ".join(f"{t}/{s}" for t, s in arcade_splits(root))
        raise InputError(root, f"no ARCADE {task}/{split} here; present: {present}")
    annotations_path = _annotation_file(split_dir, split)
    coco = read_coco(annotations_path)
    categories = {int(c["id"]): str(c["name"]) for c in coco.get("categories", [])}
    images = _images(coco, split_dir / "images", annotations_path)
    return ArcadeSplit(task, split, images, categories, coco, annotations_path)


def load_coco_images(images_dir: str | Path, annotations_path: str | Path) -> list[ArcadeImage]:
    """Frames of any folder with their labels from any COCO file in ARCADE's categories, e.g.
    pseudo-labels that `angioscribe segment` wrote for unlabelled frames."""
    images_dir, annotations_path = Path(images_dir), Path(annotations_path)
    if not images_dir.is_dir():
        raise InputError(images_dir, "no such image folder")
    return _images(read_coco(annotations_path), images_dir, annotations_path)


def _split_dir(root: Path, task: str, split: str) -> Path | None:
    candidates = [root / task / split]
    if (task, split) in _CHALLENGE_SPLIT_DIRS:
        candidates.append(root / _CHALLENGE_SPLIT_DIRS[task, split])
    return next((c for c in candidates if (c / "images").is_dir()), None)


def _annotation_file(split_dir: Path, split: str) -> Path:
    """`<split>.json` (release) or the single JSON there (`seg_train.json` in the challenge)."""
    folder = split_dir / "annotations"
    files = sorted(folder.glob("*.json"))
    if len(files) == 1:
        return files[0]
    if folder / f"{split}.json" in files:
        return folder / f"{split}.json"
    found = ", ".join(f.name for f in files) or "none"
    raise InputError(folder, f"expected {split}.json or a single COCO JSON file, found: {found}")


def read_coco(path: str | Path) -> dict[str, Any]:
    """A COCO file (ARCADE annotations or predictions) as a dict with an `images` list.

    The list is required because ARCADE's images, and the official metric's matching, go by
    `file_name`; a bare list of results has none.
    """
    try:
        coco = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(path, f"cannot read COCO JSON: {error}") from error
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
        raise InputError(path, "not a COCO file: no 'images' list with file names")
    return coco


def _images(coco: dict[str, Any], images_dir: Path, source: Path) -> list[ArcadeImage]:
    files = _image_files_by_stem(images_dir)
    images: dict[int, ArcadeImage] = {}
    missing: list[str] = []
    for raw in coco["images"]:
        file_name = str(raw["file_name"])
        path = _image_path(images_dir, file_name, files)
        if path is None:
            missing.append(file_name)
            continue
        image_id = int(raw["id"])
        images[image_id] = ArcadeImage(
            image_id, file_name, path, int(raw["width"]), int(raw["height"])
        )
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise InputError(
            images_dir,
            f"{len(missing)} images listed in {source.name} not found "
            f"(matched by name, then by stem): {shown}",
        )
    for raw in coco.get("annotations", []):
        image = images.get(int(raw["image_id"]))
        if image is None:
            raise InputError(
                source, f"annotation {raw.get('id')} refers to unknown image id {raw['image_id']}"
            )
        image.annotations.append(_annotation(raw, source))
    return list(images.values())


def _image_files_by_stem(images_dir: Path) -> dict[str, list[Path]]:
    files: dict[str, list[Path]] = {}
    for path in sorted(images_dir.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            files.setdefault(path.stem, []).append(path)
    return files


def _image_path(images_dir: Path, file_name: str, files: dict[str, list[Path]]) -> Path | None:
    exact = images_dir / file_name
    if exact.is_file():
        return exact
    by_stem = files.get(Path(file_name).stem, [])
    return by_stem[0] if len(by_stem) == 1 else None


def _annotation(raw: dict[str, Any], source: Path) -> ArcadeAnnotation:
    category_id = int(raw["category_id"])
    where = f"annotation {raw.get('id')} (image {raw.get('image_id')})"
    if category_id == ARCADE_STENOSIS_ID:
        segment = "stenosis"
    else:
        try:
            segment = segment_by_arcade_id(category_id).number
        except KeyError as error:
            raise InputError(source, f"{where}: {error.args[0]}") from None
    polygons = coco_polygons(raw.get("segmentation"), source, where)
    return ArcadeAnnotation(category_id, segment, polygons[0], tuple(polygons[1:]))


def coco_polygons(segmentation: Any, source: str | Path, where: str) -> list[np.ndarray]:
    """COCO polygon segmentation ([[x1, y1, x2, y2, ...], ...]) as (N, 2) float arrays.

    ARCADE annotations are polygons only; run-length masks and degenerate polygons (fewer than 3
    points, odd coordinate counts) are refused by name rather than drawn as nothing.
    """
    if not isinstance(segmentation, list) or not segmentation:
        raise InputError(
            source,
            f"{where}: segmentation must be a non-empty list of polygons "
            f"(run-length masks are not supported)",
        )
    polygons = []
    for flat in segmentation:
        if not isinstance(flat, list) or len(flat) % 2 or len(flat) < 6:
            raise InputError(
                source, f"{where}: each polygon must be a flat list of at least 3 x, y pairs"
            )
        polygons.append(np.asarray(flat, dtype=np.float64).reshape(-1, 2))
    return polygons


def lesion_centre(lesion: np.ndarray) -> tuple[int, int]:
    """(row, column) of the middle of a lesion mask's course: half way along its longest path
    (`distance_from_one_end`), the pixel deepest inside the mask among those there. A curved
    lesion's centroid can lie off the vessel; this point lies on it."""
    box = ndimage.find_objects(lesion.astype(np.uint8))[0]
    # A margin of one pixel: the depth inside the lesion is measured to its edge, not the box's.
    box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
    ys, xs = np.nonzero(lesion[box])
    along = distance_from_one_end(ys, xs, lesion[box].shape)
    middle = np.abs(along - along.max() / 2) <= 1.5
    depth = ndimage.distance_transform_edt(lesion[box])[ys, xs]
    best = int(np.argmax(np.where(middle, depth, -1.0)))
    return int(ys[best]) + box[0].start, int(xs[best]) + box[1].start


def mark_centre(mask: np.ndarray, lesion: np.ndarray, radius: int) -> None:
    """Set `CENTRE_CLASS` on the lesion's pixels within `radius` px of its centre, in place."""
    if not lesion.any():
        return
    row, column = lesion_centre(lesion)
    yy, xx = np.ogrid[: mask.shape[0], : mask.shape[1]]
    mask[lesion & ((yy - row) ** 2 + (xx - column) ** 2 <= radius**2)] = CENTRE_CLASS
