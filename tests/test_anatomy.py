"""Coronary vocabulary: checked against ARCADE's own files, the README rule and the papers."""

import json
import math
import re
from pathlib import Path

import pytest

from angioscribe import anatomy
from angioscribe.anatomy import (
    ARCADE_STENOSIS_ID,
    DEEPCORO_LATERALITY,
    DEEPCORO_SEGMENTS,
    SEGMENTS,
    VIEWS,
    Segment,
    arcade_categories,
    deepcoro_to_syntax,
    label_en,
    label_ja,
    laterality_of_segments,
    segment,
    segment_by_alias,
    segment_by_arcade_id,
    vessel_territory,
    view_from_angles,
)

REPO = Path(__file__).resolve().parents[1]
ARCADE = REPO.parent / "shared" / "data" / "arcade"

# data/README.md: "Category names (id: name)" as published with the dataset.
README_CATEGORIES = (
    '1:"1" 2:"2" 3:"3" 4:"4" 5:"5" 6:"6" 7:"7" 8:"8" 9:"9" 10:"9a" 11:"10" 12:"10a" 13:"11" '
    '14:"12" 15:"12a" 16:"13" 17:"14" 18:"14a" 19:"15" 20:"16" 21:"16a" 22:"16b" 23:"16c" '
    '24:"12b" 25:"14b" 26:"stenosis"'
)


def readme_categories() -> dict[int, str]:
    return {int(i): name for i, name in re.findall(r'(\d+):"([^"]+)"', README_CATEGORIES)}


def test_all_25_arcade_ids_round_trip():
    expected = readme_categories()
    for cat_id in range(1, 26):
        seg = segment_by_arcade_id(cat_id)
        assert seg.number == expected[cat_id]
        assert segment(seg.number).arcade_id == cat_id
    assert len(SEGMENTS) == 25
    assert expected[ARCADE_STENOSIS_ID] == "stenosis"


@pytest.mark.parametrize("annotations", sorted(ARCADE.glob("*/*/annotations/*.json")), ids=str)
def test_arcade_categories_equal_the_dataset_files(annotations: Path):
    categories = json.loads(annotations.read_text())["categories"]
    assert arcade_categories() == categories


def test_stenosis_id_is_not_a_segment():
    with pytest.raises(KeyError, match="stenosis"):
        segment_by_arcade_id(ARCADE_STENOSIS_ID)


def test_laterality_follows_the_readme_rule():
    # "Segments 1-4 and 16-16c are right coronary (RCA), 5-15 with their letters are left (LCA)."
    for number, seg in SEGMENTS.items():
        base = int(re.match(r"\d+", number).group())
        assert seg.laterality == ("RCA" if base <= 4 or base == 16 else "LCA"), number


def test_segments_are_keyed_by_number_in_syntax_order():
    assert list(SEGMENTS) == [
        "1", "2", "3", "4", "16", "16a", "16b", "16c", "5", "6", "7", "8", "9", "9a",
        "10", "10a", "11", "12", "12a", "12b", "13", "14", "14a", "14b", "15",
    ]  # fmt: skip
    assert all(seg.number == key for key, seg in SEGMENTS.items())


@pytest.mark.parametrize("written", ["6", "#6", "# 6", "seg 6", "Seg. 6", "segment #6", "＃６"])
def test_segment_accepts_the_ways_reports_write_a_number(written: str):
    assert segment(written).number == "6"


def test_segment_letters_are_case_insensitive():
    assert segment("#9A").number == "9a"
    assert segment("16C").number == "16c"


@pytest.mark.parametrize("bad", ["17", "9b", "", "LAD"])
def test_unknown_segment_raises_a_clear_key_error(bad: str):
    with pytest.raises(KeyError, match="unknown SYNTAX segment"):
        segment(bad)


def test_deepcoro_has_18_segments_from_the_paper():
    assert len(DEEPCORO_SEGMENTS) == len(set(DEEPCORO_SEGMENTS)) == 18
    assert set(deepcoro_to_syntax) == set(DEEPCORO_SEGMENTS)
    assert DEEPCORO_SEGMENTS[0] == "Left Main" and DEEPCORO_SEGMENTS[-1] == "Posterolateral"


