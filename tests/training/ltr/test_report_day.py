"""The ranker on the report day: the labelled slice, a served version's metrics, the fixed baselines, the per-seed
retraining against click-only and quality-only ranking, and the trade-off table."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
from builders.ltr import SHARED_DAY_ROLES, ranking_rows_with_parts

from training.ltr.report_day import (
    CHOSEN,
    CLICK_ONLY,
    QUALITY_ONLY,
    STAGE1_ALONE,
    baseline_rows,
    report_rows,
    retrain_per_seed,
    served_metrics,
    tradeoff_markdown,
)
from training.ltr.stages import RankerConfig
from training.ltr.tradeoff import fit_ranker, per_impression, tradeoff_decision
from training.quality.evaluation import metric_row, quality_ranking_metrics, summarise

FAST = RankerConfig(num_leaves=7, n_estimators=20, min_data_in_leaf=10, threads=1, early_stopping_rounds=5)


def _rows():
    """Three test impressions (one with an unlabelled pair) and one train impression."""
    return pd.DataFrame({"impression_id": [1, 1, 2, 2, 3, 3, 4, 4], "part": ["test"] * 6 + ["train"] * 2,
                         "quality": [3, 1, 2, np.nan, 0, 4, 2, 2], "clicked": [1, 0, 0, 1, 1, 0, 1, 0],
                         "candidate_id": list("abcdefgh"), "trigger_id": "T",
                         "ctr_score": [0.2, np.nan, 0.5, 0.1, np.nan, 0.3, 0.9, 0.1]})


def test_report_rows_are_the_labelled_test_impressions_sampled():
    rows = _rows()
    assert report_rows(rows, 0, 0)["impression_id"].tolist() == [1, 1, 3, 3]
    sampled = report_rows(rows, 1, 0)
    assert sampled["impression_id"].nunique() == 1 and set(sampled["impression_id"]) <= {1, 3}
    with pytest.raises(ValueError, match="no partition-day impression has quality labels"):
        report_rows(rows[rows["impression_id"] == 2], 0, 0)


class Served:
    """A registered ranker's pyfunc stand-in: scores ``news_id`` by a fixed table."""

    def __init__(self, scores):
        self.scores = scores

    def predict(self, frame):
        assert "news_id" in frame.columns and "candidate_id" not in frame.columns
        return pd.DataFrame({"news_id": frame["news_id"], "score": frame["news_id"].map(self.scores)})


def test_served_metrics_score_with_the_registered_model_and_refuse_non_finite_scores():
    rows = report_rows(_rows(), 0, 0)
    scores = {"a": 0.1, "b": 0.9, "e": 0.7, "f": 0.2}
    expected = quality_ranking_metrics(rows, rows["candidate_id"].map(scores).to_numpy())
    assert served_metrics(Served(scores), rows, "3") == expected
    assert expected["reco_dcg5"] < quality_ranking_metrics(rows, rows["quality"].to_numpy())["reco_dcg5"]
    with pytest.raises(ValueError, match="ranker version 3 returned 1 non-finite scores"):
        served_metrics(Served({**scores, "e": np.nan}), rows, "3")


def test_baselines_are_popularity_and_the_ctr_model_with_unknown_users_last():
    rows = report_rows(_rows(), 0, 0)
    popularity = np.array([0.4, 0.5, 0.2, 0.1])   # the worse candidate first in both impressions
    pop, ctr = baseline_rows(rows, popularity)
    assert pop == metric_row("popularity", quality_ranking_metrics(rows, popularity))
    assert ctr == metric_row("CTR model alone", quality_ranking_metrics(rows, np.array([0.2, -1.0, -1.0, 0.3])))
    assert ctr["reco_dcg5"] > pop["reco_dcg5"]


@pytest.fixture(scope="module")
def features():
    return ranking_rows_with_parts(150, 12, seed=4)


@pytest.fixture(scope="module")
def runs(features):
    lines = []
    rows = report_rows(features, 0, 0)
    return rows, retrain_per_seed(features, rows, FAST, None, [3, 5], log=lines.append), lines


def test_each_seed_retrains_both_stages_and_measures_four_rankers(features, runs):
    rows, out, lines = runs
    assert [(r["ranker"], r["seed"]) for r in out.rows] == [
        (name, seed) for seed in (3, 5) for name in (STAGE1_ALONE, CLICK_ONLY, QUALITY_ONLY, CHOSEN)]
    model, _ = fit_ranker(features, dataclasses.replace(FAST, seed=5))
    assert out.lambdas[1] == model.lam and out.held_out
    chosen = out.rows[-1]
    stage2 = model.score_stage2(rows[model.stage2_features].to_numpy(np.float32))
    expected = quality_ranking_metrics(rows, model.combine(stage2, rows["student_quality"], model.lam))
    assert chosen == {**metric_row(CHOSEN, expected), "seed": 5, "lambda": model.lam}
    assert np.isnan(out.rows[4]["lambda"]) and out.rows[5]["lambda"] == 0.0 and out.rows[6]["lambda"] == 1.0
    np.testing.assert_array_equal(out.at_zero[1]["reco_dcg5"], per_impression(model, rows, 0.0)["reco_dcg5"])
    assert out.rows[1]["reco_dcg5"] != out.rows[5]["reco_dcg5"]                      # seeds give other models
    assert len(lines) == 2 and lines[1] == f"seed 5: λ = {model.lam:.2f} ({model.meta['lambda_rule']})"
    assert out.decision() == tradeoff_decision(out.at_lambda, out.at_zero, out.lambdas)


def test_a_short_window_is_not_held_out():
    features = ranking_rows_with_parts(150, 12, seed=4, roles=SHARED_DAY_ROLES)
    rows = report_rows(features, 0, 0)
    assert not retrain_per_seed(features, rows, FAST, None, [1], log=lambda _: None).held_out


def test_tradeoff_markdown_says_what_the_rows_rest_on(runs):
    rows, out, _ = runs
    summary = summarise(out.rows)
    decision = out.decision()
    text = tradeoff_markdown(summary, decision, [3, 5], "2019-11-14", 1234, ["2019-11-13"], True)
    assert text.startswith("Rows: mean ± std over seeds 3, 5; 1,234 labelled impressions of 2019-11-14; "
                           "λ chosen per seed on 2019-11-13 (held out).\n\n")
    assert decision.markdown([3, 5], "2019-11-14") in text and text.endswith("\n")
    assert f"| {CLICK_ONLY} |" in text and f"| {QUALITY_ONLY} |" in text
    short = tradeoff_markdown(summary, decision, [3], "2019-11-14", 5, [], False)
    assert "on no day (NOT held out: the window is too short for a selection day)" in short
