"""A study's findings against the simulator's truth: does the chain find each lesion at its
segment, how close is its % diameter stenosis, does it call total occlusions, and how many of
its findings are false.

A simulated study knows every lesion (truth.json: segment, % stenosis, cto); `analyze` gives
one finding per segment (`study_findings`, from every view it read). They are matched by
segment, as a report names a lesion ("#6 75 %"): a finding on a segment with a truth lesion
found it, a truth lesion with no finding on its segment is missed, a finding on a segment
without one is false. A lesion named after the neighbouring segment is therefore a miss and a
false finding, as it would be in the report. The chain is either run here (`ChainAnalysis`)
or read from an analysis.json that `angioscribe analyze` wrote over the same studies
(`AnalysisFile`); studies are matched by StudyInstanceUID.

Rates and means come with percentile bootstrap 95 % intervals resampling patients
(`bootstrap.bootstrap_ci`): a study's lesions share its images and its views.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import matplotlib
import numpy as np

from angioscribe.anatomy import SEGMENTS
from angioscribe.errors import InputError
from angioscribe.evaluate.bootstrap import bootstrap_ci

if TYPE_CHECKING:  # only for annotations: reading an analysis.json needs no models
    from angioscribe.analyze import Segmenters, StudyAnalysis
    from angioscribe.keyframes.classify import KeyframeClassifier

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# "Significant" for detection, as angiographers report it (the treatment rule keeps its own).
SIGNIFICANT_PERCENT = 50
# Targets of the chain on held-out simulated studies: (comparison, value).
TARGETS: dict[str, tuple[str, float]] = {
    "stenosis_mae": ("<=", 10.0),
    "occlusions_found": (">=", 0.8),
    "significant_found": (">=", 0.7),
}
Outcome = Literal["found", "missed", "false"]
LESION_COLUMNS = ("study", "patient", "seed", "outcome", "segment", "truth_percent", "truth_cto",
                  "percent", "cto", "grade", "confidence", "views", "error")


@dataclass(frozen=True)
class StudyTruth:
    """What a simulated study's truth.json says about it that the findings are scored on."""

    folder: Path
    study_id: str
    patient_id: str
    seed: int | None
    study_uid: str
    lesions: list[dict[str, Any]]
    cines: list[Path]


@dataclass(frozen=True)
class LesionMatch:
    """One truth lesion (found or missed) or one false finding. `percent`, `cto`, `grade`,
    `confidence` and `views` (how many frames show it) are the chain's, None when missed."""

    outcome: Outcome
    segment: str
    truth_percent: int | None = None
    truth_cto: bool | None = None
    percent: float | None = None
    cto: bool | None = None
    grade: str | None = None
    confidence: float | None = None
    views: int = 0

    @property
    def error(self) -> float | None:
        """Measured minus true % stenosis (points), where both are known."""
        if self.percent is None or self.truth_percent is None:
            return None
        return self.percent - self.truth_percent


@dataclass
class StudyComparison:
    """One study's matches, and what the analysis said went wrong on it (`warnings`)."""

    truth: StudyTruth
    matches: list[LesionMatch]
    warnings: list[str] = field(default_factory=list)

    def outcomes(self, outcome: Outcome) -> list[LesionMatch]:
        return [match for match in self.matches if match.outcome == outcome]

    def to_record(self) -> dict[str, Any]:
        """The study's line of the table (and its JSON record, with every match)."""
        truth = [m for m in self.matches if m.outcome != "false"]
        found = [m for m in self.matches if m.outcome != "missed"]
        return {
            "path": str(self.truth.folder),
            "study": self.truth.study_id,
            "seed": self.truth.seed,
            "truth": ", ".join(_described(m.segment, m.truth_percent, m.truth_cto)
                               for m in truth) or "none",
            "findings": ", ".join(_described(m.segment, m.percent, m.cto) for m in found)
                        or "none",
            "found": f"{len(self.outcomes('found'))}/{len(truth)}",
            "false": len(self.outcomes("false")),
            "warnings": self.warnings,
            "lesions": [{**asdict(m), "error": m.error} for m in self.matches],
        }


def _described(segment: str, percent: float | None, cto: bool | None) -> str:
    """A lesion as the table shows it: "#6 72 %", "#13 CTO", "#2 not measured"."""
    if cto:
        return f"#{segment} CTO"
    return f"#{segment} " + ("not measured" if percent is None else f"{percent:.0f} %")


