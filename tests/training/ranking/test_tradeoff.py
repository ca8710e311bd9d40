"""The λ trade-off curve against direct metric calls, the paper's choice of λ, and the plot."""
import numpy as np
import pandas as pd
import pytest
from builders.ranking import synthetic_ranking_rows

from training.metrics.quality import click_ndcg, quality_filtered_click_ndcg, reco_dcg
from training.ranking.tradeoff import LAMBDAS, choose_lambda, plot_tradeoff, tradeoff_curve


@pytest.fixture(scope="module")
def scored():
    rows = synthetic_ranking_rows(n_groups=120, group_size=15, seed=3)
    rng = np.random.default_rng(0)
    stage2 = rows["student_click"].to_numpy(np.float64) + rng.normal(0, 0.3, len(rows))  # a stand-in click score
    return rows, stage2


def _direct(rows, scores):
    g, c, q = rows["impression_id"], rows["clicked"], rows["quality"]
    return {"qf_click_ndcg5": quality_filtered_click_ndcg(g, c, q, scores, 5), "reco_dcg5": reco_dcg(g, q, scores, 5),
            "click_ndcg5": click_ndcg(g, c, scores, 5)}


def test_curve_ends_rank_by_stage2_alone_and_by_quality_alone(scored):
    rows, stage2 = scored
    quality_scores = rows["student_quality"].to_numpy(np.float64)
    mu, sigma = {"stage2": 0.3, "quality": 2.0}, {"stage2": 1.7, "quality": 1.1}
    curve = tradeoff_curve(rows["impression_id"], rows["clicked"], rows["quality"], stage2, quality_scores, mu, sigma)
    assert list(curve.columns) == ["lam", "qf_click_ndcg5", "reco_dcg5", "click_ndcg5"]
    assert curve["lam"].tolist() == LAMBDAS.tolist() and len(curve) == 21
    at = curve.set_index("lam")
    assert at.loc[0.0].to_dict() == pytest.approx(_direct(rows, stage2), abs=1e-12)
    assert at.loc[1.0].to_dict() == pytest.approx(_direct(rows, quality_scores), abs=1e-12)
    # the quality head buys RecoDCG at the price of clicks
    assert at.loc[1.0, "reco_dcg5"] > at.loc[0.0, "reco_dcg5"]
    assert at.loc[1.0, "click_ndcg5"] < at.loc[0.0, "click_ndcg5"]
    middle = stage2 * 0.5 / 1.7 + quality_scores * 0.5 / 1.1  # λ = 0.5, up to a constant shift
    assert at.loc[0.5].to_dict() == pytest.approx(_direct(rows, middle), abs=1e-12)


def test_choose_lambda_takes_the_rightmost_point_near_the_maximum():
    curve = pd.DataFrame({"lam": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
                          "qf_click_ndcg5": [0.50, 0.60, 0.60, 0.55, 0.59, 0.58]})
    assert choose_lambda(curve) == 0.4
    assert choose_lambda(curve, tolerance=0.015) == 0.8
    assert choose_lambda(curve, tolerance=0.025) == 1.0
    shuffled = curve.sample(frac=1.0, random_state=0)
    assert choose_lambda(shuffled) == 0.4
    with_nan = curve.assign(qf_click_ndcg5=[0.5, np.nan, 0.6, 0.55, 0.59, np.nan])
    assert choose_lambda(with_nan, tolerance=0.01) == 0.8
    with pytest.raises(ValueError, match="NaN at every λ"):
        choose_lambda(curve.assign(qf_click_ndcg5=np.nan))
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        choose_lambda(curve, tolerance=-0.1)


def test_plot_writes_a_png(scored, tmp_path):
    rows, stage2 = scored
    curve = tradeoff_curve(rows["impression_id"], rows["clicked"], rows["quality"], stage2,
                           rows["student_quality"], {"stage2": 0.0, "quality": 2.0}, {"stage2": 1.0, "quality": 1.0},
                           lambdas=[0.0, 0.2, 0.25, 0.4, 1.0])
    chosen = choose_lambda(curve)
    out = plot_tradeoff(curve, chosen, tmp_path / "plots" / "tradeoff.png",
                        baselines={"popularity": (0.45, 0.30), "CTR model": (0.5, 0.4)})
    assert out == tmp_path / "plots" / "tradeoff.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
