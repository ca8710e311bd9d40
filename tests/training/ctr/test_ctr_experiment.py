"""The partition's train / early-stopping / test split: disjoint, and the test day is never seen before it."""
import pandas as pd
import pytest

from training.ctr.experiment import CtrSplit, gate_metrics, split_for_day
from training.data.prepared import BehaviorLog

DAYS = ["2019-11-10", "2019-11-11", "2019-11-12", "2019-11-13", "2019-11-14"]


def _log() -> BehaviorLog:
    ids = range(len(DAYS) * 10)
    histories = pd.DataFrame({"impression_id": list(ids), "day": [DAYS[i // 10] for i in ids]})
    impressions = histories.loc[histories.index.repeat(3)].reset_index(drop=True)
    return BehaviorLog(impressions, histories)


def _ids(log: BehaviorLog) -> set[int]:
    return set(log.histories["impression_id"])


def test_chronological_split_early_stops_on_the_last_window_day():
    split = split_for_day(_log(), "2019-11-14", window_days=3)
    assert split.train_days == ["2019-11-11", "2019-11-12"] and split.valid_days == ["2019-11-13"]
    assert set(split.test.histories["day"]) == {"2019-11-14"}
    assert set(split.valid.histories["day"]) == {"2019-11-13"}
    assert not (_ids(split.train) & _ids(split.valid) or _ids(split.train) & _ids(split.test)
                or _ids(split.valid) & _ids(split.test))


def test_random_split_keeps_the_test_day_out():
    split = split_for_day(_log(), "2019-11-14", window_days=4, split="random", seed=3)
    assert set(split.test.histories["day"]) == {"2019-11-14"}
    assert "2019-11-14" not in set(split.train.histories["day"]) | set(split.valid.histories["day"])
    assert len(_ids(split.valid)) == 8 and len(_ids(split.train)) == 32 and not _ids(split.train) & _ids(split.valid)
    assert len(split.valid.impressions) == 3 * 8  # candidates follow their impression


def test_split_errors_name_the_problem():
    with pytest.raises(ValueError, match="window_days must be >= 2"):
        split_for_day(_log(), "2019-11-14", window_days=1)
    with pytest.raises(ValueError, match="at least 2 days before 2019-11-11"):
        split_for_day(_log(), "2019-11-11", window_days=3)
    with pytest.raises(ValueError, match="no impressions on 2019-11-20"):
        split_for_day(_log(), "2019-11-20", window_days=3)


def test_table2_shows_a_spread_only_over_several_seeds():
    from training.ctr.experiment import table2_markdown
    from training.metrics.mind import METRIC_KEYS

    def row(n_seeds, std):
        return {"model": "dcn", "variant": "none", "variant_label": "base", "n_seeds": n_seeds,
                **{f"{m}_mean": 0.5 for m in METRIC_KEYS}, **{f"{m}_std": std for m in METRIC_KEYS}}

    one = table2_markdown(pd.DataFrame([row(1, 0.0)]), {}).splitlines()[2]
    three = table2_markdown(pd.DataFrame([row(3, 0.01)]), {}).splitlines()[2]
    assert one == "| dcn | base | " + " | ".join(["0.5000"] * len(METRIC_KEYS)) + " |  |"
    assert three.count("0.5000 ± 0.0100") == len(METRIC_KEYS)


def test_table2_shows_the_difference_to_base_with_its_interval():
    from training.ctr.experiment import table2_markdown
    from training.metrics.mind import METRIC_KEYS

    base = {"model": "dcn", "variant": "none", "variant_label": "base", "n_seeds": 3,
            **{f"{m}_mean": 0.5 for m in METRIC_KEYS}, **{f"{m}_std": 0.01 for m in METRIC_KEYS}}
    np_row = {**base, "variant": "news", "variant_label": "+NP", "auc_diff": 0.0123, "auc_diff_low": -0.002,
              "auc_diff_high": 0.0261, "n_test_impressions": 1800}
    text = table2_markdown(pd.DataFrame([base, np_row]), {})
    assert "| dcn | +NP |" in text and text.splitlines()[3].endswith("| +0.0123 [-0.0020, +0.0261] |")
    assert "over 3 seed(s)" in text and "1,800 test impressions" in text


def test_gate_metrics_are_mind_metrics_of_the_test_day_and_name_a_version_with_non_finite_scores():
    impressions = pd.DataFrame({"impression_id": [1, 1, 1, 2, 2], "label": [1, 0, 0, 0, 1]})
    test = BehaviorLog(impressions, pd.DataFrame({"impression_id": [1, 2], "day": DAYS[-1]}))
    split = CtrSplit(_log(), _log(), test, DAYS[:2], DAYS[2:3])
    best = gate_metrics(split, [0.9, 0.2, 0.1, 0.3, 0.7], "ctr_model", "3")
    assert best["auc"] == best["mrr"] == best["ndcg5"] == 1.0 and best["n_impressions"] == 2
    worst = gate_metrics(split, [0.1, 0.2, 0.9, 0.7, 0.3], "ctr_model", "3")
    assert worst["auc"] == 0.0 and worst["mrr"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    with pytest.raises(ValueError, match="ctr_model version 3 returned 2 non-finite scores"):
        gate_metrics(split, [0.1, float("nan"), 0.9, float("inf"), 0.3], "ctr_model", "3")