def test_every_deepcoro_segment_maps_to_syntax_segments_of_its_side():
    # Extended Table 5 lists these under "Right Coronary Artery", the rest under "Left".
    right = {"Proximal RCA", "Mid RCA", "Distal RCA", "PDA", "Posterolateral"}
    for name, numbers in deepcoro_to_syntax.items():
        assert numbers, name
        side = "RCA" if name in right else "LCA"
        assert DEEPCORO_LATERALITY[name] == side
        assert {SEGMENTS[n].laterality for n in numbers} == {side}, name
        assert all(SEGMENTS[n].deepcoro == name for n in numbers)


def test_deepcoro_mapping_partitions_the_syntax_segments():
    mapped = [n for numbers in deepcoro_to_syntax.values() for n in numbers]
    assert sorted(mapped) == sorted(SEGMENTS)


def test_deepcoro_numbers_from_extended_table_5():
    # The paper's definitions give the SYNTAX number in brackets, e.g. "Mid-Distal LCX (13)".
    assert deepcoro_to_syntax["Mid LCX"] == ("13",)
    assert deepcoro_to_syntax["Distal LCX"] == ("15",)
    assert deepcoro_to_syntax["RI"] == ("12",)
    assert deepcoro_to_syntax["OM1"] == ("12a",)
    assert deepcoro_to_syntax["OM2"] == ("12b",)


@pytest.mark.parametrize(
    ("primary", "secondary", "view"),
    [
        (-30, 25, "RAO Cranial"),
        (0, 30, "AP Cranial"),
        (40, 30, "LAO Cranial"),
        (-30, 0, "RAO Straight"),
        (5, -5, "AP"),
        (-27.7, -18.1, "RAO Caudal"),  # the real clinical cine in shared/data/cine
        (0, -30, "AP Caudal"),
        (45, -25, "LAO Caudal"),
        (30, 10, "LAO Straight"),
        (90, 0, "LAO Lateral"),
        (-90, 5, "RAO Lateral"),
        (60, 0, "Other"),  # between the oblique and lateral bands
        (90, 30, "Other"),  # angulated lateral is not defined
        (0, 50, "Other"),  # steeper than 45 degrees cranial
        (-120, 0, "Other"),
    ],
)
def test_view_for_representative_angles(primary, secondary, view):
    assert view_from_angles(primary, secondary) == view


@pytest.mark.parametrize(
    ("primary", "secondary", "view"),
    [
        (15, 0, "AP"),  # shared endpoints go to the central band
        (-15, 0, "AP"),
        (15.01, 0, "LAO Straight"),
        (-15.01, 0, "RAO Straight"),
        (0, 15, "AP"),
        (0, -15.01, "AP Caudal"),
        (45, 45, "LAO Cranial"),  # outer limits are inclusive
        (-45, -45, "RAO Caudal"),
        (45.01, 0, "Other"),
        (0, -45.01, "Other"),
        (70, 15, "LAO Lateral"),
        (-110, -15, "RAO Lateral"),
        (69.99, 0, "Other"),
        (110.01, 0, "Other"),
    ],
)
def test_view_boundaries(primary, secondary, view):
    assert view_from_angles(primary, secondary) == view


@pytest.mark.parametrize(
    ("primary", "secondary"), [(None, 20), (-30, None), (None, None), (math.nan, 0), (0, math.nan)]
)
def test_missing_angle_gives_no_view(primary, secondary):
    assert view_from_angles(primary, secondary) is None


def test_every_view_class_is_reachable_and_nothing_else():
    seen = {
        view_from_angles(p, s) for p in range(-130, 131, 5) for s in range(-60, 61, 5)
    }
    assert seen == set(VIEWS)
    assert len(VIEWS) == 12


def test_labels():
    assert label_en("6") == "#6 proximal LAD"
    assert label_ja("#6") == "LAD近位部 #6"
    assert label_en("seg 12a") == "#12a first obtuse marginal"
    assert label_ja("11") == "LCX近位部 #11"


