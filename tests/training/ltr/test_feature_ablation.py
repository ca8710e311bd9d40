"""The ranker's feature ablation: with − without one informative column beats 0, a noise column does not."""
import dataclasses

import numpy as np
import pytest
from builders.ltr import ranking_rows_with_parts

from training.ltr.feature_ablation import feature_ablation
from training.ltr.report_day import report_rows
from training.ltr.stages import QUALITY_FEATURE, RankerConfig
from training.ltr.tradeoff import fit_ranker
from training.quality.evaluation import quality_ranking_metrics

FAST = RankerConfig(num_leaves=7, n_estimators=30, min_data_in_leaf=10, threads=1, early_stopping_rounds=5)
NAMES = ("without", "with")


@pytest.fixture(scope="module")
def rows():
    features = ranking_rows_with_parts(n_groups=300, group_size=15, seed=4)
    rng = np.random.default_rng(0)
    clicked = features["clicked"].to_numpy()
    # a strong view of the click (what an interest list that retrieved the clicked news would add) and noise
    return features.assign(hint=np.where(rng.random(len(features)) < 0.8, clicked, 1 - clicked).astype(np.float32),
                           noise=rng.normal(size=len(features)).astype(np.float32))


def test_an_informative_column_helps_and_takes_the_gain(rows):
    features = rows.drop(columns="noise")
    report = report_rows(features, 0, 0)
    lines = []
    out = feature_ablation(features, report, ["hint"], FAST, None, [1, 2], NAMES, log=lines.append)
    assert out.summary["ranker"].tolist() == list(NAMES) and list(out.summary["n_seeds"]) == [2, 2]
    assert out.differences["click_ndcg5"].low > 0 and out.differences["click_ndcg5"].estimate > 0.05
    assert all(0.3 < share <= 1 for share in out.importance)
    assert len(lines) == 4 and len(out.lambdas["with"]) == 2
    # the "without" arm is fit_ranker on the rows without the column, at its own λ
    model, _ = fit_ranker(features.drop(columns="hint"), dataclasses.replace(FAST, seed=2))
    stage2 = model.score_stage2(report[model.stage2_features].to_numpy(np.float32))
    expected = quality_ranking_metrics(report, model.combine(stage2, report[QUALITY_FEATURE], model.lam))
    assert out.summary.loc[0, "reco_dcg5_seeds"][1] == pytest.approx(expected["reco_dcg5"])
    assert out.lambdas["without"][1] == model.lam


def test_a_noise_column_changes_little(rows):
    features = rows.drop(columns="hint")
    out = feature_ablation(features, report_rows(features, 0, 0), ["noise"], FAST, None, [1], NAMES,
                           log=lambda _: None)
    assert abs(out.differences["click_ndcg5"].estimate) < 0.05
    with pytest.raises(ValueError, match=r"ablated column\(s\) \['hint'\]"):
        feature_ablation(features, features, ["hint"], FAST, None, [1], NAMES)
    with pytest.raises(ValueError, match="at least one seed"):
        feature_ablation(features, features, ["noise"], FAST, None, [], NAMES)
