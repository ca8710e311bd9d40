"""The default demo data end to end (slow): PREC vectors must lift every CTR model well above its ID-only base."""
import pandas as pd
import pytest

from project import REPO_ROOT, make_project, run

DAY = "2019-11-14"
CONFIG = """
ops:
  ctr_evaluation:
    config: {seeds: [1]}
"""


@pytest.mark.slow
def test_table2_on_default_demo(tmp_path):
    root = make_project(tmp_path, params=(REPO_ROOT / "params.yaml").read_text())
    (root / "run.yaml").write_text(CONFIG)
    run(["dagster", "asset", "materialize", "-m", "orchestration.definitions", "--select", "*ctr_evaluation",
         "--partition", DAY, "-c", "run.yaml"], root, timeout=1800)
    table = pd.read_parquet(root / ".newsforge" / "assets" / "ctr_evaluation" / DAY / "table.parquet")
    auc = table.set_index(["model", "variant"])["auc_mean"]
    floor = pd.read_parquet(root / ".newsforge" / "assets" / "popularity_baseline" / DAY / "table.parquet")
    from training.metrics.ranking import mind_metrics
    floor_auc = mind_metrics(floor["impression_id"], floor["label"], floor["score"]).auc
    for model in ("dcn", "deepfm", "pnn"):
        assert auc[(model, "news+user")] > auc[(model, "none")] + 0.01, table
        assert auc[(model, "none")] > floor_auc, table