def test_no_alias_names_two_segments():
    owners: dict[str, set[str]] = {}
    for seg in SEGMENTS.values():
        for term in (seg.name_en, seg.name_ja, *seg.aliases_en, *seg.aliases_ja):
            owners.setdefault(anatomy._normalise_term(term), set()).add(seg.number)
    clashes = {term: numbers for term, numbers in owners.items() if len(numbers) > 1}
    assert clashes == {}


def test_every_name_and_alias_resolves_to_its_segment():
    for seg in SEGMENTS.values():
        for term in (seg.name_en, seg.name_ja, *seg.aliases_en, *seg.aliases_ja):
            assert segment_by_alias(term) == seg, term


@pytest.mark.parametrize(
    ("written", "number"),
    [
        ("Prox. LAD", "6"),
        ("ＬＭＴ", "5"),
        ("left  main", "5"),
        ("1st Diagonal", "9"),
        ("obtuse marginal", "12a"),
        ("OM2", "12b"),
        ("mid RCA", "2"),
        ("左主幹部", "5"),
        ("前下行枝近位部", "6"),
        ("第１対角枝", "9"),
        ("4PD", "4"),
        ("4AV", "16"),
    ],
)
def test_report_wordings_resolve(written: str, number: str):
    assert segment_by_alias(written).number == number


def test_alias_index_refuses_a_clash():
    a = Segment("6", 6, "LCA", "LAD", "proximal LAD", "LAD近位部", None, ("pLAD",))
    b = Segment("7", 7, "LCA", "LAD", "mid LAD", "LAD中間部", None, ("PLAD",))
    with pytest.raises(ValueError, match="pLAD|PLAD"):
        anatomy._build_alias_index([a, b])


def test_vessel_words_are_not_segment_aliases():
    for word in ("LAD", "RCA", "回旋枝", "右冠動脈", "前下行枝"):
        with pytest.raises(KeyError):
            segment_by_alias(word)
        assert any(word in words for words in anatomy.VESSEL_ALIASES.values())


def test_laterality_of_segments():
    assert laterality_of_segments([]) is None
    assert laterality_of_segments(["5", "6", "#11"]) == "LCA"
    assert laterality_of_segments(["1", "2", "16a"]) == "RCA"
    assert laterality_of_segments(["1", "2", "3", "13"]) == "RCA"  # one co-visualised branch
    assert laterality_of_segments(["1", "6"]) is None  # a tie is not evidence
    # one segment split into several polygons counts once
    assert laterality_of_segments(["1", "1", "1", "6", "7"]) == "LCA"


@pytest.mark.parametrize("annotations", sorted(ARCADE.glob("syntax/*/annotations/*.json")), ids=str)
def test_every_arcade_syntax_image_gets_one_side(annotations: Path):
    """ARCADE images show one artery, so their segments must never leave the side undecided."""
    per_image: dict[int, list[str]] = {}
    for ann in json.loads(annotations.read_text())["annotations"]:
        per_image.setdefault(ann["image_id"], []).append(
            segment_by_arcade_id(ann["category_id"]).number
        )
    sides = {image: laterality_of_segments(numbers) for image, numbers in per_image.items()}
    assert None not in sides.values()
    assert set(sides.values()) == {"LCA", "RCA"}


def test_vessel_territories_for_treatment_rules():
    territories = {n: vessel_territory(n) for n in SEGMENTS}
    assert territories["5"] == "LM"
    assert {territories[n] for n in ("6", "7", "8", "9", "9a", "10", "10a")} == {"LAD"}
    assert {territories[n] for n in ("11", "12", "12a", "12b", "13", "14", "15")} == {"LCX"}
    assert {territories[n] for n, s in SEGMENTS.items() if s.laterality == "RCA"} == {"RCA"}


def test_docs_are_up_to_date():
    doc = REPO / "docs" / "anatomy.md"
    assert doc.read_text(encoding="utf-8") == anatomy.render_markdown(), (
        "regenerate: python -m angioscribe.anatomy > docs/anatomy.md"
    )
