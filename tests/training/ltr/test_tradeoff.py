"""The λ trade-off curve against direct metric calls, parts by day role (the selection day never reaches the
stages), the protocol's one-SE choice of λ, the report day's decision, and the plot."""
import numpy as np
import pandas as pd
import pytest
from builders.ltr import DAY_ROLES, SHARED_DAY_ROLES, ranking_rows_with_parts, synthetic_ranking_rows

import training.ltr.stages as stages
from training.ltr.stages import RankerConfig
from training.ltr.tradeoff import (
    LAMBDAS,
    choose_lambda,
    curve_point,
    fit_ranker,
    per_impression,
    plot_tradeoff,
    ranker_curve,
    row_parts,
    select_lambda,
    split_parts,
    tradeoff_curve,
    tradeoff_decision,
)
from training.metrics.intervals import bootstrap
from training.metrics.quality import (
    click_ndcg,
    quality_filtered_click_ndcg,
    quality_filtered_click_ndcg_per_group,
    reco_dcg,
)

FAST = RankerConfig(num_leaves=7, n_estimators=30, min_data_in_leaf=10, threads=1, early_stopping_rounds=10)


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


def test_curve_point_reads_one_lambda_off_the_curve():
    lam = np.round(np.arange(0, 1.0001, 0.05), 2)
    curve = pd.DataFrame({"lam": lam, "reco_dcg5": lam / 2, "qf_click_ndcg5": 1 - lam})
    at = curve_point(curve, 0.1 + 0.2)                   # 0.30000000000000004 is the grid's 0.3
    assert at["lam"] == 0.3 and at["reco_dcg5"] == 0.15 and at["qf_click_ndcg5"] == pytest.approx(0.7)
    assert curve_point(curve, 0.0)["reco_dcg5"] == 0.0
    with pytest.raises(ValueError, match=r"λ = 0.33 is not on the curve \(λ from 0.0 to 1.0\)"):
        curve_point(curve, 0.33)


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


def test_one_se_rule_on_a_crafted_curve_takes_the_rightmost_lambda_within_it():
    curve = pd.DataFrame({"lam": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
                          "qf_click_ndcg5": [0.40, 0.50, 0.47, 0.46, 0.44, 0.30]})
    at_best = np.r_[np.zeros(50), np.ones(50)]          # the best point's per-impression values: mean .5, SE ≈ .05
    se = bootstrap(at_best).std_error
    assert 0.04 < se < 0.06
    assert choose_lambda(curve, se) == 0.6               # .46 is within one SE of .50, .44 is not
    assert choose_lambda(curve, 0.0) == 0.2              # tolerance 0: the argmax


def test_row_parts_follow_the_day_roles():
    days = ["2019-11-10", "2019-11-11", "2019-11-12", "2019-11-13", "2019-11-14"]
    assert row_parts(days, **DAY_ROLES).tolist() == ["train", "train", "valid", "selection", "test"]
    # a window too short for a selection day: the early-stopping day keeps its first use, no selection part
    assert row_parts(days[:4], **SHARED_DAY_ROLES).tolist() == ["train", "train", "valid", "test"]
    one_day = {"fit_days": ["2019-11-10"], "early_stopping_day": "2019-11-10", "selection_day": "2019-11-10",
               "test_day": "2019-11-11"}
    assert row_parts(days[:2], **one_day).tolist() == ["train", "test"]
    with pytest.raises(ValueError, match="day: row 4 is '2019-11-14', a day of no role"):
        row_parts(days, **SHARED_DAY_ROLES)


def test_split_parts_refuses_a_day_in_two_parts():
    rows = ranking_rows_with_parts(60, 5)
    assert split_parts(rows).lambda_part == "selection" and split_parts(rows).lambda_held_out
    no_selection = split_parts(rows[rows["part"] != "selection"])
    assert no_selection.lambda_part == "valid" and not no_selection.lambda_held_out    # λ on valid, not held out
    bad = rows.copy()
    selection_day = bad.index[bad["day"] == "2019-11-13"]
    bad.loc[selection_day[::2], "part"] = "train"
    with pytest.raises(ValueError, match="day 2019-11-13 is in part 'train' and in part 'selection'"):
        split_parts(bad)
    with pytest.raises(ValueError, match="no 'train' row"):
        split_parts(rows[rows["part"] != "train"])


@pytest.fixture(scope="module")
def seen_by_stages():
    """A ranker fitted on rows of every part, and the impression ids each stage trained and early-stopped on."""
    rows = ranking_rows_with_parts(300, 15, seed=1)
    seen = {"train": set(), "valid": set()}
    original = stages.train_stage

    def spy(X, labels, groups, valid=None, config=RankerConfig(), feature_names=None):
        seen["train"].update(np.asarray(groups).tolist())
        if valid is not None:
            seen["valid"].update(np.asarray(valid[2]).tolist())
        return original(X, labels, groups, valid, config, feature_names)

    stages.train_stage = spy
    try:
        ranker, choice = fit_ranker(rows, FAST)
    finally:
        stages.train_stage = original
    return rows, ranker, choice, seen


def test_the_selection_day_is_never_fitted_nor_early_stopped_on(seen_by_stages):
    rows, ranker, choice, seen = seen_by_stages
    ids = {p: set(rows.loc[rows["part"] == p, "impression_id"]) for p in ("train", "valid", "selection", "test")}
    assert seen["train"] and seen["train"] <= ids["train"]
    assert seen["valid"] and seen["valid"] <= ids["valid"]
    assert not (seen["train"] | seen["valid"]) & (ids["selection"] | ids["test"])
    assert choice.days == ("2019-11-13",) and choice.held_out and choice.n_impressions == len(ids["selection"])
    assert ranker.meta["fit_days"] == DAY_ROLES["fit_days"] and ranker.meta["early_stopping_days"] == ["2019-11-12"]
    assert ranker.meta["lambda_day_held_out"] is True and ranker.lam == choice.lam


