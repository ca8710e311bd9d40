"""Day-based CTR experiments: the train / early-stopping / test split of a partition and the PREC Table-2 grid."""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from training.ctr.config import CtrConfig
from training.ctr.features import CtrData, CtrFeatures
from training.ctr.lightning_module import ranking_metrics
from training.ctr.predict import CtrPredictor
from training.ctr.train import CtrFeatureSet, build_features, train_ctr_model
from training.data.prepared import BehaviorLog
from training.embedding_table import EmbeddingTable
from training.metrics.intervals import Interval, paired_difference
from training.metrics.mind import METRIC_KEYS, METRIC_LABELS, impression_metrics, mind_metrics
from training.registry import finite_scores

VARIANT_LABELS = {"none": "base", "news": "+NP", "news+user": "+NP+UP"}


@dataclass(frozen=True)
class CtrSplit:
    """Three disjoint slices of a partition's experiment.

    ``train`` fits the weights, ``valid`` picks the epoch (early stopping), ``test`` is the partition day:
    the gate slice and the slice Table 2 reports, seen by neither training nor epoch selection.
    """

    train: BehaviorLog
    valid: BehaviorLog
    test: BehaviorLog
    train_days: list[str]
    valid_days: list[str]

    def data(self, part: str, news: pd.DataFrame, news_vectors: EmbeddingTable | None,
             user_vectors: EmbeddingTable | None) -> CtrData:
        """``part`` (``train``, ``valid`` or ``test``) as model input."""
        log: BehaviorLog = getattr(self, part)
        return CtrData(log.impressions, log.histories, news, news_vectors, user_vectors)


