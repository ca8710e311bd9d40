"""The ranker's MLflow pyfunc, registered in a tmp sqlite store: online ``related`` equals offline ``predict``."""
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
from builders.ltr import STAGE2_FEATURES, register_tiny_ranker, tiny_related
from mlflow import MlflowClient

from serving.ltr_model import RankerPyfunc, log_ranker, related_frame


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    root = tmp_path_factory.mktemp("ranker_registry")
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        MlflowClient().search_experiments()  # create the store's tables first: only registration is timed
        started = time.perf_counter()
        version = register_tiny_ranker(root / "out")
        seconds = time.perf_counter() - started
        model = mlflow.pyfunc.load_model("models:/ranker@champion")
        yield version, model, seconds, root
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])


def test_register_tiny_ranker_sets_the_alias_quickly_under_tmp(registered):
    version, _, seconds, root = registered
    assert str(MlflowClient().get_model_version_by_alias("ranker", "champion").version) == version
    assert seconds < 15, seconds
    assert any((root / "out" / "mlartifacts").rglob("stage2.txt"))


def test_related_equals_predict_on_the_same_rows(registered):
    _, model, _, _ = registered
    pyfunc = model.unwrap_python_model()
    assert isinstance(pyfunc, RankerPyfunc) and len(pyfunc.triggers) == 50
    lam = pyfunc.default_lambda
    assert 0.0 <= lam <= 1.0
    for trigger in sorted(pyfunc.triggers)[:10]:
        rows = pyfunc.candidate_rows(trigger)
        offline = model.predict(rows)
        assert list(offline.columns) == ["stage1", "stage2", "score"] and len(offline) == 30
        online = pyfunc.related(trigger, k=30)
        scores = np.array([item["score"] for item in online])
        assert np.all(np.diff(scores) <= 0)
        order = np.argsort(-offline["score"].to_numpy(), kind="stable")
        assert [item["news_id"] for item in online] == rows["news_id"].iloc[order].tolist()
        np.testing.assert_allclose(scores, offline["score"].to_numpy()[order], rtol=0, atol=1e-6)
        np.testing.assert_allclose([item["click"] for item in online], offline["stage2"].to_numpy()[order], atol=1e-6)
        np.testing.assert_allclose([item["quality"] for item in online],
                                   rows["student_quality"].to_numpy()[order], atol=1e-6)
        assert [item["news_id"] for item in pyfunc.related(trigger)] == [item["news_id"] for item in online[:5]]


def test_lambda_moves_the_ranking_the_same_way_online_and_offline(registered):
    _, model, _, _ = registered
    pyfunc = model.unwrap_python_model()
    trigger = sorted(pyfunc.triggers)[3]
    rows = pyfunc.candidate_rows(trigger)
    for lam in (0.0, 0.6, 1.0):
        offline = model.predict(rows, params={"lambda": lam})["score"].to_numpy()
        online = pyfunc.related(trigger, k=30, lam=lam)
        np.testing.assert_allclose([item["score"] for item in online], np.sort(offline)[::-1], atol=1e-6)
    by_quality = [item["news_id"] for item in pyfunc.related(trigger, k=30, lam=1.0)]
    assert by_quality == rows["news_id"].iloc[np.argsort(-rows["student_quality"].to_numpy(), kind="stable")].tolist()


def test_unknown_trigger_and_bad_arguments(registered):
    pyfunc = registered[1].unwrap_python_model()
    trigger = next(iter(pyfunc.triggers))
    with pytest.raises(KeyError, match="N-unknown"):
        pyfunc.related("N-unknown")
    for k in (0, -1, 2.5, True, "5"):
        with pytest.raises(ValueError, match="k must be an integer >= 1"):
            pyfunc.related(trigger, k=k)
    for lam in (-0.01, 1.01, float("nan"), "x"):
        with pytest.raises(ValueError, match="lambda must be"):
            pyfunc.related(trigger, lam=lam)
    assert len(pyfunc.related(trigger, k=1000)) == 30
    with pytest.raises(ValueError, match=r"input lacks column\(s\) \['ctr_score'\]"):
        pyfunc.predict(None, pyfunc.candidate_rows(trigger).drop(columns="ctr_score"))


def test_related_takes_well_under_a_millisecond(registered):
    pyfunc = registered[1].unwrap_python_model()
    triggers = sorted(pyfunc.triggers)
    for trigger in triggers:
        pyfunc.related(trigger)
    timings = []
    for i in range(2000):
        started = time.perf_counter()
        pyfunc.related(triggers[i % len(triggers)], k=5)
        timings.append(time.perf_counter() - started)
    assert np.median(timings) < 2e-4, np.median(timings)


def test_related_frame_and_log_ranker_check_their_inputs(registered, tmp_path):
    related = tiny_related(n_triggers=2, n_candidates=3)
    with pytest.raises(ValueError, match=r"\(trigger_id, news_id\) pairs must be unique: \(T0, "):
        related_frame(["T0"] * 2, [related["news_id"][0]] * 2, np.zeros((2, len(STAGE2_FEATURES))), STAGE2_FEATURES)
    with pytest.raises(ValueError, match=r"features must have shape \(6, 26\)"):
        related_frame(related["trigger_id"], related["news_id"], np.zeros((6, 3)), STAGE2_FEATURES)
    ranker = registered[1].unwrap_python_model().ranker
    with pytest.raises(ValueError, match=r"related lacks column\(s\) \['ctr_score'\]"):
        log_ranker(ranker, related.drop(columns="ctr_score"), tmp_path)
    with pytest.raises(ValueError, match=r"related: \(trigger_id, news_id\) pairs must be unique"):
        log_ranker(ranker, pd.concat([related, related.iloc[:1]]), tmp_path)
    artifacts = log_ranker(ranker, related, tmp_path / "a", store_version="v7")
    loaded = RankerPyfunc().load(artifacts["ranker"], artifacts["related"])
    assert loaded.store_version == "v7" and loaded.triggers == frozenset({"T0", "T1"})
    stored = pd.read_parquet(artifacts["related"])
    assert stored.columns.tolist() == ["trigger_id", "news_id", *STAGE2_FEATURES, "stage2_score"]
    stored["stage2_score"] += 0.01  # scores that no longer match the booster are refused
    stored.to_parquet(tmp_path / "tampered.parquet")
    with pytest.raises(ValueError, match="stored stage2_score does not match the stage-2 booster"):
        RankerPyfunc().load(artifacts["ranker"], tmp_path / "tampered.parquet")
    related.to_parquet(tmp_path / "plain.parquet")
    without = RankerPyfunc().load(artifacts["ranker"], tmp_path / "plain.parquet")  # no stored scores: scored here
    assert without.related("T1", k=3) == loaded.related("T1", k=3)
