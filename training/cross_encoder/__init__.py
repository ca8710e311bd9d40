"""Explore-Further style (trigger, candidate) cross-encoders: click teacher, quality teacher, MT student.

Typical flow::

    teacher = build_cross_encoder(CrossEncoderConfig(backbone="prec"), prec_news_encoder_dir)
    fit = train_click(teacher, news, triplets, TrainConfig(epochs=3, patience=1),
                      early_stopping=later_day_triplets)                  # trigger_id, pos_id, neg_id, weight
    judge = build_cross_encoder(CrossEncoderConfig(backbone="prec"), prec_news_encoder_dir)
    train_quality(judge, news, labelled_pairs, "sce", TrainConfig())      # trigger_id, candidate_id, score
    click = score_pairs(teacher, news, pairs.trigger_id, pairs.candidate_id).click
    quality = score_pairs(judge, news, pairs.trigger_id, pairs.candidate_id).quality_logits
    student = build_cross_encoder(CrossEncoderConfig(backbone="scratch"), prec_news_encoder_dir)
    distill(student, news, pairs, click, quality, TrainConfig())          # terms equal at step 0
    train_judged(other_student, news, judged, TrainConfig())              # + clicked: the direct baseline
    version = save_cross_encoder(student, out_dir)     # warm start later: load_cross_encoder(out_dir)

Heavy modules (torch, transformers) load on first use of an attribute.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CrossEncoderConfig": "training.cross_encoder.config",
    "TrainConfig": "training.cross_encoder.config",
    "CrossEncoder": "training.cross_encoder.model",
    "build_cross_encoder": "training.cross_encoder.model",
    "hf_cross_encoder": "training.cross_encoder.model",
    "PairTokenCache": "training.cross_encoder.pair_inputs",
    "pairwise_softmax_loss": "training.cross_encoder.losses",
    "soft_quality_targets": "training.cross_encoder.losses",
    "rounded_grades": "training.cross_encoder.losses",
    "quality_ce_loss": "training.cross_encoder.losses",
    "quality_sce_loss": "training.cross_encoder.losses",
    "distillation_loss": "training.cross_encoder.losses",
    "centred": "training.cross_encoder.losses",
    "click_label_loss": "training.cross_encoder.losses",
    "head_weights": "training.cross_encoder.losses",
    "DistillLoss": "training.cross_encoder.losses",
    "FitResult": "training.cross_encoder.train",
    "train_click": "training.cross_encoder.train",
    "train_quality": "training.cross_encoder.train",
    "distill": "training.cross_encoder.train",
    "train_judged": "training.cross_encoder.train",
    "PairScores": "training.cross_encoder.scoring",
    "score_pairs": "training.cross_encoder.scoring",
    "save_cross_encoder": "training.cross_encoder.store",
    "load_cross_encoder": "training.cross_encoder.store",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'training.cross_encoder' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