def split_for_day(log: BehaviorLog, day: str, window_days: int, split: str = "chronological",
                  seed: int = 0) -> CtrSplit:
    """Split the ``window_days`` days before ``day`` into train and early-stopping slices; ``day`` is the test.

    Chronological (default): the window's last day early-stops, the days before it train: the model that
    serves day D has seen up to D-1, and its epoch is chosen on the most recent day it could know.
    Random: the window's impressions 4:1 by impression (seeded) into train and early stopping.
    """
    if window_days < 2:
        raise ValueError(f"window_days must be >= 2 (training days plus one early-stopping day), got {window_days}")
    if day not in log.days:
        raise ValueError(f"no impressions on {day}; days present: {', '.join(log.days)}")
    before = log.before(day, window_days)
    test = log.select_days([day])
    if split == "chronological":
        if len(before.days) < 2:
            raise ValueError(f"the chronological split needs at least 2 days before {day} (training days and one "
                             f"early-stopping day); days present: {', '.join(log.days)}")
        train_days, valid_days = before.days[:-1], before.days[-1:]
        return CtrSplit(log.select_days(train_days), log.select_days(valid_days), test, train_days, valid_days)
    if split != "random":
        raise ValueError(f"split must be 'chronological' or 'random', got {split!r}")
    ids = before.histories["impression_id"].to_numpy()
    if len(ids) < 2:
        raise ValueError(f"the random split needs at least 2 impressions before {day}; days present: "
                         f"{', '.join(log.days)}")
    valid_ids = np.random.default_rng(seed).permutation(ids)[: max(1, len(ids) // 5)]
    is_valid_imp = before.impressions["impression_id"].isin(valid_ids)
    is_valid_hist = before.histories["impression_id"].isin(valid_ids)
    return CtrSplit(
        BehaviorLog(before.impressions[~is_valid_imp].reset_index(drop=True),
                    before.histories[~is_valid_hist].reset_index(drop=True)),
        BehaviorLog(before.impressions[is_valid_imp].reset_index(drop=True),
                    before.histories[is_valid_hist].reset_index(drop=True)),
        test, before.days, before.days,
    )


def gate_metrics(split: CtrSplit, scores: np.ndarray, name: str, version: str) -> dict[str, Any]:
    """MIND metrics (``MindMetrics.as_dict``) of registered model ``name`` ``version``'s ``scores`` of the gate
    slice ``split.test``, one per impression row; ``ValueError`` naming the version when a score is not finite."""
    scores = finite_scores(scores, name, version)
    test = split.test.impressions
    return mind_metrics(test["impression_id"], test["label"], scores).as_dict()


@dataclass(frozen=True)
class GridRun:
    """Test-day figures of one trained grid model (model, PREC variant, seed)."""

    metrics: dict[str, float]       # METRIC_KEYS over the test impressions (``ranking_metrics``)
    per_impression: pd.DataFrame    # METRIC_KEYS of each test impression, in impression-id order (NaN: undefined)


class CtrGrid:
    """Trains and scores the runs of a CTR grid on one split, early-stopping on ``split.valid`` and measuring on
    ``split.test``.

    The feature tensors of the three slices are built once per user-vector id set and shared by every run that
    uses the same ids (the runs differ in model, PREC variant, seed or the user vectors' values, none of which the
    features depend on); only the latest set is kept.
    """

    def __init__(self, split: CtrSplit, news: pd.DataFrame, news_vectors: EmbeddingTable, base_params: dict[str, Any],
                 log: Callable[[str], None] = print) -> None:
        self.split, self.news, self.news_vectors = split, news, news_vectors
        self.base_params, self.log = base_params, log
        self._features: tuple[list[str] | None, CtrFeatureSet, CtrFeatures] | None = None

    def _features_for(self, user_vectors: EmbeddingTable | None) -> tuple[CtrFeatureSet, CtrFeatures]:
        ids = None if user_vectors is None else user_vectors.ids
        if self._features is None or self._features[0] != ids:
            train, valid, test = (self.split.data(part, self.news, self.news_vectors, user_vectors)
                                  for part in ("train", "valid", "test"))
            features = build_features(train, valid, CtrConfig.from_dict(self.base_params))
            self._features = ids, features, features.space.transform(test)
        return self._features[1], self._features[2]

    def run(self, model: str, prec: str, seed: int, user_vectors: EmbeddingTable | None, label: str) -> GridRun:
        """Train ``model`` with PREC plug-in ``prec`` and ``seed`` over ``user_vectors`` and score the test slice;
        ``label`` names the variant in the log line."""
        features, test_features = self._features_for(user_vectors)
        config = CtrConfig.from_dict({**self.base_params, "model": model, "prec": prec, "seed": seed})
        train = self.split.data("train", self.news, self.news_vectors, user_vectors)
        valid = self.split.data("valid", self.news, self.news_vectors, user_vectors)
        with tempfile.TemporaryDirectory() as tmp:
            result = train_ctr_model(train, valid, config, tmp, features=features)
            scores = CtrPredictor.load(result.artefact_dir).score_features(
                test_features, news_embeddings=self.news_vectors, user_embeddings=user_vectors)
        test_ids, test_labels = test_features.impression_id.numpy(), test_features.label.numpy()
        order = np.argsort(test_ids, kind="stable")   # impression_metrics wants each impression's rows together
        metrics = ranking_metrics(test_ids, test_labels, scores)
        per_impression = impression_metrics(test_ids[order], test_labels[order], scores[order])[list(METRIC_KEYS)]
        self.log(f"{model} {label} seed {seed}: test AUC {metrics['auc']:.4f} "
                 f"(early-stopping AUC {result.metrics['auc']:.4f}, epoch {result.best_epoch})")
        return GridRun(metrics, per_impression)


def summary_row(model: str, variant: str, label: str, runs: list[GridRun]) -> dict[str, Any]:
    """One Table-2 row: ``model``, ``variant``, ``variant_label``, ``n_seeds`` and each metric's mean and std
    (ddof 1; 0 for one seed) over the seeds' ``runs``."""
    frame = pd.DataFrame([run.metrics for run in runs])
    row: dict[str, Any] = {"model": model, "variant": variant, "variant_label": label, "n_seeds": len(runs)}
    for key in METRIC_KEYS:
        row[f"{key}_mean"] = float(frame[key].mean())
        row[f"{key}_std"] = float(frame[key].std(ddof=1)) if len(frame) > 1 else 0.0
    return row


def paired_metric_difference(runs: list[GridRun], reference: list[GridRun], metric: str) -> tuple[Interval, int]:
    """``metric`` of ``runs`` minus ``reference`` (the same seeds' runs on the same test slice): the mean of per-seed
    differences with its 95 % paired bootstrap interval over test impressions, and the number of impressions it
    is over (those where ``metric`` is defined in every run of both arms, e.g. AUC needs a click and a non-click)."""
    ours = np.stack([run.per_impression[metric].to_numpy() for run in runs])
    base = np.stack([run.per_impression[metric].to_numpy() for run in reference])
    defined = ~np.isnan(ours).any(axis=0) & ~np.isnan(base).any(axis=0)
    return paired_difference(ours[:, defined], base[:, defined]), int(defined.sum())


def table2_grid(split: CtrSplit, news: pd.DataFrame, news_vectors: EmbeddingTable, user_vectors: EmbeddingTable,
                models: list[str], variants: list[str], seeds: list[int], base_params: dict[str, Any],
                log: Callable[[str], None] = print) -> pd.DataFrame:
    """Train every (model, variant, seed), early-stopping on ``split.valid``, and return mean/std of the
    metrics on ``split.test`` per (model, variant), and for each variant but the base the AUC difference to
    the same model's base (``auc_diff``: mean of per-seed differences) with its 95 % paired bootstrap
    interval over test impressions (``auc_diff_low``/``auc_diff_high``; impressions without both a click
    and a non-click have no AUC and are left out of both arms).

    The feature tensors of the three splits are built once and shared by every run (see ``CtrGrid``).
    """
    if not seeds:
        raise ValueError("at least one seed is required")
    grid = CtrGrid(split, news, news_vectors, base_params, log)
    rows = []
    for model in models:
        runs: dict[str, list[GridRun]] = {}
        for variant in variants:
            label = VARIANT_LABELS[variant]
            runs[variant] = [grid.run(model, variant, seed, user_vectors, label) for seed in seeds]
            row = summary_row(model, variant, label, runs[variant])
            if variant != "none" and "none" in runs:
                diff, n_imps = paired_metric_difference(runs[variant], runs["none"], "auc")
                row.update(auc_diff=diff.estimate, auc_diff_low=diff.low, auc_diff_high=diff.high,
                           n_test_impressions=n_imps)
            rows.append(row)
    return pd.DataFrame(rows)


def table2_markdown(table: pd.DataFrame, extra: dict[str, dict[str, Any]], reference: str = "base") -> str:
    """Markdown of the ``table2_grid`` table (mean ± std, and AUC − ``reference`` with its paired interval)
    followed by reference rows (single values) and a line saying what the figures are over."""
    lines = ["| model | variant | " + " | ".join(METRIC_LABELS[m] for m in METRIC_KEYS)
             + f" | AUC − {reference} [95 % CI] |",
             "|---|---|" + "---:|" * (len(METRIC_KEYS) + 1)]
    for r in table.to_dict("records"):
        # one seed has no spread: print the value alone rather than a std of 0
        cells = [f"{r[m + '_mean']:.4f}" + (f" ± {r[m + '_std']:.4f}" if r["n_seeds"] > 1 else "") for m in METRIC_KEYS]
        diff = r.get("auc_diff")
        cells.append("" if diff is None or pd.isna(diff) else
                     f"{diff:+.4f} [{r['auc_diff_low']:+.4f}, {r['auc_diff_high']:+.4f}]")
        lines.append(f"| {r['model']} | {r['variant_label']} | " + " | ".join(cells) + " |")
    for name, row in extra.items():
        lines.append(f"| {name} | | " + " | ".join(f"{row[m]:.4f}" for m in METRIC_KEYS) + " | |")
    if len(table):
        seeds = int(table["n_seeds"].max())
        n_imps = table["n_test_impressions"].dropna() if "n_test_impressions" in table else pd.Series(dtype=float)
        over = f" over {int(n_imps.max()):,} test impressions with a click and a non-click" if len(n_imps) else ""
        lines.append("")
        lines.append(f"Mean ± std over {seeds} seed(s); AUC − {reference} = mean of per-seed differences, 95 % paired "
                     f"bootstrap interval{over} (1,000 resamples).")
    return "\n".join(lines) + "\n"