def sim_study_folders(path: Path) -> list[Path]:
    """The simulated studies at `path`: the folder itself when it holds truth.json (a `sim
    study`), else its subfolders that do (a `sim dataset`)."""
    if (path / "truth.json").is_file():
        return [path]
    folders = sorted(truth.parent for truth in path.glob("*/truth.json"))
    if not folders:
        raise InputError(path, "no truth.json here or in its subfolders: not a simulated study "
                               "or dataset (`angioscribe sim study` / `sim dataset` output)")
    return folders


def read_truth(folder: Path) -> StudyTruth:
    """A simulated study's truth, as `angioscribe sim` wrote it in `folder`/truth.json."""
    path = folder / "truth.json"
    try:
        truth = json.loads(path.read_text(encoding="utf-8"))
        return StudyTruth(
            folder=folder, study_id=str(truth["study_id"]),
            patient_id=str(truth["patient"].get("patient_id", truth["study_id"])),
            seed=truth.get("seed"), study_uid=str(truth["study_instance_uid"]),
            lesions=[{"segment": str(lesion["segment"]),
                      "stenosis_percent": int(lesion["stenosis_percent"]),
                      "cto": bool(lesion["cto"])} for lesion in truth["lesions"]],
            cines=[folder / view["dicom"] for view in truth["views"]])
    except OSError as error:
        raise InputError(path, f"cannot be read ({error.strerror or error})") from error
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InputError(path, f"is not a simulator truth file (bad or missing {error})"
                         ) from error


def compare_study(truth: StudyTruth, analysis: dict[str, Any]) -> StudyComparison:
    """The study's `study_findings` (one analysis.json study) matched to its truth lesions."""
    if not isinstance(analysis.get("study_findings"), list):
        raise InputError(truth.folder, "its analysis has no study_findings (written by an "
                                       "angioscribe older than per-segment findings?)")
    try:
        predicted = {str(entry["segment"]): entry for entry in analysis["study_findings"]}
    except (KeyError, TypeError) as error:
        raise InputError(truth.folder, "its analysis lists a study finding without a segment"
                         ) from error
    true = {lesion["segment"]: lesion for lesion in truth.lesions}
    matches = [_truth_match(lesion, predicted.get(segment)) for segment, lesion in true.items()]
    matches += [_finding_match("false", entry) for segment, entry in predicted.items()
                if segment not in true]
    order = list(SEGMENTS)
    matches.sort(key=lambda m: order.index(m.segment) if m.segment in order else len(order))
    return StudyComparison(truth, matches, analysis_warnings(analysis))


def _truth_match(lesion: dict[str, Any], entry: dict[str, Any] | None) -> LesionMatch:
    truth = {"truth_percent": lesion["stenosis_percent"], "truth_cto": lesion["cto"]}
    if entry is None:
        return LesionMatch("missed", lesion["segment"], **truth)
    return _finding_match("found", entry, **truth)


def _finding_match(outcome: Outcome, entry: dict[str, Any], **truth: Any) -> LesionMatch:
    return LesionMatch(outcome, str(entry["segment"]), percent=entry.get("stenosis_percent"),
                       cto=entry.get("cto"), grade=entry.get("grade"),
                       confidence=entry.get("confidence"), views=len(entry.get("views", [])),
                       **truth)


def analysis_warnings(analysis: dict[str, Any]) -> list[str]:
    """What the analysis says kept it from reading part of the study: cines it could not
    read, and sides with no key frame (with why, e.g. frames refused as out of scope)."""
    errors = [f"{error.get('path')}: {error.get('error')}" for error in analysis.get("errors", [])]
    missing = analysis.get("keyframes", {}).get("missing", {})
    return errors + [f"no {side} key frame: {why}" for side, why in missing.items()]


