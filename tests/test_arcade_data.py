"""ARCADE import: the shared copy, the official layouts, laterality and masks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from PIL import Image
from scipy import ndimage
from shapely.geometry import Polygon
from typer.testing import CliRunner

from angioscribe.cli import app
from angioscribe.data.arcade import (
    ArcadeAnnotation,
    ArcadeImage,
    arcade_splits,
    find_arcade_root,
    lesion_centre,
    load_arcade,
)
from angioscribe.errors import InputError
from angioscribe.regions import CENTRE_CLASS


@pytest.fixture(scope="module")
def arcade_root(shared_data: Path) -> Path:
    root = shared_data / "arcade"
    if not root.is_dir():
        pytest.skip(f"ARCADE not found at {root}")
    return root


@pytest.mark.parametrize("task", ["syntax", "stenosis"])
@pytest.mark.parametrize(("split", "n_images"), [("train", 1000), ("val", 200)])
def test_import_finds_every_image_and_annotation(
    arcade_root: Path, task: str, split: str, n_images: int
):
    raw = json.loads((arcade_root / task / split / "annotations" / f"{split}.json").read_text())
    imported = load_arcade(arcade_root, task, split)
    assert len(imported.images) == n_images == len(raw["images"])
    assert imported.n_annotations == len(raw["annotations"])
    assert all(image.path.is_file() for image in imported.images)
    assert imported.categories[26] == "stenosis" and imported.categories[10] == "9a"


def test_root_is_found_from_the_dataset_or_the_folder_holding_it(arcade_root: Path):
    assert find_arcade_root(arcade_root) == arcade_root
    assert find_arcade_root(arcade_root.parent) == arcade_root
    assert ("syntax", "val") in arcade_splits(arcade_root)


def test_a_folder_without_arcade_is_refused_by_name(tmp_path: Path):
    with pytest.raises(InputError, match="no ARCADE dataset") as error:
        find_arcade_root(tmp_path)
    assert str(tmp_path) in str(error.value)


# Checked by eye: each image was drawn with its polygons and segment labels on top.
# val 1: short left main splitting into LAD and circumflex -> LCA (segments 5 6 11 13 14 14b)
# val 3: C-shaped right coronary, PDA and posterolateral at the crux -> RCA (1 2 3 4 16)
# val 4: left main into a long LAD with diagonals to the apex -> LCA (5 6 7 8 9 9a 10)
# val 7: C-shaped right coronary in LAO, no branches annotated -> RCA (1 2 3)
# val 12: right coronary from the ostium round to the PDA -> RCA (1 2 3 4)
HAND_CHECKED_LATERALITY = {1: "LCA", 3: "RCA", 4: "LCA", 7: "RCA", 12: "RCA"}


def test_laterality_follows_the_segments_on_hand_checked_images(arcade_root: Path):
    images = {image.image_id: image for image in load_arcade(arcade_root, "syntax", "val").images}
    for image_id, side in HAND_CHECKED_LATERALITY.items():
        assert images[image_id].laterality == side, image_id


def test_stenosis_images_carry_lesions_but_no_segments(arcade_root: Path):
    split = load_arcade(arcade_root, "stenosis", "val")
    assert all(image.segments == set() and image.laterality is None for image in split.images)
    assert sum(len(image.stenosis_polygons) for image in split.images) == split.n_annotations


def test_syntax_mask_covers_the_polygons_and_nothing_else(arcade_root: Path):
    image = load_arcade(arcade_root, "syntax", "val").images[0]
    pixels = image.load()
    mask = image.mask("syntax")
    assert pixels.shape == mask.shape == (image.height, image.width) and pixels.dtype == np.uint8
    union = shapely.union_all([Polygon(a.polygon) for a in image.annotations])
    ys, xs = np.mgrid[0 : image.height, 0 : image.width]
    deep_inside = shapely.contains_xy(union.buffer(-1.5), xs, ys)
    near = shapely.contains_xy(union.buffer(1.5), xs, ys)
    assert np.all(mask[deep_inside] > 0)
    assert np.all(mask[~near] == 0)
    assert set(np.unique(mask)) == {0} | {a.category_id for a in image.annotations}
    last = image.annotations[-1]  # drawn last, so nothing paints over it
    x, y = Polygon(last.polygon).representative_point().coords[0]
    assert mask[round(y), round(x)] == last.category_id


def test_later_polygons_win_and_mask_kinds_keep_to_their_task(tmp_path: Path):
    square = np.array([[2.0, 2.0], [12.0, 2.0], [12.0, 12.0], [2.0, 12.0]])
    image = ArcadeImage(
        1,
        "1.png",
        tmp_path / "1.png",
        20,
        20,
        [
            ArcadeAnnotation(5, "5", square),
            ArcadeAnnotation(6, "6", square + 5),
            ArcadeAnnotation(26, "stenosis", square + [6, 0]),
        ],
    )
    syntax = image.mask("syntax")
    assert syntax[4, 4] == 5 and syntax[9, 9] == 6 and syntax[15, 15] == 6
    assert syntax[4, 17] == 0  # inside the stenosis square only
    stenosis = image.mask("stenosis")
    assert stenosis[4, 17] == 1 and stenosis[4, 4] == 0 and set(np.unique(stenosis)) == {0, 1}
    assert image.segments == {"5", "6"} and image.laterality == "LCA"


def test_lesion_gap_separates_touching_lesions_only(tmp_path: Path):
    left = np.array([[2.0, 4.0], [10.0, 4.0], [10.0, 10.0], [2.0, 10.0]])
    image = ArcadeImage(1, "1.png", tmp_path / "1.png", 30, 25, [
        ArcadeAnnotation(26, "stenosis", left),
        ArcadeAnnotation(26, "stenosis", left + [8, 0]),  # shares the edge x = 10
        ArcadeAnnotation(26, "stenosis", left + [0, 9]),  # 2 background rows below the first
    ])
    plain, gapped = image.mask("stenosis"), image.mask("stenosis", lesion_gap=2)
    count = lambda mask: ndimage.label(mask)[1]  # noqa: E731
    assert count(plain) == 2 and count(gapped) == 3
    assert np.all(gapped <= plain)
    assert gapped[7, 10] == 0 and gapped[7, 4] == 1 and gapped[7, 16] == 1
    lost = (plain > 0) & (gapped == 0)
    assert lost[:, :8].sum() == 0 and lost[:, 13:].sum() == 0  # only the seam goes
    assert lost[11:].sum() == 0  # the lesion 2 px away keeps every pixel
    with pytest.raises(ValueError, match="stenosis masks only"):
        image.mask("syntax", lesion_gap=2)
    numbered = image.mask("stenosis", numbered=True)
    assert numbered[7, 4] == 1 and numbered[7, 16] == 2 and numbered[16, 4] == 3
    assert np.array_equal(numbered > 0, plain > 0)
    with pytest.raises(ValueError, match="stenosis masks only"):
        image.mask("syntax", numbered=True)


def test_lesion_centres_mark_the_middle_of_each_lesion_course(tmp_path: Path):
    """A straight 40 px lesion's centre is its middle. An L-shaped one (arms 60 and 40 px) has
    its centre half way along its course, on the long arm; its centroid lies off the vessel."""
    straight = np.array([[10.0, 10.0], [49.0, 10.0], [49.0, 15.0], [10.0, 15.0]])
    bent = np.array([[10.0, 40.0], [69.0, 40.0], [69.0, 79.0], [64.0, 79.0], [64.0, 45.0],
                     [10.0, 45.0]])
    image = ArcadeImage(1, "1.png", tmp_path / "1.png", 100, 100, [
        ArcadeAnnotation(26, "stenosis", straight), ArcadeAnnotation(26, "stenosis", bent)])
    plain, mask = image.mask("stenosis"), image.mask("stenosis", centres=3)
    assert np.array_equal(mask > 0, plain > 0)  # centres are lesion pixels relabelled
    pieces, count = ndimage.label(mask == CENTRE_CLASS)
    assert count == 2
    for piece, (row, column) in zip(range(1, 3), ((12.5, 29.5), (42.5, 54.0)), strict=True):
        rows, columns = np.nonzero(pieces == piece)
        assert 0 < len(rows) <= 29  # a disc of radius 3 clipped to the lesion
        assert abs(rows.mean() - row) <= 1.5 and abs(columns.mean() - column) <= 2
    bent_mask = image._rasterise([image.annotations[1]], "stenosis") > 0
    centroid = np.round(ndimage.center_of_mass(bent_mask)).astype(int)
    assert not bent_mask[tuple(centroid)] and bent_mask[lesion_centre(bent_mask)]
    with pytest.raises(ValueError, match="stenosis masks only"):
        image.mask("syntax", centres=3)
    with pytest.raises(ValueError, match="cannot be combined"):
        image.mask("stenosis", numbered=True, centres=3)


def _write_split(split_dir: Path, json_name: str, files: dict[str, str], task: str) -> None:
    """A tiny ARCADE split: `files` maps the JSON file_name to the name on disk."""
    (split_dir / "images").mkdir(parents=True)
    (split_dir / "annotations").mkdir()
    coco = {"images": [], "annotations": [], "categories": [{"id": 26, "name": "stenosis"}]}
    for index, (listed, on_disk) in enumerate(files.items(), start=1):
        pixels = np.full((16, 16), 10 * index, np.uint8)
        Image.fromarray(pixels).save(split_dir / "images" / on_disk)
        coco["images"].append({"id": index, "file_name": listed, "width": 16, "height": 16})
        coco["annotations"].append(
            {
                "id": index,
                "image_id": index,
                "category_id": 26 if task == "stenosis" else index,
                "segmentation": [[1, 1, 8, 1, 8, 8, 1, 8]],
            }
        )
    (split_dir / "annotations" / json_name).write_text(json.dumps(coco))


def test_official_release_layout_with_png_files(tmp_path: Path):
    # Zenodo release: arcade/<task>/<split>/..., PNG on disk; names in the JSON in either form.
    _write_split(
        tmp_path / "arcade" / "syntax" / "val",
        "val.json",
        {"1.png": "1.png", "2.jpg": "2.png"},
        "syntax",
    )
    root = find_arcade_root(tmp_path)
    split = load_arcade(root, "syntax", "val")
    assert [image.path.name for image in split.images] == ["1.png", "2.png"]
    assert split.images[1].load()[0, 0] == 20
    assert [image.segments for image in split.images] == [{"1"}, {"2"}]
    assert split.images[0].laterality == "RCA"


def test_challenge_phase_layout(tmp_path: Path):
    _write_split(
        tmp_path / "dataset_phase_1" / "stenosis_dataset" / "sten_val",
        "sten_val.json",
        {"1.png": "1.png", "7.png": "7.png"},
        "stenosis",
    )
    assert arcade_splits(tmp_path) == [("stenosis", "val")]
    split = load_arcade(tmp_path, "stenosis", "val")
    assert len(split.images) == 2 and split.n_annotations == 2
    assert split.images[0].mask("stenosis")[4, 4] == 1


def test_an_image_missing_on_disk_is_named(tmp_path: Path):
    _write_split(tmp_path / "syntax" / "train", "train.json", {"1.png": "1.png"}, "syntax")
    coco_path = tmp_path / "syntax" / "train" / "annotations" / "train.json"
    coco = json.loads(coco_path.read_text())
    coco["images"].append({"id": 9, "file_name": "99.png", "width": 16, "height": 16})
    coco_path.write_text(json.dumps(coco))
    with pytest.raises(InputError, match="99.png"):
        load_arcade(tmp_path, "syntax", "train")


def test_run_length_segmentation_is_refused_by_annotation(tmp_path: Path):
    _write_split(tmp_path / "syntax" / "train", "train.json", {"1.png": "1.png"}, "syntax")
    coco_path = tmp_path / "syntax" / "train" / "annotations" / "train.json"
    coco = json.loads(coco_path.read_text())
    coco["annotations"][0]["segmentation"] = {"counts": "abc", "size": [16, 16]}
    coco_path.write_text(json.dumps(coco))
    with pytest.raises(InputError, match="annotation 1"):
        load_arcade(tmp_path, "syntax", "train")


def test_cli_import_writes_a_catalog_and_summarises_each_split(tmp_path: Path):
    _write_split(
        tmp_path / "arcade" / "syntax" / "train",
        "train.json",
        {"1.png": "1.png", "2.png": "2.png", "3.png": "3.png"},
        "syntax",
    )
    _write_split(
        tmp_path / "arcade" / "stenosis" / "val", "val.json", {"1.png": "1.png"}, "stenosis"
    )
    out = tmp_path / "catalog.parquet"
    result = CliRunner().invoke(
        app, ["data", "import-arcade", str(tmp_path), "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["task"], r["split"], r["images"], r["annotations"]) for r in records] == [
        ("syntax", "train", 3, 3),
        ("stenosis", "val", 1, 1),
    ]
    assert (records[0]["RCA"], records[1]["unknown"]) == (3, 1)
    assert out.is_file()


def test_cli_import_of_a_folder_without_arcade_fails(tmp_path: Path):
    result = CliRunner().invoke(
        app, ["data", "import-arcade", str(tmp_path), "--out", str(tmp_path / "c.parquet")]
    )
    assert result.exit_code == 3
    assert "no ARCADE dataset" in result.output and str(tmp_path) in result.output
    assert not (tmp_path / "c.parquet").exists()


def test_cli_import_reports_a_broken_split_and_catalogs_the_rest(tmp_path: Path):
    _write_split(tmp_path / "syntax" / "train", "train.json", {"1.png": "1.png"}, "syntax")
    _write_split(tmp_path / "syntax" / "val", "val.json", {"1.png": "1.png"}, "syntax")
    broken = tmp_path / "syntax" / "val" / "annotations" / "val.json"
    broken.write_text("{not json")
    out = tmp_path / "catalog.csv"
    result = CliRunner().invoke(
        app, ["data", "import-arcade", str(tmp_path), "--out", str(out), "--json"]
    )
    assert result.exit_code == 1, result.output
    good, bad = (json.loads(line) for line in result.stdout.splitlines())
    assert (good["split"], good["images"]) == ("train", 1) and "error" not in good
    assert (bad["split"], bad["path"]) == ("val", str(broken)) and bad["error"]
    assert len(out.read_text().splitlines()) == 2  # header + the train image
    result = CliRunner().invoke(
        app, ["data", "import-arcade", str(tmp_path), "--out", str(tmp_path / "c.txt")]
    )
    assert result.exit_code == 2 and ".parquet or .csv" in result.output
