"""The gate criteria as plain decisions (the registry side is covered in test_champion_gate.py)."""
import pytest

from orchestration.champion_gate import BeatsOnMetric, KeepsClicksGainsQuality, gate_check_spec

FLOOR = {"reco_dcg5": 0.40, "click_ndcg5": 0.20}
CHAMP = {"reco_dcg5": 0.60, "click_ndcg5": 0.30}
CRIT = KeepsClicksGainsQuality(click_tolerance=0.01)


@pytest.mark.parametrize("candidate, champion, passed, verdict", [
    ({"reco_dcg5": 0.61, "click_ndcg5": 0.30}, CHAMP, True, "champion moves"),
    ({"reco_dcg5": 0.60, "click_ndcg5": 0.30}, CHAMP, True, "champion moves"),            # no quality loss is enough
    ({"reco_dcg5": 0.65, "click_ndcg5": 0.2901}, CHAMP, True, "champion moves"),          # click loss within tolerance
    ({"reco_dcg5": 0.65, "click_ndcg5": 0.2899}, CHAMP, False, "loses click_ndcg5 by more than 0.01"),
    ({"reco_dcg5": 0.5999, "click_ndcg5": 0.40}, CHAMP, False, "loses reco_dcg5 to the champion"),
    ({"reco_dcg5": 0.40, "click_ndcg5": 0.40}, None, False, "not above the popularity_baseline floor"),
    ({"reco_dcg5": 0.41, "click_ndcg5": 0.0}, None, True, "champion moves"),               # first version: floor only
])
def test_keeps_clicks_gains_quality(candidate, champion, passed, verdict):
    ok, text = CRIT.judge(candidate, champion, FLOOR, "popularity_baseline")
    assert ok is passed and verdict in text


def test_beats_on_metric_tie_is_not_a_win():
    crit = BeatsOnMetric("auc")
    assert crit.judge({"auc": 0.7}, {"auc": 0.7}, {"auc": 0.6}, "floor") == (
        False, "not above the champion (a tie is not a win): champion stays")
    assert crit.judge({"auc": 0.71}, {"auc": 0.7}, {"auc": 0.6}, "floor")[0]


def test_check_spec_states_the_criterion():
    spec = gate_check_spec("ranking_student", CRIT)
    assert spec.blocking and "not below the champion's" in spec.description and "0.01" in spec.description