class AnalysisFile:
    """The analysis of a study from an analysis.json `angioscribe analyze` wrote."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
            self.studies = {str(study["key"]): study for study in records}
        except OSError as error:
            raise InputError(path, f"cannot be read ({error.strerror or error})") from error
        except (ValueError, KeyError, TypeError) as error:
            raise InputError(path, "is not an analysis.json of `angioscribe analyze` (a list "
                                   "of studies, each with its key)") from error

    def __call__(self, truth: StudyTruth) -> dict[str, Any]:
        if truth.study_uid not in self.studies:
            raise InputError(truth.folder, f"not in {self.path} (no study with its "
                                           f"StudyInstanceUID {truth.study_uid})")
        return self.studies[truth.study_uid]


class ChainAnalysis:
    """The analysis of a study by the chain, run now on its cines as `angioscribe analyze`
    does (without the draft reports, which the findings do not depend on); figures go to
    `out_dir`, and with `keep` every study's results so far to `out_dir`/analysis.json."""

    def __init__(self, out_dir: Path, classifier: KeyframeClassifier, segmenters: Segmenters,
                 keep: bool = False) -> None:
        self.out_dir = out_dir
        self.classifier = classifier
        self.segmenters = segmenters
        self.keep = keep
        self.studies: list[StudyAnalysis] = []

    def __call__(self, truth: StudyTruth) -> dict[str, Any]:
        from angioscribe.analyze import analyze_paths, write_analysis

        studies = analyze_paths(truth.cines, self.out_dir, classifier=self.classifier,
                                segmenters=self.segmenters, drafters={})
        self.studies += studies
        if self.keep:
            write_analysis(self.studies, self.out_dir)
        for study in studies:
            if study.key == truth.study_uid and study.cines:
                return study.to_dict()
        problems = "; ".join(analysis_warnings(
            {"errors": [e for study in studies for e in study.errors]}))
        raise InputError(truth.folder, f"no cine of the study could be analysed ({problems})")


def compare_folder(folder: Path, analysis_of: Callable[[StudyTruth], dict[str, Any]]
                   ) -> StudyComparison:
    """One simulated study's findings, from `analysis_of` (an `AnalysisFile` or a
    `ChainAnalysis`), against its truth."""
    truth = read_truth(folder)
    return compare_study(truth, analysis_of(truth))


def findings_metrics(comparisons: Sequence[StudyComparison],
                     resamples: int = 1000) -> list[dict[str, Any]]:
    """The chain's figures of merit over all studies, each with its bootstrap 95 % CI over
    patients, its target (where the issue sets one) and whether the estimate meets it:

    - stenosis_mae, stenosis_bias: |measured - true| and measured - true (points) over the
      truth lesions found with a measured %;
    - lesions_found, significant_found (>= 50 %), occlusions_found (found and called `cto`):
      shares of the truth lesions found at their segment, across the study's views;
    - false_findings_per_study, precision: findings on segments without a lesion;
      false_significant_per_study: those of them the chain reports as >= 50 %, the ones a
      report would carry as disease.
    """
    pairs = [(c.truth.patient_id, m) for c in comparisons for m in c.matches]
    truth = [(p, m) for p, m in pairs if m.outcome != "false"]
    measured = [(p, m) for p, m in truth if m.error is not None]
    predicted = [(p, m) for p, m in pairs if m.outcome != "missed"]
    rows = [
        ("stenosis_mae", [(p, abs(m.error)) for p, m in measured]),
        ("stenosis_bias", [(p, m.error) for p, m in measured]),
        ("lesions_found", [(p, m.outcome == "found") for p, m in truth]),
        ("significant_found", [(p, m.outcome == "found") for p, m in truth
                               if m.truth_percent >= SIGNIFICANT_PERCENT]),
        ("occlusions_found", [(p, m.outcome == "found" and bool(m.cto)) for p, m in truth
                              if m.truth_cto]),
        ("false_findings_per_study", [(c.truth.patient_id, len(c.outcomes("false")))
                                      for c in comparisons]),
        ("false_significant_per_study", [(c.truth.patient_id, sum(
            _significant(m.percent, m.cto) for m in c.outcomes("false"))) for c in comparisons]),
        ("precision", [(p, m.outcome == "found") for p, m in predicted]),
    ]
    return [_metric(name, values, resamples) for name, values in rows]


def _significant(percent: float | None, cto: bool | None) -> bool:
    return bool(cto) or (percent is not None and percent >= SIGNIFICANT_PERCENT)


def _metric(name: str, values: list[tuple[str, Any]], resamples: int) -> dict[str, Any]:
    """A mean with its CI resampling patients; value and CI None when there is nothing."""
    comparison, target = TARGETS.get(name, (None, None))
    row: dict[str, Any] = {"metric": name, "n": len(values), "value": None, "ci95": None,
                           "target": f"{comparison} {target:g}" if target is not None else None,
                           "met": None}
    if not values:
        return row
    interval = bootstrap_ci(np.array([value for _, value in values], dtype=float), n=resamples,
                            groups=[patient for patient, _ in values])
    row.update(value=interval.estimate, ci95=[interval.low, interval.high])
    if target is not None:
        row["met"] = bool(interval.estimate <= target if comparison == "<="
                          else interval.estimate >= target)
    return row


