"""The video model's parts: frame choice, pooling masks, losses, metrics and retrieval."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from angioscribe.anatomy import DEEPCORO_SEGMENTS
from angioscribe.errors import InputError
from angioscribe.video.config import VideoConfig
from angioscribe.video.data import read_table, read_tables
from angioscribe.video.evaluate import auprc, auroc, mean_absolute_error, pearson_r, youden
from angioscribe.video.frames import clip_indices, clip_stride
from angioscribe.video.losses import clip_loss, siglip_loss
from angioscribe.video.retrieval import retrieval_metrics
from angioscribe.video.study_model import VideoStudyModel
from video_studies import TINY


def test_clip_is_centred_inside_the_cine_and_follows_the_frame_rate():
    assert clip_stride(2, 15.0, 30.0) == 1 and clip_stride(2, 60.0, 30.0) == 4
    assert clip_stride(2, None, 30.0) == 2
    indices = clip_indices(40, centre=20, length=16, stride=2)
    assert indices.tolist() == list(range(5, 37, 2))
    assert clip_indices(40, centre=39, length=16, stride=2)[-1] == 39
    short = clip_indices(10, centre=5, length=16, stride=1)
    assert len(short) == 16 and short.max() == 9 and short.min() == 0


@pytest.mark.parametrize("pooling", ["attention", "mean", "single"])
def test_padded_videos_change_nothing(pooling):
    torch.manual_seed(0)
    model = VideoStudyModel(VideoConfig.from_dict({**TINY, "pooling": pooling}),
                            pretrained=False).eval()
    features = torch.randn(1, 2, 4, 1, 1280)
    padded = torch.cat([features, 100 * torch.randn(1, 3, 4, 1, 1280)], dim=1)
    with torch.no_grad():
        alone = model(features, torch.ones(1, 2, dtype=torch.bool))["study"]
        beside = model(padded, torch.tensor([[True, True, False, False, False]]))["study"]
        changed = model(padded, torch.ones(1, 5, dtype=torch.bool))["study"]
    torch.testing.assert_close(alone, beside)
    if pooling != "single":
        assert not torch.allclose(alone, changed)


def test_contrastive_losses_prefer_matched_pairs_and_share_a_text():
    torch.manual_seed(0)
    texts = torch.randn(3, 8)
    videos = torch.cat([texts, texts[:1]]) + 0.01 * torch.randn(4, 8)
    match = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=torch.bool)
    shuffled = match[[1, 2, 0, 1]]
    scale, bias = torch.tensor(np.log(10.0)), torch.tensor(-2.0)
    assert clip_loss(videos, texts, match, scale) < clip_loss(videos, texts, shuffled, scale)
    assert siglip_loss(videos, texts, match, scale, bias) < \
        siglip_loss(videos, texts, shuffled, scale, bias)


def test_binary_metrics_on_known_cases():
    truth = np.array([0, 0, 1, 1])
    assert auroc(truth, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert auroc(truth, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert auroc(truth, np.full(4, 0.5)) == 0.5
    assert np.isnan(auroc(np.zeros(3), np.arange(3)))
    assert auprc(truth, np.array([0.9, 0.1, 0.8, 0.2])) == pytest.approx((1 / 2 + 2 / 3) / 2)
    point = youden(truth, np.array([0.1, 0.6, 0.7, 0.9]))
    assert point == {"threshold": 0.7, "sensitivity": 1.0, "specificity": 1.0}


def test_percent_metrics_on_known_cases():
    truth = np.array([0.0, 50.0, 90.0])
    assert mean_absolute_error(truth, np.array([10.0, 40.0, 90.0])) == pytest.approx(20 / 3)
    assert pearson_r(truth, 2 * truth + 5) == pytest.approx(1.0)
    assert pearson_r(truth, -truth) == pytest.approx(-1.0)
    assert np.isnan(pearson_r(truth, np.zeros(3)))  # a reader that finds nothing has no r


def test_retrieval_ranks_and_chance_levels():
    similarity = np.eye(20) + 0.01 * np.arange(20)
    perfect = retrieval_metrics(similarity, np.eye(20, dtype=bool))
    assert perfect["recall@1"] == 1.0 and perfect["median_rank"] == 1 and perfect["mrr"] == 1
    assert perfect["chance_recall@5"] == pytest.approx(5 / 20)
    assert perfect["chance_recall@50"] == pytest.approx(1.0)
    assert perfect["chance_mrr"] == pytest.approx(np.mean(1 / np.arange(1, 21)))
    reversed_ = retrieval_metrics(-similarity, np.eye(20, dtype=bool))
    assert reversed_["recall@1"] == 0.0 and reversed_["median_rank"] == 20
    two = np.zeros((1, 4), bool)
    two[0, :2] = True  # two positives of four: a random first pick hits half the time
    assert retrieval_metrics(np.zeros((1, 4)), two)["chance_recall@1"] == pytest.approx(0.5)


def test_simulator_table_without_report_or_split_gets_texts_from_its_labels(tmp_path):
    header = ("DICOMPath,ss_event_cath_id,ss_patient_id,main_structure,prox_lad_stenosis,"
              "prox_lad_stenosis_binary,prox_lad_calcif_binary,prox_lad_cto,prox_lad_thrombus,"
              "prox_rca_stenosis,prox_rca_calcif_binary,pda_stenosis")
    rows = [f"S{i}/dicom/01_LCA.dcm,S{i},P{i},Left Coronary,90,1,severe,False,False,0,none,"
            for i in range(40)]
    rows.append("S0/dicom/02_RCA.dcm,S0,P0,Right Coronary,90,1,severe,False,False,0,none,")
    (tmp_path / "deepcoro.csv").write_text("\n".join([header, *rows]) + "\n")
    studies = read_table(tmp_path / "deepcoro.csv", val_fraction=0.25)
    assert len(studies) == 40 and len(studies[0].videos) == 2
    left, right = studies[0].videos
    assert left.text == "LCA: Proximal LAD 90% stenosis, calcified."
    assert right.text == "RCA: no stenosis."
    lad = DEEPCORO_SEGMENTS.index("Proximal LAD")
    pda = DEEPCORO_SEGMENTS.index("PDA")
    assert studies[0].labels[lad].tolist() == [90, 1, 0, 0, 1]
    assert np.isnan(studies[0].labels[pda]).all()  # empty: unknown, not healthy
    splits = {study.split for study in studies}
    assert splits == {"train", "val"}
    assert read_table(tmp_path / "deepcoro.csv", 0.25)[5].split == studies[5].split


def test_tables_join_with_their_own_folders_and_splits_and_refuse_a_study_in_both(tmp_path):
    header = "FileName,StudyInstanceUID,Split,main_structure,prox_lad_stenosis"
    for name, split, first in (("a", "val", 0), ("b", "train", 3)):
        (tmp_path / name).mkdir()
        rows = [f"S{i}/01_LCA.dcm,S{i},{split},Left Coronary,50" for i in range(first, first + 3)]
        (tmp_path / name / "video.csv").write_text("\n".join([header, *rows]) + "\n")
    studies = read_tables([tmp_path / "a" / "video.csv", str(tmp_path / "b" / "video.csv")])
    assert [s.study for s in studies] == ["S0", "S1", "S2", "S3", "S4", "S5"]
    assert [s.split for s in studies] == ["val"] * 3 + ["train"] * 3
    assert studies[4].videos[0].path == tmp_path / "b" / "S4" / "01_LCA.dcm"
    assert len(read_tables(tmp_path / "a" / "video.csv")) == 3
    with pytest.raises(InputError, match="S0 is also in"):
        read_tables([tmp_path / "a" / "video.csv", tmp_path / "a" / "video.csv"])


def test_max_feature_pool_keeps_each_cells_strongest_response_under_its_own_cache_key():
    from angioscribe.video.config import VideoConfig
    from angioscribe.video.features import FrameFeatureEncoder, recipe_key

    frames = torch.rand(2, 1, 224, 224, generator=torch.Generator().manual_seed(0))  # 7 x 7 map
    average = FrameFeatureEncoder(2, pretrained=False)
    highest = FrameFeatureEncoder(2, pretrained=False, pool="max")
    highest.load_state_dict(average.state_dict())
    mean, peak = average(frames), highest(frames)
    assert mean.shape == peak.shape == (2, 4, 1280)
    assert torch.all(peak >= mean - 1e-6) and torch.any(peak > mean + 1e-3)
    default = VideoConfig()
    assert recipe_key(default) == recipe_key(VideoConfig(feature_pool="average"))
    assert recipe_key(VideoConfig(feature_pool="max")) != recipe_key(default)
    with pytest.raises(InputError, match="feature_pool"):
        VideoConfig.from_dict({"feature_pool": "median"})
