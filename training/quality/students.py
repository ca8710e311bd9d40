"""The ranking-student recipes of "Explore Further" (KDD'25), on the cross-encoder package.

* **click-only student**: a small cross-encoder distilled (MSE) on the click teacher's logits alone: the
  production student before quality-aware ranking, and the common start of both arms below.
* **distilled (MT) student**: continual training from a click-only student (or the current champion) on the
  distillation set (all distinct fit-day pairs, or a configured cap): MSE to the click teacher's logit plus MSE
  to the quality teacher's centred logits, the two terms weighted to stand in the ratio ``click_weight`` : 1
  at step 0 (``training.cross_encoder.distill``).
* **direct student** (the baseline of Table 3): the same start fine-tuned on the judged pairs without a teacher:
  binary cross-entropy of the click head against the pairs' logged click rate plus SCE of the quality head
  against the judge's score, weighted the same way (``training.cross_encoder.train_judged``).

The two arms differ **only in their targets and the pairs those cover**: distilled = both teachers' logits on the
distillation set (the quality teacher having learnt from the judged pairs); direct = the judged pairs' own labels
(logged clicks and judge scores). Same architecture, same start (a deep copy of one click-only student), same
``TrainConfig`` (epochs, batch size, learning rate, seed), same balancing rule and click ratio; the judged pairs
are the same ones the quality teacher learnt from (``quality_labels``' train part).

``served_metrics`` measures a registered student (loaded back from the registry) for the champion gate.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from training.cross_encoder import (
    CrossEncoder,
    CrossEncoderConfig,
    TrainConfig,
    build_cross_encoder,
    distill,
    score_pairs,
    train_judged,
)
from training.cross_encoder.scoring import BULK_PRECISION
from training.cross_encoder.train import FitResult
from training.quality.evaluation import quality_ranking_metrics
from training.registry import finite_scores

TEACHER_COLUMNS = ("click", "q0", "q1", "q2", "q3", "q4")


class TrainedStudent(NamedTuple):
    """A trained student and its fit (per-epoch loss terms, head weights)."""

    model: CrossEncoder
    fit: FitResult


@dataclass(frozen=True)
class TeacherTargets:
    """Teacher logits on the unlabelled pairs: ``pairs`` (trigger_id, candidate_id), ``click`` (N,),
    ``quality`` (N, 5)."""

    pairs: pd.DataFrame
    click: np.ndarray
    quality: np.ndarray

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> TeacherTargets:
        return cls(frame[["trigger_id", "candidate_id"]].reset_index(drop=True),
                   frame["click"].to_numpy(np.float32), frame[list(TEACHER_COLUMNS[1:])].to_numpy(np.float32))

    def to_frame(self) -> pd.DataFrame:
        frame = self.pairs.copy()
        frame["click"] = self.click
        for k in range(5):
            frame[f"q{k}"] = self.quality[:, k]
        return frame


def teacher_targets(click_teacher: CrossEncoder, quality_teacher: CrossEncoder, news: pd.DataFrame,
                    pairs: pd.DataFrame, batch_size: int = 256, torch_threads: int | None = None) -> TeacherTargets:
    """Both teachers' logits on ``pairs`` (encoded once, reused by every student; bulk precision)."""
    trig, cand = pairs["trigger_id"].tolist(), pairs["candidate_id"].tolist()
    click = score_pairs(click_teacher, news, trig, cand, batch_size=batch_size, torch_threads=torch_threads,
                        precision=BULK_PRECISION).click
    quality = score_pairs(quality_teacher, news, trig, cand, batch_size=batch_size, torch_threads=torch_threads,
                          precision=BULK_PRECISION).quality_logits
    return TeacherTargets(pairs[["trigger_id", "candidate_id"]].reset_index(drop=True),
                          np.asarray(click, np.float32), np.asarray(quality, np.float32))


def judged_with_clicks(labels: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """The judged pairs (``labels``: trigger_id, candidate_id, score) with ``clicked``: the pair's click rate
    over its logged occurrences in ``pairs`` (trigger_id, candidate_id, clicked; e.g. the fit and
    early-stopping days of ``PairLogs``), NaN for a pair never logged (a user's labels file)."""
    for name, table, columns in (("labels", labels, ["trigger_id", "candidate_id", "score"]),
                                 ("pairs", pairs, ["trigger_id", "candidate_id", "clicked"])):
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise ValueError(f"{name} lacks column(s) {missing}")
    rates = pairs.groupby(["trigger_id", "candidate_id"], as_index=False)["clicked"].mean()
    out = labels[["trigger_id", "candidate_id", "score"]].merge(rates, on=["trigger_id", "candidate_id"], how="left")
    return out.reset_index(drop=True)


def click_only_student(config: CrossEncoderConfig, news_encoder_dir: str | Path, news: pd.DataFrame,
                       targets: TeacherTargets, train: TrainConfig) -> TrainedStudent:
    """A fresh student distilled on the click teacher's logits only."""
    import torch

    torch.manual_seed(train.seed)
    student = build_cross_encoder(config, news_encoder_dir)
    fit = distill(student, news, targets.pairs, targets.click, targets.quality, train, click_weight=1.0,
                  quality_weight=0.0)
    return TrainedStudent(student, fit)


def multitask_student(start: CrossEncoder, news: pd.DataFrame, targets: TeacherTargets, train: TrainConfig,
                      click_weight: float = 1.0) -> TrainedStudent:
    """A copy of ``start`` distilled on both teachers, the terms in the ratio ``click_weight`` : 1 at step 0."""
    student = copy.deepcopy(start)
    fit = distill(student, news, targets.pairs, targets.click, targets.quality, train, click_weight=click_weight,
                  quality_weight=1.0)
    return TrainedStudent(student, fit)


def direct_student(start: CrossEncoder, news: pd.DataFrame, judged: pd.DataFrame, train: TrainConfig,
                   click_weight: float = 1.0) -> TrainedStudent:
    """A copy of ``start`` fine-tuned on the judged pairs (trigger_id, candidate_id, score, clicked; see
    ``judged_with_clicks``): click BCE + SCE, the terms in the ratio ``click_weight`` : 1 at step 0."""
    student = copy.deepcopy(start)
    fit = train_judged(student, news, judged, train,
                       click_weight=click_weight, quality_weight=1.0, quality_loss="sce")
    return TrainedStudent(student, fit)


def served_metrics(model: Any, pairs: pd.DataFrame, version: str) -> dict[str, float]:
    """Quality metrics (``quality_ranking_metrics``) of a loaded registered ``ranking_student`` ``version`` (its
    pyfunc: trigger_id, candidate_id -> score) on the evaluation ``pairs``; ``ValueError`` when it returns a
    non-finite score."""
    scores = model.predict(pairs[["trigger_id", "candidate_id"]])["score"]
    return quality_ranking_metrics(pairs, finite_scores(scores, "ranking_student", version))
