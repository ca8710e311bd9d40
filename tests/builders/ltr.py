"""Seeded synthetic ranking rows, the raw inputs of ``ltr_features`` and a tiny registered ``ranker``
(tests of the ranker, the service, benchmarks)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training.embedding_table import EmbeddingTable
from training.ltr.count_features import STAGE2_EXTRA, count_feature_names, pair_feature_names

REPO_ROOT = Path(__file__).resolve().parents[2]
STAGE1_FEATURES = count_feature_names() + pair_feature_names()
STAGE2_FEATURES = STAGE1_FEATURES + list(STAGE2_EXTRA)
START_DAY = pd.Timestamp("2019-11-10")
TINY_EXPERIMENT = "tiny_ranker"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def synthetic_ranking_rows(n_groups: int = 300, group_size: int = 20, seed: int = 0) -> pd.DataFrame:
    """``n_groups`` impressions of ``group_size`` distinct candidates each, one trigger ``T<g>`` per impression,
    with every stage-2 feature. A hidden appeal drives clicks; ``student_click``, ``ctr_score`` and the windowed
    CTRs are noisy views of it. A hidden grade (``quality``, 0-4) nudges clicks a little and ``student_quality``
    is a noisy view of it. Other features are noise. About 10 % of rows are clicked."""
    rng = np.random.default_rng(seed)
    n = n_groups * group_size
    group = np.repeat(np.arange(n_groups), group_size)
    n_news = max(500, 2 * group_size)
    picks = np.argsort(rng.random((n_groups, n_news)), axis=1)[:, :group_size].reshape(-1)

    appeal = rng.normal(size=n)
    grade = np.clip(np.round(2.0 + 1.2 * (0.3 * appeal + rng.normal(size=n))), 0, 4).astype(np.int64)
    clicked = (rng.random(n) < _sigmoid(-3.0 + 1.6 * appeal + 0.3 * (grade - 2))).astype(np.int8)

    feats: dict[str, np.ndarray] = {}
    true_ctr = _sigmoid(-3.0 + 0.8 * appeal)
    for days, shown_mean in ((1, 40), (3, 120), (7, 280)):
        shown = rng.poisson(shown_mean, size=n).astype(np.float64)
        clicks = rng.binomial(shown.astype(np.int64), true_ctr).astype(np.float64)
        feats[f"cand_clicks_{days}d"], feats[f"cand_shown_{days}d"] = clicks, shown
        feats[f"cand_ctr_{days}d"] = (clicks + 1.0) / (shown + 20.0)
    for days, mean in ((1, 0.2), (3, 0.5), (7, 1.0)):
        shown = rng.poisson(mean, size=n).astype(np.float64)
        feats[f"pair_clicks_{days}d"] = rng.binomial(shown.astype(np.int64), true_ctr).astype(np.float64)
        feats[f"pair_shown_{days}d"] = shown
    feats["cand_age_hours"] = np.where(rng.random(n) < 0.1, np.nan, rng.exponential(24.0, size=n))
    feats["embedding_cosine"] = np.where(rng.random(n) < 0.05, np.nan, np.clip(rng.normal(0.3, 0.2, n), -1, 1))
    for path in ("coclick", "embedding", "qprime"):
        on = rng.random(n) < 0.5
        feats[f"in_{path}"] = on.astype(np.float64)
        feats[f"rank_{path}"] = np.where(on, rng.integers(1, 51, size=n), np.nan)
    feats["student_click"] = appeal + rng.normal(0.0, 0.5, n)
    feats["student_quality"] = grade + rng.normal(0.0, 0.7, n)
    feats["ctr_score"] = np.where(rng.random(n) < 0.2, np.nan, _sigmoid(-2.0 + appeal + rng.normal(0.0, 0.5, n)))

    days = (START_DAY + pd.to_timedelta(group * 5 // max(n_groups, 1), unit="D")).strftime("%Y-%m-%d")
    frame = pd.DataFrame({
        "impression_id": (group + 1).astype(np.int64),
        "trigger_id": np.char.add("T", group.astype(str)).astype(object),
        "candidate_id": np.char.add("N", picks.astype(str)).astype(object),
        "day": np.asarray(days, dtype=object),
        "clicked": clicked,
        "quality": grade,
    })
    features = pd.DataFrame({name: feats[name].astype(np.float32) for name in STAGE2_FEATURES})
    return pd.concat([frame, features], axis=1)


#: Day roles of ``synthetic_ranking_rows``' five days (fit, early stopping, selection, test), and of a window
#: too short for a selection day of its own (the early-stopping day also selects).
DAY_ROLES = {"fit_days": ["2019-11-10", "2019-11-11"], "early_stopping_day": "2019-11-12",
             "selection_day": "2019-11-13", "test_day": "2019-11-14"}
SHARED_DAY_ROLES = {"fit_days": ["2019-11-10", "2019-11-11"], "early_stopping_day": "2019-11-12",
                    "selection_day": "2019-11-12", "test_day": "2019-11-13"}


def ranking_rows_with_parts(n_groups: int = 300, group_size: int = 15, seed: int = 0,
                            roles: dict | None = None) -> pd.DataFrame:
    """``synthetic_ranking_rows`` with ``ltr_features``' ``part`` column from ``roles`` (``DAY_ROLES``);
    days of no role are dropped."""
    from training.ltr.tradeoff import row_parts

    roles = DAY_ROLES if roles is None else roles
    rows = synthetic_ranking_rows(n_groups, group_size, seed)
    rows = rows[rows["day"].isin([*roles["fit_days"], roles["early_stopping_day"], roles["selection_day"],
                                  roles["test_day"]])].reset_index(drop=True)
    return rows.assign(part=row_parts(rows["day"], **roles))


@dataclass(frozen=True)
class LoggedInputs:
    """What ``ltr_features`` featurises, drawn with numpy (vectorised: mind-small's size takes seconds)."""

    impressions: pd.DataFrame   # every logged candidate row: impression_id, position, news_id, day, time, label
    times: pd.Series            # impression_id -> UTC time
    pairs: pd.DataFrame         # PairLogs.pairs: impression_id, day, position, trigger_id, candidate_id, clicked, part
    path_ranks: pd.DataFrame    # the candidate store: trigger_id, path, rank (0-based), news_id; union included
    news_vectors: EmbeddingTable

    def part(self, day: str) -> pd.DataFrame:
        return self.pairs[self.pairs["day"] == day].reset_index(drop=True)


def logged_inputs(n_news: int = 60, impressions_per_day: int = 30, days: int = 4, candidates: tuple[int, int] = (2, 9),
                  path_k: int = 8, union_k: int = 6, dim: int = 8, seed: int = 0) -> LoggedInputs:
    """``days`` days of ``impressions_per_day`` impressions from ``START_DAY``, each with a uniform
    ``candidates`` range of candidates (popular news more often) and a trigger; the last day is the ``test``
    part. Every news is a trigger of ``coclick`` and ``embedding`` lists of ``path_k`` news, a tenth of them of
    a ``qprime`` list, and of a ``union`` of ``union_k``; news 0 has no vector."""
    rng = np.random.default_rng(seed)
    news = np.array([f"N{i}" for i in range(n_news)], dtype=object)
    n_imps = impressions_per_day * days
    sizes = rng.integers(candidates[0], candidates[1] + 1, size=n_imps)
    imp = np.repeat(np.arange(n_imps), sizes)
    position = (np.arange(imp.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)).astype(np.int32)
    picks = (n_news * rng.random(imp.size) ** 2).astype(np.int64)          # skewed popularity
    day_of = imp // impressions_per_day
    day_names = np.array([(START_DAY + pd.Timedelta(days=d)).strftime("%Y-%m-%d") for d in range(days)], dtype=object)
    stamp = (pd.Timestamp(START_DAY, tz="UTC") + pd.to_timedelta(day_of[np.cumsum(sizes) - 1], unit="D")
             + pd.to_timedelta(rng.integers(0, 86_400, size=n_imps), unit="s"))
    ids = pd.Index(np.arange(1, n_imps + 1, dtype=np.int64), name="impression_id")
    times = pd.Series(stamp, index=ids, name="time")
    label = (rng.random(imp.size) < 0.05).astype(np.int8)
    impressions = pd.DataFrame({"impression_id": imp + 1, "position": position, "news_id": news[picks],
                                "day": day_names[day_of], "time": times.to_numpy()[imp], "label": label})
    trigger = news[rng.integers(0, n_news, size=n_imps)][imp]
    pairs = pd.DataFrame({"impression_id": imp + 1, "day": day_names[day_of], "position": position,
                          "trigger_id": trigger, "candidate_id": news[picks], "clicked": label,
                          "part": np.where(day_of == days - 1, "test", "train").astype(object)})

    def lists(path: str, triggers: np.ndarray, k: int) -> pd.DataFrame:
        return pd.DataFrame({"trigger_id": np.repeat(news[triggers], k), "path": path,
                             "rank": np.tile(np.arange(k, dtype=np.int64), triggers.size),
                             "news_id": news[rng.integers(0, n_news, size=triggers.size * k)]})

    every = np.arange(n_news)
    path_ranks = pd.concat([lists("coclick", every, path_k), lists("embedding", every, path_k),
                            lists("qprime", every[::10], path_k), lists("union", every, union_k)], ignore_index=True)
    vectors = rng.normal(size=(n_news, dim)).astype(np.float32)
    vectors[0] = 0.0
    return LoggedInputs(impressions, times, pairs, path_ranks, EmbeddingTable(news.tolist(), vectors))


def tiny_ranker(seed: int = 0):
    """A small two-stage ranker trained on synthetic rows, λ chosen on its validation groups (≈1 s)."""
    from training.ltr.stages import RankerConfig, train_ranker
    from training.ltr.tradeoff import choose_lambda, tradeoff_curve

    rows = synthetic_ranking_rows(240, 20, seed)
    train, valid = rows[rows["impression_id"] <= 180], rows[rows["impression_id"] > 180]
    config = RankerConfig(num_leaves=7, n_estimators=40, min_data_in_leaf=10, threads=1, early_stopping_rounds=10,
                          seed=seed)
    ranker = train_ranker(train, valid, STAGE1_FEATURES, STAGE2_FEATURES, config)
    stage2 = ranker.score_stage2(valid[STAGE2_FEATURES].to_numpy(np.float32))
    curve = tradeoff_curve(valid["impression_id"], valid["clicked"], valid["quality"], stage2,
                           valid["student_quality"], ranker.mu, ranker.sigma)
    ranker.lam = choose_lambda(curve, tolerance=0.01)
    return ranker


def tiny_related(n_triggers: int = 50, n_candidates: int = 30, seed: int = 1) -> pd.DataFrame:
    """``related_frame`` rows of ``n_triggers`` triggers × ``n_candidates`` candidates."""
    from serving.ltr_model import related_frame

    rows = synthetic_ranking_rows(n_triggers, n_candidates, seed)
    return related_frame(rows["trigger_id"], rows["candidate_id"], rows[STAGE2_FEATURES].to_numpy(np.float32),
                         STAGE2_FEATURES)


def register_tiny_ranker(out_dir: Path, alias: str | None = "champion", seed: int = 0) -> str:
    """Train a tiny ranker, log it with 50 triggers × 30 candidates as registered model ``ranker`` in the
    configured MLflow tracking URI, point ``alias`` at it; returns the version.

    Logs under the active run, or else in a new run of experiment ``tiny_ranker`` whose artefacts live
    under ``out_dir`` (created on first use), so a test's files stay in its tmp dir."""
    import mlflow
    from mlflow import MlflowClient

    from serving.ltr_model import RankerPyfunc, log_ranker, ranker_signature

    out_dir = Path(out_dir)
    artifacts = log_ranker(tiny_ranker(seed), tiny_related(seed=seed + 1), out_dir / f"ranker_seed{seed}")

    def log_model():
        with warnings.catch_warnings():  # no input example on purpose: logging would run predict on it
            warnings.filterwarnings("ignore", message=".*input example was not provided")
            return mlflow.pyfunc.log_model(name="ranker", python_model=RankerPyfunc(), artifacts=artifacts,
                                           registered_model_name="ranker", pip_requirements=[],
                                           signature=ranker_signature(),
                                           code_paths=[str(REPO_ROOT / "serving"), str(REPO_ROOT / "training")])

    if mlflow.active_run() is not None:
        info = log_model()
    else:
        client = MlflowClient()
        experiment = client.get_experiment_by_name(TINY_EXPERIMENT)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(
            TINY_EXPERIMENT, artifact_location=(out_dir / "mlartifacts").resolve().as_uri())
        with mlflow.start_run(experiment_id=experiment_id):
            info = log_model()
    version = str(info.registered_model_version)
    if alias:
        MlflowClient().set_registered_model_alias("ranker", alias, version)
    return version
