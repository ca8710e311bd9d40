"""`newsforge retrain`'s exit status and gate outcomes, from summaries (a real run's is read back in
test_champion_gate.py; the command end to end in test_model_pipeline.py)."""
import pytest
from dagster import AssetCheckSeverity

from newsforge.retrain import GateOutcome, RetrainSummary, outcome_of, summary_markdown


def gate(asset: str, outcome: str) -> GateOutcome:
    return GateOutcome(asset, outcome, outcome == "promoted", True, "2", "1", "2" if outcome == "promoted" else "1",
                       "auc", 0.7, 0.69, 0.6, f"{outcome}: candidate v2 ...")


def summary(status: str, gates: list[GateOutcome], failed: dict | None = None) -> RetrainSummary:
    s = RetrainSummary("run-1", status, ["2019-11-14"], gates=gates, failed=dict(failed or {}))
    s.kept = [g.asset for g in gates if g.outcome == "kept"]
    return s


@pytest.mark.parametrize("status, outcomes, failed, exit_status", [
    ("SUCCESS", [], {}, 0),                                                  # no gate ran
    ("SUCCESS", ["promoted", "promoted"], {}, 0),
    ("SUCCESS", ["promoted", "kept"], {}, 3),                                 # no improvement: not an error
    ("SUCCESS", ["kept", "failed"], {"model_1": "failed: ..."}, 1),           # a non-blocking gate below the floor
    ("FAILURE", ["failed"], {"model_0": "failed: ..."}, 1),                   # a blocking gate below the floor
    ("FAILURE", ["kept"], {"user_encoder": "RuntimeError: ..."}, 1),       # a crash beside a kept champion
    ("CANCELED", [], {}, 1),
])
def test_exit_status(status, outcomes, failed, exit_status):
    s = summary(status, [gate(f"model_{i}", o) for i, o in enumerate(outcomes)], failed)
    assert s.exit_status == exit_status
    title = summary_markdown(s, "", {}).splitlines()[0]
    verdicts = {0: "✅ succeeded", 3: "✅ succeeded, champion kept (model_1)", 1: "❌ failed"}
    assert title.endswith(verdicts[exit_status])


def test_summary_table_shows_the_outcome():
    text = summary_markdown(summary("SUCCESS", [gate("ctr_model", "kept")]), "", {})
    assert "| model | outcome | candidate |" in text and "| ctr_model | kept | v2 | auc | 0.7000 | v1 0.6900 |" in text


@pytest.mark.parametrize("metadata, passed, severity, outcome", [
    ({"outcome": "kept"}, False, AssetCheckSeverity.WARN, "kept"),
    ({"outcome": "failed"}, False, AssetCheckSeverity.ERROR, "failed"),
    ({}, True, AssetCheckSeverity.ERROR, "promoted"),     # recorded before outcomes were
    ({}, False, AssetCheckSeverity.WARN, "kept"),
    ({}, False, AssetCheckSeverity.ERROR, "failed"),
])
def test_outcome_of_an_evaluation(metadata, passed, severity, outcome):
    assert outcome_of(metadata, passed, severity) == outcome
