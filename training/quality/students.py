"""The ranking-student recipes of "Explore Further" (KDD'25), on the cross-encoder package.

* **click-only student**: a small cross-encoder distilled (MSE) on the click teacher's logits alone: the
  production student before quality-aware ranking.
* **multi-task (MT) student**: continual training from a click-only student (or the current champion),
  distilled with MSE on both teachers' logits, the click loss weighted up to keep ClickNDCG.
* **direct student**: the same start fine-tuned directly on the judge's labels with SCE (the paper's
  weaker alternative to distillation).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training.cross_encoder import CrossEncoder, CrossEncoderConfig, TrainConfig, build_cross_encoder, distill, score_pairs
from training.cross_encoder import train_quality

TEACHER_COLUMNS = ("click", "q0", "q1", "q2", "q3", "q4")


@dataclass(frozen=True)
class TeacherTargets:
    """Teacher logits on the unlabelled pairs: ``pairs`` (trigger_id, candidate_id), ``click`` (N,),
    ``quality`` (N, 5)."""

    pairs: pd.DataFrame
    click: np.ndarray
    quality: np.ndarray

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "TeacherTargets":
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
    """Both teachers' logits on ``pairs`` (encoded once, reused by every student)."""
    trig, cand = pairs["trigger_id"].tolist(), pairs["candidate_id"].tolist()
    click = score_pairs(click_teacher, news, trig, cand, batch_size=batch_size, torch_threads=torch_threads).click
    quality = score_pairs(quality_teacher, news, trig, cand, batch_size=batch_size,
                          torch_threads=torch_threads).quality_logits
    return TeacherTargets(pairs[["trigger_id", "candidate_id"]].reset_index(drop=True),
                          np.asarray(click, np.float32), np.asarray(quality, np.float32))


def click_only_student(config: CrossEncoderConfig, news_encoder_dir: str | Path, news: pd.DataFrame,
                       targets: TeacherTargets, train: TrainConfig) -> CrossEncoder:
    """A fresh student distilled on the click teacher's logits only."""
    import torch

    torch.manual_seed(train.seed)
    student = build_cross_encoder(config, news_encoder_dir)
    distill(student, news, targets.pairs, targets.click, targets.quality, train, click_weight=1.0, quality_weight=0.0)
    return student


def multitask_student(start: CrossEncoder, news: pd.DataFrame, targets: TeacherTargets, train: TrainConfig,
                      click_weight: float) -> CrossEncoder:
    """A copy of ``start`` distilled on both teachers (MSE), the click part weighted by ``click_weight``."""
    student = copy.deepcopy(start)
    distill(student, news, targets.pairs, targets.click, targets.quality, train, click_weight=click_weight,
            quality_weight=1.0)
    return student


def direct_student(start: CrossEncoder, news: pd.DataFrame, labels: pd.DataFrame, train: TrainConfig) -> CrossEncoder:
    """A copy of ``start`` fine-tuned with SCE on the judge's labels (trigger_id, candidate_id, score)."""
    student = copy.deepcopy(start)
    train_quality(student, news, labels[["trigger_id", "candidate_id", "score"]], "sce", train)
    return student
