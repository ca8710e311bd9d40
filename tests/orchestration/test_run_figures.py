"""log_training_curves: reads a real MLflow run's metric histories and logs training_curves.png into it."""
import mlflow
from mlflow.tracking import MlflowClient

from orchestration.run_figures import TRAINING_CURVES, log_training_curves, metric_histories


def test_training_curves_are_drawn_from_the_runs_history_and_logged_in_it(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient()
    exp = client.create_experiment("newsforge/news_encoder", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=exp, tags={"dagster.asset": "news_encoder"}) as run:
        for step in range(5):
            mlflow.log_metric("train/loss_step", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"val/loss": 0.4, "n_train": 100})
        assert metric_histories(client, run.info.run_id)["train/loss_step"] == [(s, 1.0 / (s + 1)) for s in range(5)]
        png = log_training_curves(run.info.run_id, tmp_path / "out")
    assert png == tmp_path / "out" / TRAINING_CURVES and png.read_bytes()[:4] == b"\x89PNG"
    assert TRAINING_CURVES in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_no_curves_when_every_metric_has_one_step(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient()
    exp = client.create_experiment("newsforge/click_teacher", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_metrics({"train_loss": 0.3, "train_loss_epoch": 0.3, "train_seconds": 2.0})
        assert log_training_curves(run.info.run_id, tmp_path / "out") is None
    assert client.list_artifacts(run.info.run_id) == [] and not (tmp_path / "out").exists()


def test_prefix_keeps_only_the_per_epoch_records(tmp_path, monkeypatch):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient()
    exp = client.create_experiment("newsforge/ctr_model", artifact_location=(tmp_path / "artifacts").as_uri())
    drawn = {}

    def record(histories, path, title, x_label="step"):
        drawn.update(histories=dict(histories), x_label=x_label)
        path.parent.mkdir(parents=True)
        path.write_bytes(b"\x89PNG")
        return path

    monkeypatch.setattr("orchestration.run_figures.plot_training_curves", record)
    with mlflow.start_run(experiment_id=exp) as run:
        for epoch in range(3):
            mlflow.log_metrics({"epoch_train_loss": 1.0 - epoch / 10, "epoch_val_auc": 0.5 + epoch / 10}, step=epoch)
            mlflow.log_metric("auc", 0.5 + epoch / 10, step=100 * epoch)  # Lightning's per-step record
        assert log_training_curves(run.info.run_id, tmp_path / "out", prefix="epoch_", x_label="epoch")
    assert sorted(drawn["histories"]) == ["train_loss", "val_auc"] and drawn["x_label"] == "epoch"
    assert [step for step, _ in drawn["histories"]["val_auc"]] == [0, 1, 2]
    # with nothing under the prefix there is nothing to draw
    assert log_training_curves(run.info.run_id, tmp_path / "none", prefix="missing_") is None