def write_lesions_csv(comparisons: Sequence[StudyComparison], path: Path) -> Path:
    """One row per truth lesion and per false finding, with the study, patient and seed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=LESION_COLUMNS)
        writer.writeheader()
        for comparison in comparisons:
            truth = comparison.truth
            for match in comparison.matches:
                writer.writerow({"study": truth.study_id, "patient": truth.patient_id,
                                 "seed": truth.seed, **asdict(match), "error": match.error})
    return path


def plot_findings_truth(comparisons: Sequence[StudyComparison], path: Path) -> Path:
    """PNG: measured against true % stenosis of the lesions found, their Bland-Altman plot,
    and the share of truth lesions found at their segment per true %."""
    matches = [m for c in comparisons for m in c.matches]
    measured = [m for m in matches if m.error is not None]
    truth = np.array([m.truth_percent for m in measured], dtype=float)
    value = np.array([m.percent for m in measured], dtype=float)
    cto = np.array([bool(m.truth_cto) for m in measured], dtype=bool)
    fig, (scatter, agreement, found) = plt.subplots(1, 3, figsize=(13, 4.2))
    fig.suptitle(f"Study findings against the simulator's truth ({len(comparisons)} studies)")
    jitter = np.random.default_rng(0).uniform(-1.5, 1.5, len(truth))
    scatter.fill_between([0, 100], [-10, 90], [10, 110], color="0.9", label="within 10 points")
    scatter.plot([0, 100], [0, 100], color="0.5", lw=1)
    scatter.scatter(truth[~cto] + jitter[~cto], value[~cto], s=18, label="stenosis")
    scatter.scatter(truth[cto] + jitter[cto], value[cto], s=30, marker="x", color="C3",
                    label="total occlusion")
    scatter.set(xlim=(0, 105), ylim=(0, 105), xlabel="true % diameter stenosis",
                ylabel="measured % (study finding)",
                title=f"lesions found and measured (n = {len(measured)})")
    scatter.legend(loc="best", fontsize=8)
    _plot_agreement(agreement, truth, value)
    _plot_found_by_percent(found, [m for m in matches if m.outcome != "false"])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_agreement(axes: plt.Axes, truth: np.ndarray, value: np.ndarray) -> None:
    """Bland-Altman: difference against mean, with the bias and 95 % limits of agreement."""
    axes.set(xlim=(0, 105), xlabel="mean of true and measured %",
             ylabel="measured - true (points)", title="agreement (Bland-Altman)")
    if not len(truth):
        axes.text(0.5, 0.5, "no lesion measured", ha="center", transform=axes.transAxes)
        return
    difference = value - truth
    bias, spread = difference.mean(), 1.96 * difference.std(ddof=1) if len(truth) > 1 else 0.0
    axes.scatter((truth + value) / 2, difference, s=18)
    axes.axhline(bias, color="C1", label=f"bias {bias:+.1f}")
    for limit in (bias - spread, bias + spread):
        axes.axhline(limit, color="C1", ls="--", lw=1)
    axes.axhline(0, color="0.5", lw=1)
    axes.legend(loc="best", fontsize=8, title=f"limits ±{spread:.1f}",
                title_fontsize=8)


def _plot_found_by_percent(axes: plt.Axes, truth: Sequence[LesionMatch]) -> None:
    """Bars: share of truth lesions found at their segment, per true % (CTO as 100)."""
    levels = sorted({m.truth_percent for m in truth})
    shares = [np.mean([m.outcome == "found" for m in truth if m.truth_percent == level])
              for level in levels]
    axes.bar([str(level) for level in levels], shares, color="C2")
    for x, level in enumerate(levels):
        group = [m for m in truth if m.truth_percent == level]
        hits = sum(m.outcome == "found" for m in group)
        axes.text(x, 0.02, f"{hits}/{len(group)}", ha="center", fontsize=8)
    axes.axvline(-0.5 + sum(level < SIGNIFICANT_PERCENT for level in levels), color="0.5",
                 ls=":", lw=1)
    axes.set(ylim=(0, 1.05), xlabel="true % stenosis (100: total occlusion)",
             ylabel="found at the right segment", title="lesions found (study level)")
