"""The realism harness: simulated key frames judged by models (sim.realism).

Stand-in models that answer with the simulator's own truth must score perfectly, ones that see
nothing must score zero: that checks the harness's bookkeeping (truth conversion, official
metric, lesion location and matching) without the cost of the networks. The shipped models
themselves are run by bench/bench_sim_realism.py (loading the three takes a minute here).
"""

from __future__ import annotations

import numpy as np
import pytest

from angioscribe.anatomy import SEGMENTS
from angioscribe.regions import Region
from angioscribe.scope import ScopeVerdict
from angioscribe.sim.anatomy3d import CODE_SEGMENTS
from angioscribe.sim.realism import (
    LAD_FRAME_SEGMENTS,
    LCX_FRAME_SEGMENTS,
    SIGNIFICANT_PERCENT,
    Models,
    arcade_style_truth,
    lesion_core_px,
    measure_realism,
    truth_regions,
)
from angioscribe.sim.study import SimulatedStudy, simulate_study

SEED = 16  # a CTO of the proximal LCX and a 75 % D2 lesion: both significant, on the left


@pytest.fixture(scope="module")
def study() -> SimulatedStudy:
    return simulate_study(SEED, n_left=2, n_right=1)


class TruthSegments:
    """Answers each key frame with the simulator's segment outlines (`arcade_style`: only
    those ARCADE would annotate)."""

    def __init__(self, study: SimulatedStudy, arcade_style: bool = False) -> None:
        self.by_frame = {}
        for view in study.views:
            truth = truth_regions(view.cine.masks[view.best_frame])
            if arcade_style:
                truth = arcade_style_truth(truth, view.laterality, view.arm.secondary_deg)
            self.by_frame[view.cine.frames[view.best_frame].tobytes()] = truth

    def regions(self, frame: np.ndarray) -> list[Region]:
        return self.by_frame[frame.tobytes()]


class LesionsAt:
    """Answers each key frame with a 6 px box on every significant lesion's core."""

    def __init__(self, study: SimulatedStudy) -> None:
        self.by_frame = {}
        for view in study.views:
            boxes = []
            for lesion in study.lesions:
                if lesion.stenosis_percent < SIGNIFICANT_PERCENT:
                    continue
                col, row = lesion_core_px(study, view, lesion, view.best_frame).mean(axis=0)
                box = np.array([[col - 3, row - 3], [col + 3, row - 3], [col + 3, row + 3],
                                [col - 3, row + 3]])
                boxes.append(Region(26, box, 1.0, 36.0))
            self.by_frame[view.cine.frames[view.best_frame].tobytes()] = boxes

    def regions(self, frame: np.ndarray) -> list[Region]:
        return self.by_frame[frame.tobytes()]


class SeesNothing:
    def regions(self, frame: np.ndarray) -> list[Region]:
        return []


class AcceptsAll:
    def check(self, frame: np.ndarray) -> list[ScopeVerdict]:
        return [ScopeVerdict(True, 1.0, 2.0, "in scope")]


def test_truth_regions_outline_every_visible_segment(study):
    view = study.views[0]
    mask = view.cine.masks[view.best_frame]
    regions = truth_regions(mask)
    numbers = sorted(CODE_SEGMENTS[int(code)] for code in np.unique(mask) if code
                     and (mask == code).sum() >= 30)
    assert sorted(view.visible_segments) == numbers
    assert len(regions) == len(numbers)
    for region in regions:
        x_min, y_min, width, height = region.bbox
        assert width > 3 and height > 3  # an outline, not a pixel box


def test_models_that_answer_the_truth_score_perfectly(study):
    significant = [lesion for lesion in study.lesions
                   if lesion.stenosis_percent >= SIGNIFICANT_PERCENT]
    assert significant  # the seed was chosen for them
    oracle = Models(TruthSegments(study), LesionsAt(study), AcceptsAll())
    score = measure_realism([study], oracle)
    summary = score.summary()
    assert summary["key_frames"] == len(study.views)
    assert summary["syntax_f1"] == pytest.approx(1.0)
    assert summary["significant_lesions"] == len(significant)
    assert summary["lesion_recall_study"] == 1.0
    assert summary["lesion_recall_view"] == 1.0
    assert summary["false_stenosis_regions_per_frame"] == 0
    assert summary["scope_acceptance"] == 1.0


def test_models_that_see_nothing_score_zero(study):
    blind = Models(SeesNothing(), SeesNothing(), AcceptsAll())
    summary = measure_realism([study], blind).summary()
    assert summary["syntax_f1"] == 0.0
    assert summary["lesion_recall_study"] == 0.0



def segment_names(regions: list[Region]) -> set[str]:
    return {number for region in regions for number, segment in SEGMENTS.items()
            if segment.arcade_id == region.category_id}


def test_arcade_style_truth_annotates_the_artery_a_view_is_taken_for(study):
    by_view = {view.view: view for view in study.views}
    caudal, cranial, right = by_view["RAO Caudal"], by_view["RAO Cranial"], study.views[-1]
    # The LCX is occluded proximally in this study: its caudal view shows the left main.
    for view, kept, shown in ((caudal, LCX_FRAME_SEGMENTS, {"5"}),
                              (cranial, LAD_FRAME_SEGMENTS, {"5", "6", "7"})):
        truth = truth_regions(view.cine.masks[view.best_frame])
        styled = segment_names(arcade_style_truth(truth, "LCA", view.arm.secondary_deg))
        assert shown <= styled <= kept
        assert styled < segment_names(truth)  # the other artery's segments are left out
    truth = truth_regions(right.cine.masks[right.best_frame])
    assert arcade_style_truth(truth, "RCA", right.arm.secondary_deg) == truth


def test_arcade_style_f1_scores_against_the_annotated_artery(study):
    oracle = Models(TruthSegments(study, arcade_style=True), SeesNothing(), AcceptsAll())
    summary = measure_realism([study], oracle).summary()
    assert summary["syntax_f1_arcade_style"] == pytest.approx(1.0)
    assert summary["syntax_f1"] < 1.0  # the full masks have segments it did not outline
