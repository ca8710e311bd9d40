"""The ``punr_ablation`` asset end to end on the tiny project: materialised through the `dagster` CLI with its
upstream, its MLflow run and tables, and the PUNR table in `newsforge report`."""
import re

import pandas as pd
import pytest
from project import finished_runs, make_project, mlflow_client, run

from training.ctr.punr_ablation import PUNR_VARIANTS
from training.metrics.mind import METRIC_KEYS

DAY = "2019-11-11"   # the tiny project's third day: two days before it (train, early stopping) and histories
TINY = """
ops:
  news_encoder:
    config: {hidden_size: 32, num_layers: 1, max_len: 32, max_epochs: 1, batch_size: 64}
  punr_ablation:
    config:
      max_epochs: 1
      embedding_dim: 8
      mlp_hidden: [16]
      cross_layers: 1
      user_encoder: {hidden_size: 16, num_layers: 1, num_heads: 2, intermediate_size: 32, max_history: 16,
                     num_negatives: 16}
"""
#: A difference cell of punr.md: estimate [low, high], x 100.
INTERVAL = r"[+-]\d+\.\d\d \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\]"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("punr"))
    (root / "tiny.yaml").write_text(TINY)
    run(["dagster", "asset", "materialize", "-m", "orchestration.definitions", "--select", "*punr_ablation",
         "--partition", DAY, "-c", "tiny.yaml"], root)
    return root


def test_the_ablation_logs_its_tables_and_metrics(project):
    client = mlflow_client(project)
    (ablation,) = finished_runs(client, "punr_ablation")
    tags, metrics = ablation.data.tags, ablation.data.metrics
    assert tags["dagster.partition"] == DAY
    assert tags["upstream.news_embeddings.run_id"] == finished_runs(client, "news_embeddings")[0].info.run_id
    assert ablation.data.params["user_encoder.hidden_size"] == "16"
    assert {a.path for a in client.list_artifacts(ablation.info.run_id)} >= {"punr.md", "punr.csv",
                                                                             "punr_differences.csv"}
    text = open(client.download_artifacts(ablation.info.run_id, "punr.md")).read()
    for label in PUNR_VARIANTS:
        assert f"| dcn | {label} |" in text, label   # its Table-2 row
    for label in list(PUNR_VARIANTS)[1:]:            # and its paired intervals against user modelling
        assert re.search(rf"\| dcn \| {re.escape(label)} \| {INTERVAL} \|", text), label
    assert "| popularity_baseline |" in text and "| demo ceiling (Bayes-optimal) |" in text
    assert "_Demo schedule" in text and "a different baseline" in text
    table = pd.read_csv(client.download_artifacts(ablation.info.run_id, "punr.csv"))
    assert list(table["variant"]) == list(PUNR_VARIANTS) and (table["n_seeds"] == 1).all()
    assert table["auc_mean"].between(0, 1).all()
    diffs = pd.read_csv(client.download_artifacts(ablation.info.run_id, "punr_differences.csv"))
    assert len(diffs) == 3 * len(METRIC_KEYS) and (diffs["low"] <= diffs["high"]).all()
    for slug in ("user_modelling", "behaviour_masking", "behaviour_generation", "both"):
        assert 0 <= metrics[f"dcn_{slug}_auc_mean"] <= 1, slug
    stored = pd.read_parquet(project / ".newsforge" / "assets" / "punr_ablation" / DAY / "table.parquet")
    assert list(stored["variant"]) == list(PUNR_VARIANTS)


def test_the_report_shows_the_punr_table(project):
    out = run(["newsforge", "report", "--partition", DAY], project).stdout
    assert "## PUNR ablation: user pre-training variants under the CTR models" in out
    assert "| dcn | + both |" in out and "PUNR published arm" in out


def test_variants_are_labels_of_the_published_arms():
    from assets.punr import PunrAblationConfig, _variants

    assert list(_variants(PunrAblationConfig().variants)) == list(PUNR_VARIANTS)
    assert _variants(["+ both", "user modelling"]) == {"+ both": PUNR_VARIANTS["+ both"],
                                                       "user modelling": PUNR_VARIANTS["user modelling"]}
    with pytest.raises(ValueError, match=r"variants=.*unknown \['span'\]"):
        _variants(["user modelling", "span"])
    with pytest.raises(ValueError, match="each a distinct label"):
        _variants(["user modelling", "user modelling"])
