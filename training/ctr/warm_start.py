"""Warm start: initialise a CTR model from a previous predictor artefact (e.g. the day before's champion).

Dense parameters are copied when their shapes match. ID embedding tables are mapped row by row through
the two vocabularies: an id known to both models gets its old row whatever its index, the OOV row is
carried over, new ids keep their fresh init and PAD stays zero. The frozen news/user vector tables are
buffers filled from the current embeddings and are never copied; their trainable projections are, when
the vector dims agree.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from training.ctr.base_model import CtrModel
from training.ctr.config import CtrConfig
from training.ctr.features import FIELD_NAMES, VOCAB_FIELDS, FeatureSpace
from training.ctr.predict import CONFIG_FILE, WEIGHTS_FILE
from training.ctr.vocabulary import FIRST_KNOWN, OOV

log = logging.getLogger(__name__)

#: ``CtrConfig`` fields that fix the architecture; the previous model must agree on all of them
#: (``cross_layers`` only for DCN).
ARCHITECTURE = ("model", "prec", "embedding_dim", "mlp_hidden", "cross_layers")
_PROJECTIONS = ("news_vector", "user_vector")


@dataclass(frozen=True)
class WarmStartReport:
    """What ``warm_start`` took from the previous model."""

    previous_dir: str
    copied: tuple[str, ...]                    # parameters copied (embedding tables: at least one row)
    embedding_rows: dict[str, tuple[int, int]]  # field -> (rows copied, rows); PAD not counted, OOV is
    skipped: dict[str, str]                    # parameter -> why it keeps its fresh init

    @property
    def rows_copied(self) -> int:
        return sum(copied for copied, _ in self.embedding_rows.values())

    @property
    def rows_total(self) -> int:
        return sum(total for _, total in self.embedding_rows.values())

    def to_dict(self) -> dict[str, Any]:
        return {"previous_dir": self.previous_dir, "parameters_copied": len(self.copied),
                "copied": list(self.copied), "rows_copied": self.rows_copied, "rows_total": self.rows_total,
                "embedding_rows": {k: {"copied": c, "total": t} for k, (c, t) in self.embedding_rows.items()},
                "skipped": dict(self.skipped)}


def _architecture(config: CtrConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in ARCHITECTURE
            if name != "cross_layers" or config.model == "dcn"}


def check_compatible(previous: CtrConfig, current: CtrConfig) -> None:
    """Raise ``ValueError`` naming every architecture setting on which the two configs differ."""
    old, new = _architecture(previous), _architecture(current)
    diffs = [f"{name}: {old.get(name)!r} (previous) vs {new.get(name)!r}"
             for name in dict.fromkeys([*old, *new]) if old.get(name) != new.get(name)]
    if diffs:
        raise ValueError("cannot warm-start from an incompatible model; " + "; ".join(diffs))


def _vocab_rows(field: str, new: FeatureSpace, old: FeatureSpace) -> tuple[np.ndarray, np.ndarray]:
    """(new rows, old rows) of the OOV row and of every id known to both vocabularies."""
    old_pos = pd.Index(old.vocabularies[field].values, dtype=object).get_indexer(
        pd.Index(new.vocabularies[field].values, dtype=object))
    shared = np.flatnonzero(old_pos >= 0)
    return (np.concatenate([[OOV], FIRST_KNOWN + shared]),
            np.concatenate([[OOV], FIRST_KNOWN + old_pos[shared]]))


def _copy_table(field: str, param: torch.Tensor, old: torch.Tensor, space: FeatureSpace,
                old_space: FeatureSpace) -> tuple[int, str | None]:
    """Copy an embedding table's transferable rows; (rows copied, reason when none were)."""
    if field in VOCAB_FIELDS:
        new_rows, old_rows = _vocab_rows(field, space, old_space)
        param[torch.from_numpy(new_rows)] = old[torch.from_numpy(old_rows)].to(param)
        return len(new_rows), None
    if field == "news_age" and space.age_bucket_hours != old_space.age_bucket_hours:
        return 0, f"age buckets differ: {list(old_space.age_bucket_hours)} (previous) vs {list(space.age_bucket_hours)}"
    if param.shape != old.shape:
        return 0, f"shape {tuple(old.shape)} (previous) vs {tuple(param.shape)}"
    param.copy_(old)
    return len(param) - 1, None


def warm_start(model: CtrModel, feature_space: FeatureSpace, previous_dir: str | Path) -> WarmStartReport:
    """Initialise ``model`` (built on ``feature_space``) in place from the predictor artefact in ``previous_dir``.

    Raises ``ValueError`` when the architectures differ (``ARCHITECTURE``) and ``FileNotFoundError`` when
    ``previous_dir`` holds no predictor artefact.
    """
    previous_dir = Path(previous_dir)
    if not (previous_dir / CONFIG_FILE).is_file() or not (previous_dir / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"{previous_dir} is not a CTR predictor artefact "
                                f"(needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    check_compatible(CtrConfig.load(previous_dir / CONFIG_FILE), model.config)
    old_space = FeatureSpace.load(previous_dir)
    old_state = torch.load(previous_dir / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    tables = {f"embedding.tables.{field}.weight": field for field in FIELD_NAMES}
    copied: list[str] = []
    rows: dict[str, tuple[int, int]] = {}
    skipped: dict[str, str] = {}
    with torch.no_grad():
        for name, param in model.named_parameters():  # parameters only: the frozen vector buffers stay
            old = old_state.get(name)
            prefix = name.split(".", 1)[0]
            reason = None
            if old is None:
                reason = "absent from the previous model"
            elif name in tables:
                count, reason = _copy_table(tables[name], param, old, feature_space, old_space)
                rows[tables[name]] = (count, len(param) - 1)
            elif prefix in _PROJECTIONS:
                weight = f"{prefix}.projection.weight"
                old_dim, new_dim = old_state[weight].shape[1], model.get_parameter(weight).shape[1]
                if old_dim != new_dim:
                    reason = f"{prefix} dim {old_dim} (previous) vs {new_dim}"
            elif old.shape != param.shape:
                reason = f"shape {tuple(old.shape)} (previous) vs {tuple(param.shape)}"
            if reason is not None:
                skipped[name] = reason
                continue
            if name not in tables:
                param.copy_(old.to(param))
            copied.append(name)
    report = WarmStartReport(str(previous_dir), tuple(copied), rows, skipped)
    log.info("warm start from %s: %d parameters copied, %d/%d embedding rows, %d skipped", previous_dir,
             len(copied), report.rows_copied, report.rows_total, len(skipped))
    return report
