"""Report corpora in CAG-VLM's parallel-corpus form: images + clinical text -> target report.

One JSON object per line (docs/drafting.md documents the schema, so a hospital can bring its
own corpus in the same form):

    {"id", "patient_id", "split", "lang", "images": [{"path", "frame", "side", "view"}],
     "clinical_text", "target", "findings", "clues", "derived", "source"}

`findings` are the truth the target is composed from; `clues` (optional) are the findings the
image models report for the same images. A drafter is prompted with the clues when a record
has them, so it learns to weigh the models' evidence (false and missed lesions included)
against the images instead of restating a truth it would never be given in use.

Two sources are built here:

- simulator datasets (`angioscribe sim dataset`): one sample per study, every view's best
  frame, the bilingual clinical text, the truth lesions; split by patient with the catalog's
  grouped split;
- ARCADE stenosis frames: one sample per frame. Where the syntax task labels the same view
  (`data.lookalike.frames_in_both_tasks`), each annotated lesion is named by the annotated
  segment under it; otherwise (optional, slow) by the shipped SYNTAX model, and the sample is
  marked `derived`. ARCADE's official split is kept, except that a look-alike group with any
  validation image goes wholly to validation, so no picture is on both sides. With
  `model_clues`, the shipped SYNTAX and stenosis models read every frame and their findings
  (QCA-measured, one per segment, as `analyze` reports them) become the record's `clues`.

Targets are composed from the findings by the `findings-template` composer, in the language of
the record: a corpus target and a template draft of the same findings are the same text.
Patient ids are pseudonyms (`deid.pseudonym`); image paths are written relative to the corpus
file's folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from angioscribe.deid import pseudonym, site_salt
from angioscribe.errors import InputError
from angioscribe.report.draft import DraftRequest, KeyFrameImage, Language
from angioscribe.report.records import jsonl_records
from angioscribe.report.template import TemplateDrafter

SPLITS = ("train", "val", "test")
LANGUAGES: tuple[Language, ...] = ("en", "ja")
REQUIRED_FIELDS = ("id", "patient_id", "split", "lang", "images", "target")


@dataclass
class CorpusSample:
    """One study or frame, before its text is composed in a language."""

    id: str
    patient_id: str
    split: str
    images: list[KeyFrameImage]
    findings: list[dict[str, Any]]
    source: str
    clinical: dict[str, str] = field(default_factory=dict)  # language -> clinical text
    derived: bool = False
    clues: list[dict[str, Any]] | None = None  # the image models' findings; None: not run

    def record(self, lang: Language) -> CorpusRecord:
        """This sample in `lang`, its target composed from the findings."""
        request = DraftRequest(self.id, lang, self.images, self.findings)
        return CorpusRecord(self.id, self.patient_id, self.split, lang, self.images,
                            TemplateDrafter().draft(request).text, self.findings,
                            self.clinical.get(lang), self.derived, self.source, self.clues)


@dataclass
class CorpusRecord:
    """One line of a corpus: images and clinical text in, target report out."""

    id: str
    patient_id: str
    split: str
    lang: Language
    images: list[KeyFrameImage]
    target: str
    findings: list[dict[str, Any]] = field(default_factory=list)
    clinical_text: str | None = None
    derived: bool = False
    source: str = ""
    clues: list[dict[str, Any]] | None = None

    @property
    def prompt_findings(self) -> list[dict[str, Any]]:
        """What a drafter is told: the image models' clues where the record has them, else
        the truth findings (a corpus without model clues, e.g. a hospital's own)."""
        return self.findings if self.clues is None else self.clues

    def to_dict(self, folder: Path | None = None) -> dict[str, Any]:
        """The JSON object; image paths relative to `folder` (the corpus file's) when given."""
        images = [{**image.reference(), "path": _relative(image.path, folder)}
                  for image in self.images]
        record = {"id": self.id, "patient_id": self.patient_id, "split": self.split,
                  "lang": self.lang, "images": images, "clinical_text": self.clinical_text,
                  "target": self.target, "findings": self.findings, "derived": self.derived,
                  "source": self.source}
        return record if self.clues is None else {**record, "clues": self.clues}


def _relative(path: str, folder: Path | None) -> str:
    return path if folder is None else os.path.relpath(Path(path).resolve(), folder.resolve())


def corpus_records(samples: Iterable[CorpusSample],
                   languages: Sequence[Language] = LANGUAGES) -> Iterator[CorpusRecord]:
    """Every sample in every language, in order."""
    for sample in samples:
        for lang in languages:
            yield sample.record(lang)


def write_corpus(records: Iterable[CorpusRecord], path: str | Path) -> int:
    """Write the records as JSONL (image paths relative to the file); returns how many."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record.to_dict(path.parent), ensure_ascii=False) + "\n")
            count += 1
    return count


def read_corpus(path: str | Path) -> list[CorpusRecord]:
    """A corpus file, checked line by line (an InputError names the line and the problem);
    image paths are resolved against the file's folder."""
    folder = Path(path).parent
    return [_record(where, raw, folder) for where, raw in jsonl_records(path)]


def _record(where: str, raw: dict[str, Any], folder: Path) -> CorpusRecord:
    missing = [key for key in REQUIRED_FIELDS if raw.get(key) in (None, "")]
    if missing:
        raise InputError(where, f"missing field(s): {', '.join(missing)}")
    if raw["split"] not in SPLITS:
        raise InputError(where, f"split {raw['split']!r} is not one of {', '.join(SPLITS)}")
    if raw["lang"] not in LANGUAGES:
        raise InputError(where, f"lang {raw['lang']!r} is not en or ja")
    if not isinstance(raw["images"], list) or not raw["images"]:
        raise InputError(where, "images must be a non-empty list of {path, frame, side, view}")
    images = [_image(where, image, folder) for image in raw["images"]]
    findings = _finding_list(where, "findings", raw.get("findings") or [])
    clues = raw.get("clues")
    return CorpusRecord(str(raw["id"]), str(raw["patient_id"]), raw["split"], raw["lang"],
                        images, str(raw["target"]), findings, raw.get("clinical_text"),
                        bool(raw.get("derived", False)), str(raw.get("source", "")),
                        None if clues is None else _finding_list(where, "clues", clues))


def _finding_list(where: str, key: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InputError(where, f"{key} must be a list of objects")
    return value


def _image(where: str, image: Any, folder: Path) -> KeyFrameImage:
    if not isinstance(image, dict) or not image.get("path"):
        raise InputError(where, "each image needs a `path`")
    side = image.get("side")
    if side not in (None, "LCA", "RCA"):
        raise InputError(where, f"image side {side!r} is not LCA, RCA or null")
    try:
        frame = int(image.get("frame") or 0)
    except (TypeError, ValueError):
        raise InputError(where, f"image frame {image.get('frame')!r} is not a number") from None
    path = os.path.normpath(folder / image["path"])
    return KeyFrameImage(path, frame, side, image.get("view"))


# --- simulator datasets ---------------------------------------------------------------------


def sim_samples(dataset: str | Path, salt: str | None = None, seed: int = 0
                ) -> list[CorpusSample]:
    """One sample per study of a simulator dataset (or one study folder): every view's best
    frame, the clinical text in both languages, the truth lesions; split by patient."""
    root = Path(dataset)
    truths = sorted(root.glob("*/truth.json")) or sorted(root.glob("truth.json"))
    if not truths:
        raise InputError(root, "no simulated study (no truth.json in it or its subfolders)")
    salt = site_salt() if salt is None else salt  # read once, not once per study
    samples = [_sim_sample(path, salt) for path in truths]
    for sample, split in zip(samples, _patient_splits(samples, seed), strict=True):
        sample.split = split
    return samples


def _sim_sample(truth_path: Path, salt: str) -> CorpusSample:
    try:
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        images = [KeyFrameImage(str(truth_path.parent / view["dicom"]), int(view["best_frame"]),
                                view["laterality"], view.get("view")) for view in truth["views"]]
        return CorpusSample(
            id=f"sim/{truth_path.parent.name}",
            patient_id=pseudonym(str(truth["patient"]["patient_id"]), salt),
            split="",
            images=images,
            findings=list(truth["lesions"]),
            source="sim",
            clinical=dict(truth["reports"]["clinical"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(truth_path, f"not a simulator truth file ({error})") from None


def _patient_splits(samples: Sequence[CorpusSample], seed: int) -> list[str]:
    """train/val/test per sample, whole patients to one split (the catalog's rule)."""
    import pandas as pd

    from angioscribe.data.catalog import assign_splits

    table = pd.DataFrame({"patient_id": [sample.patient_id for sample in samples]})
    return [str(split) for split in assign_splits(table, "patient_id", seed=seed)["split"]]


# --- ARCADE ----------------------------------------------------------------------------------


@dataclass
class ArcadeCorpus:
    """ARCADE's samples and the stenosis frames left out, with the reason for each."""

    samples: list[CorpusSample]
    skipped: dict[str, str]  # image path -> why no target could be composed


def arcade_samples(root: str | Path, salt: str | None = None, derive: bool = False,
                   syntax_model: str = "syntax-seg", model_clues: bool = False,
                   stenosis_model: str = "stenosis-seg") -> ArcadeCorpus:
    """One sample per ARCADE stenosis frame whose lesions can be named: by the syntax task's
    labels of the same view, or (`derive`, slow: the model runs on every other frame) by
    `syntax_model`, marked derived. Frames with no nameable lesion are skipped: a target
    without their lesions would read as a normal study. `model_clues`: each sample's `clues`
    are what `syntax_model` and `stenosis_model` find on the frame (about 1 s a frame)."""
    from angioscribe.data.arcade import arcade_splits, find_arcade_root, load_arcade
    from angioscribe.data.lookalike import frames_in_both_tasks

    root = find_arcade_root(root)
    found = arcade_splits(root)
    splits = {(task, split): load_arcade(root, task, split) for task, split in found}
    stenosis_splits = [split for task, split in found if task == "stenosis"]
    if not stenosis_splits:
        raise InputError(root, "no ARCADE stenosis task to build a corpus from")
    groups, split_of = _leak_free_splits(splits.values())
    paired = {}
    for task, split in found:
        if task == "syntax":
            for stenosis_image, syntax_image in frames_in_both_tasks(root, split, stenosis_splits):
                paired.setdefault(stenosis_image.path, syntax_image)
    namer = model_lesion_namer(syntax_model) if derive else None
    clues_of = model_clue_reader(syntax_model, stenosis_model) if model_clues else None
    salt = site_salt() if salt is None else salt  # read once, not once per frame
    samples, skipped = [], {}
    for (task, official), arcade_split in splits.items():
        if task != "stenosis":
            continue
        for image in arcade_split.images:
            key = str(image.path.resolve())
            side, findings, derived = _named_lesions(image, paired.get(image.path), namer)
            if not findings or side is None:
                skipped[str(image.path)] = _skip_reason(paired.get(image.path), namer)
                continue
            samples.append(CorpusSample(
                id=f"arcade/{task}/{official}/{image.path.stem}",
                patient_id=pseudonym(groups[key], salt),
                split=split_of[key],
                images=[KeyFrameImage(str(image.path), 0, side, None)],
                findings=findings,
                source="arcade",
                derived=derived,
                clues=None if clues_of is None else clues_of(image),
            ))
    return ArcadeCorpus(samples, skipped)


def _skip_reason(syntax_image: Any, namer: Any) -> str:
    if syntax_image is None and namer is None:
        return "no syntax labels of this view (name its lesions with the model: derive)"
    return "no lesion on a named segment"


def _leak_free_splits(splits: Iterable[Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(look-alike group, corpus split) per image path: ARCADE's official split, except that a
    group with any validation image (in either task) is validation as a whole."""
    from angioscribe.data.catalog import catalog_from_arcade

    catalog = catalog_from_arcade(splits)
    val_groups = set(catalog.loc[catalog["split"] == "val", "patient_id"])
    groups = dict(zip(catalog["path"], catalog["patient_id"], strict=True))
    split_of = {path: "val" if group in val_groups else str(split)
                for path, group, split in zip(catalog["path"], catalog["patient_id"],
                                              catalog["split"], strict=True)}
    return groups, split_of


def _named_lesions(image: Any, syntax_image: Any, namer: Any
                   ) -> tuple[str | None, list[dict[str, Any]], bool]:
    """(side, [{"segment"} per lesion], derived) of a stenosis frame."""
    if syntax_image is not None:
        from angioscribe.evaluate.segment_naming import lesions_on_annotated_segments

        named = lesions_on_annotated_segments(image, syntax_image)
        return syntax_image.laterality, [{"segment": segment} for _, segment in named], False
    if namer is None:
        return None, [], False
    side, segments = namer(image)
    return side, [{"segment": segment} for segment in segments], True


def model_lesion_namer(syntax_model: str = "syntax-seg") -> Any:
    """image -> (side, segment of each annotated lesion) from the SYNTAX model's output."""
    from angioscribe.anatomy import ARCADE_STENOSIS_ID
    from angioscribe.evaluate.segment_naming import segmenter_output
    from angioscribe.findings import frame_findings
    from angioscribe.models.segmenter import Segmenter
    from angioscribe.regions import Region

    syntax = Segmenter.from_name(syntax_model)
    output = segmenter_output(syntax)

    def name(image: Any) -> tuple[str | None, list[str]]:
        probabilities, segments = output(image.load())
        lesions = [Region(ARCADE_STENOSIS_ID, polygon, 1.0, 0.0)
                   for polygon in image.stenosis_polygons]
        found = frame_findings(segments, lesions, probabilities, syntax.entry.label_ids)
        return found.laterality, [s.segment for s in found.stenoses if s.segment]

    return name


def model_clue_reader(syntax_model: str = "syntax-seg", stenosis_model: str = "stenosis-seg"
                      ) -> Callable[[Any], list[dict[str, Any]]]:
    """image -> the study findings the image models give for that one frame: SYNTAX segments,
    stenosis outlines named and QCA-measured (pixels: ARCADE frames carry no geometry), one
    entry per segment, as `analyze` writes `study_findings`."""
    from angioscribe.findings import segment_frame, study_findings
    from angioscribe.models.segmenter import Segmenter

    syntax, stenosis = Segmenter.from_name(syntax_model), Segmenter.from_name(stenosis_model)

    def clues(image: Any) -> list[dict[str, Any]]:
        _, found = segment_frame(image.load(), syntax, stenosis)
        frame = {"path": image.path.name, "frame": 0, "view": None,
                 "stenoses": [lesion.to_dict() for lesion in found.stenoses]}
        return study_findings([frame])

    return clues
