"""The gate criteria and outcomes as plain decisions (the registry side is covered in test_champion_gate.py)."""
import pytest
from dagster import AssetCheckSeverity

from orchestration import champion_gate
from orchestration.champion_gate import (
    BeatsFloorByInterval,
    BeatsOnMetric,
    KeepsClicksGainsQuality,
    _range_check_result,
    decide,
    gate_check_spec,
)

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
        False, "not above the champion (a tie is not a win)")
    assert crit.judge({"auc": 0.71}, {"auc": 0.7}, {"auc": 0.6}, "floor")[0]


def decision(monkeypatch, criterion, candidate, champion, floor):
    """``decide`` for candidate v3 against champion v2 (None: no champion), the registry stubbed out."""
    monkeypatch.setattr(champion_gate, "alias_version", lambda name, alias: "2" if champion is not None else None)
    return decide("m", "3", {"3": candidate, "2": champion}.__getitem__, floor, criterion=criterion)


AUC = BeatsOnMetric("auc")
AUC_FLOOR = {"auc": 0.60}


@pytest.mark.parametrize("criterion, floor, candidate, champion, outcome, head", [
    (AUC, AUC_FLOOR, {"auc": 0.7012}, {"auc": 0.7012}, "kept",
     "kept the champion: candidate v3 auc 0.7012 vs champion v2 auc 0.7012, popularity_baseline floor auc 0.6000; "
     "not above the champion (a tie is not a win); rule: promoted when its auc on the gate slice is strictly above"),
    (AUC, AUC_FLOOR, {"auc": 0.6}, {"auc": 0.5}, "failed",            # below the floor, even if above the champion
     "failed: candidate v3 auc 0.6000 vs champion v2 auc 0.5000, popularity_baseline floor auc 0.6000; not above"),
    (AUC, AUC_FLOOR, {"auc": 0.59}, None, "failed", "failed: candidate v3 auc 0.5900 vs no champion yet"),
    (AUC, AUC_FLOOR, {"auc": 0.71}, {"auc": 0.7012}, "promoted", "promoted: candidate v3 auc 0.7100 vs champion v2"),
    (AUC, AUC_FLOOR, {"auc": 0.61}, None, "promoted", "promoted: candidate v3 auc 0.6100 vs no champion yet"),
    (CRIT, FLOOR, {"reco_dcg5": 0.65, "click_ndcg5": 0.2899}, CHAMP, "kept",
     "kept the champion: candidate v3 reco_dcg5 0.6500 click_ndcg5 0.2899 vs champion v2 reco_dcg5 0.6000 "
     "click_ndcg5 0.3000, popularity_baseline floor reco_dcg5 0.4000; loses click_ndcg5 by more than 0.01"),
    (CRIT, FLOOR, {"reco_dcg5": 0.60, "click_ndcg5": 0.30}, CHAMP, "promoted", "promoted: "),  # a quality tie passes
    (CRIT, FLOOR, {"reco_dcg5": 0.40, "click_ndcg5": 0.50}, CHAMP, "failed", "failed: "),
])
def test_three_outcomes_and_their_check_results(monkeypatch, criterion, floor, candidate, champion, outcome, head):
    d = decision(monkeypatch, criterion, candidate, champion, floor)
    assert d.outcome == outcome and d.passed == (outcome == "promoted")
    assert d.above_floor == (outcome != "failed") == criterion.clears_floor(candidate, floor)
    assert d.new_champion == ("3" if outcome == "promoted" else "2" if champion is not None else None)
    result = d.check_result()
    assert result.passed == (outcome == "promoted") and result.description == d.reason
    assert result.severity == (AssetCheckSeverity.WARN if outcome == "kept" else AssetCheckSeverity.ERROR)
    assert result.description.startswith(head), result.description
    assert "\n" not in result.description and "; rule: promoted when its " in result.description
    assert result.metadata["outcome"].value == outcome


def test_backfill_check_is_its_worst_day(monkeypatch):
    promoted = decision(monkeypatch, AUC, {"auc": 0.71}, {"auc": 0.70}, AUC_FLOOR)
    kept = decision(monkeypatch, AUC, {"auc": 0.70}, {"auc": 0.70}, AUC_FLOOR)
    failed = decision(monkeypatch, AUC, {"auc": 0.50}, {"auc": 0.70}, AUC_FLOOR)
    days = ["2019-11-12", "2019-11-13", "2019-11-14"]
    cases = [((promoted, promoted, promoted), True, "promoted"), ((promoted, kept, promoted), False, "kept"),
             ((kept, failed, promoted), False, "failed"), ((failed, kept, kept), False, "failed")]
    for decisions, passed, outcome in cases:
        by_day = dict(zip(days, decisions))
        result = _range_check_result(decisions[-1], by_day)
        assert result.passed is passed and result.metadata["outcome"].value == outcome, (decisions, result)
        assert result.severity == (AssetCheckSeverity.WARN if outcome == "kept" else AssetCheckSeverity.ERROR)
        assert result.description.startswith(f"{outcome}: 3 days gated in date order; ")
        for name in ("failed", "kept", "promoted"):
            on = [day for day, d in by_day.items() if d.outcome == name]
            assert result.metadata[f"days_{name}"].value == ", ".join(on)
            assert (f"{name} on {', '.join(on)}" in result.description) == bool(on)
        assert result.description.endswith(f"Last day: {decisions[-1].reason}")
        table = result.metadata["backfill"].value
        assert all(f"| {day} | v3 | auc |" in table and f"| {d.outcome} |" in table for day, d in by_day.items())


def test_check_spec_states_the_criterion():
    spec = gate_check_spec("ranking_student", CRIT)
    assert spec.blocking and "not below the champion's" in spec.description and "0.01" in spec.description


RECALL = BeatsFloorByInterval("recall_at_30")
RECALL_FLOOR = {"recall_at_30": 0.05}


@pytest.mark.parametrize("candidate, champion, passed, verdict", [
    # the mean is above the floor's but the interval reaches below 0: not a win over the floor
    ({"recall_at_30": 0.08, "recall_at_30_vs_floor_low": -0.01, "recall_at_30_vs_floor_high": 0.07}, None, False,
     "not above the warm start floor (recall_at_30 minus the warm start's: 95 % interval [-0.0100, +0.0700]"),
    ({"recall_at_30": 0.08, "recall_at_30_vs_floor_low": 0.01, "recall_at_30_vs_floor_high": 0.05}, None, True,
     "[+0.0100, +0.0500]; champion moves"),
    ({"recall_at_30": 0.08, "recall_at_30_vs_floor_low": 0.01, "recall_at_30_vs_floor_high": 0.05},
     {"recall_at_30": 0.08}, False, "not above the champion (a tie is not a win)"),
])
def test_beats_floor_by_interval(candidate, champion, passed, verdict):
    ok, text = RECALL.judge(candidate, champion, RECALL_FLOOR, "warm start")
    assert ok is passed and verdict in text


def test_beats_floor_by_interval_needs_the_interval():
    with pytest.raises(KeyError, match="recall_at_30_vs_floor_low"):
        RECALL.judge({"recall_at_30": 0.9}, None, RECALL_FLOOR, "warm start")