def test_select_lambda_uses_one_bootstrap_se_at_the_curves_maximum(seen_by_stages):
    rows, ranker, choice, _ = seen_by_stages
    selection = rows[rows["part"] == "selection"].reset_index(drop=True)
    curve = ranker_curve(ranker, selection)
    pd.testing.assert_frame_equal(choice.curve, curve)
    assert choice.best_lam == choose_lambda(curve, 0.0)
    scores = ranker.combine(ranker.score_stage2(selection[ranker.stage2_features].to_numpy(np.float32)),
                            selection["student_quality"], choice.best_lam)
    at_best = quality_filtered_click_ndcg_per_group(selection["impression_id"], selection["clicked"],
                                                    selection["quality"], scores, 5)
    se = bootstrap(at_best[np.isfinite(at_best)]).std_error
    assert choice.std_error == pytest.approx(se) and choice.tolerance == choice.std_error and se > 0
    assert choice.lam == choose_lambda(curve, se) and choice.lam >= choice.best_lam
    assert select_lambda(ranker, selection, tolerance=0.0).lam == choice.best_lam
    assert select_lambda(ranker, selection, tolerance=1.0).lam == 1.0
    with pytest.raises(ValueError, match="lambda_tolerance must be >= 0"):
        select_lambda(ranker, selection, tolerance=-0.01)


def test_a_short_window_chooses_lambda_on_the_early_stopping_day_and_says_so():
    rows = ranking_rows_with_parts(300, 15, seed=2, roles=SHARED_DAY_ROLES)
    assert "selection" not in set(rows["part"])
    ranker, choice = fit_ranker(rows, FAST)
    assert choice.days == ("2019-11-12",) and not choice.held_out
    assert ranker.meta["lambda_day_held_out"] is False and "not held out" in ranker.meta["lambda_rule"]


def test_per_impression_values_average_to_the_curve(seen_by_stages):
    rows, ranker, _, _ = seen_by_stages
    test = rows[rows["part"] == "test"].reset_index(drop=True)
    curve = ranker_curve(ranker, test).set_index("lam")
    values = per_impression(ranker, test, 0.35)
    assert values["reco_dcg5"].size == test["impression_id"].nunique()
    assert values["reco_dcg5"].mean() == pytest.approx(curve.loc[0.35, "reco_dcg5"])
    assert np.nanmean(values["click_ndcg5"]) == pytest.approx(curve.loc[0.35, "click_ndcg5"])


def _arms(n=400, reco_gain=0.05, click_change=0.0, seed=0):
    rng = np.random.default_rng(seed)
    reco0 = rng.uniform(0.3, 0.7, n)
    click0 = np.where(rng.random(n) < 0.3, np.nan, rng.uniform(0, 1, n))
    zero = {"reco_dcg5": reco0, "click_ndcg5": click0}
    at = {"reco_dcg5": reco0 + reco_gain + rng.normal(0, 0.01, n), "click_ndcg5": click0 + click_change}
    return at, zero


def test_decision_works_with_a_quality_gain_and_clicks_kept():
    at, zero = _arms()
    decision = tradeoff_decision([at, at], [zero, zero], [0.3, 0.4])
    assert decision.works and decision.reco_gain.low > 0
    assert decision.n_impressions == 400 and decision.n_click_impressions == int(np.isfinite(zero["click_ndcg5"]).sum())
    se = 100 * decision.click_std_error
    assert decision.text() == (f"works: λ = 0.35 ± 0.07 > 0; ΔRecoDCG@5 {decision.reco_gain.format(100)} above 0; "
                               f"ΔClickNDCG@5 +0.00 [+0.00, +0.00] within one SE ({se:.2f})")
    table = decision.markdown([1, 2], "2019-11-14")
    assert "400 labelled impressions" in table and "seeds 1, 2" in table and "paired bootstrap" in table
    assert "| 0.35 ± 0.07 |" in table and table.count("works") == 2


def test_decision_does_not_work_when_clicks_drop_or_lambda_is_zero():
    at, zero = _arms(click_change=-0.2)
    lost = tradeoff_decision([at], [zero], [0.5])
    assert not lost.works and lost.text().startswith("does not work: λ = 0.50 > 0; ΔRecoDCG@5")
    assert "ΔClickNDCG@5 -20.00 [-20.00, -20.00] loses more than one SE" in lost.text()
    _, zero = _arms()
    none = tradeoff_decision([zero], [zero], [0.0])
    assert none.verdict == "does not work"
    assert none.text().startswith(
        "does not work: λ = 0.00 (λ = 0 for some seed); ΔRecoDCG@5 +0.00 [+0.00, +0.00] contains 0")
    at, zero = _arms(reco_gain=-0.05)
    assert "below 0" in tradeoff_decision([at], [zero], [0.2]).text()
    with pytest.raises(ValueError, match="one entry per seed"):
        tradeoff_decision([at], [zero, zero], [0.2])
    no_click = {**zero, "click_ndcg5": np.full(400, np.nan)}
    with pytest.raises(ValueError, match="no impression has a click"):
        tradeoff_decision([no_click], [no_click], [0.2])
