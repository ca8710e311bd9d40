"""The PUNR ablation on the footing of PREC Table 2 (docs/query_lists_protocol.md, comparison 6).

Each variant is a user pre-training (``UserPretrainConfig`` overrides); per (variant, seed) a user encoder is
trained on the histories before the test day, the users are encoded with the history known on that day, and
Table 2's grid (``CtrGrid``) trains every CTR model with the ``news+user`` plug-in over those vectors. The first
variant is the reference: every other one gets paired bootstrap intervals over test impressions against it.
"""
from __future__ import annotations

import dataclasses
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from training.ctr.config import CtrConfig
from training.ctr.experiment import CtrGrid, CtrSplit, GridRun, paired_metric_difference, summary_row, table2_markdown
from training.data.prepared import BehaviorLog
from training.embedding_table import EmbeddingTable
from training.metrics.mind import METRIC_KEYS, METRIC_LABELS
from training.prec.config import UserPretrainConfig
from training.prec.user_pretrainer import encode_users, train_user_encoder
from training.torch_threads import torch_threads

#: The four published arms, label -> ``UserPretrainConfig`` overrides; the first is the reference. Each arm sets
#: both switches, so it means the same whatever the base config holds (generation weighs as much as MUTP).
PUNR_VARIANTS: dict[str, dict[str, Any]] = {
    "user modelling": {"masking": "token", "weight_generation": 0.0},
    "+ behaviour masking": {"masking": "span", "weight_generation": 0.0},
    "+ behaviour generation": {"masking": "token", "weight_generation": 1.0},
    "+ both": {"masking": "span", "weight_generation": 1.0},
}
#: PUNR's published AUC gains in points over NRMS-BERT on MIND-large, by arm: another baseline and data set,
#: printed beside our figures, never used to choose settings.
PUNR_PUBLISHED_AUC_GAIN = {"user modelling": 1.02, "+ behaviour masking": 1.29, "+ behaviour generation": 1.42,
                           "+ both": 1.57}
#: The CTR plug-in every run of the ablation uses (PREC news and user vectors).
PREC_PLUG_IN = "news+user"


@dataclass(frozen=True)
class PunrAblation:
    """Outcome of :func:`punr_ablation`.

    ``table``: ``table2_grid``'s columns, one row per (model, variant) with ``variant`` = ``variant_label`` = the
    variant's label, and ``auc_diff*`` against the reference. ``differences``: one row per (model, non-reference
    variant, metric) with ``estimate``, ``low``, ``high`` (metric − reference's, mean of per-seed differences, 95 %
    paired bootstrap interval), ``n_impressions`` and ``verdict`` (``above 0`` / ``below 0`` / ``contains 0``).
    """

    table: pd.DataFrame
    differences: pd.DataFrame
    reference: str
    day: str


def variant_configs(base: UserPretrainConfig,
                    variants: Mapping[str, Mapping[str, Any]]) -> dict[str, UserPretrainConfig]:
    """``base`` with each variant's overrides, in order; ``ValueError`` naming the variant for an unknown field, a
    ``seed`` (the grid's axis) or an invalid value, and when fewer than two variants are given."""
    if len(variants) < 2:
        raise ValueError(f"the PUNR ablation needs at least two variants (the reference first), got {list(variants)}")
    known = {f.name for f in dataclasses.fields(UserPretrainConfig)}
    configs = {}
    for label, overrides in variants.items():
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"PUNR variant {label!r}: unknown UserPretrainConfig field(s) {unknown}; "
                             f"known fields: {sorted(known)}")
        if "seed" in overrides:
            raise ValueError(f"PUNR variant {label!r} sets seed; the ablation's seeds are its own axis")
        try:
            configs[label] = base.replace(**overrides)
        except ValueError as err:
            raise ValueError(f"PUNR variant {label!r}: {err}") from err
    return configs


def _folder(index: int, label: str, seed: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    return f"{index:02d}-{slug}/seed-{seed}"


def punr_ablation(behaviors: BehaviorLog, split: CtrSplit, news: pd.DataFrame, news_vectors: EmbeddingTable,
                  ctr_params: dict[str, Any], user_config: UserPretrainConfig, models: list[str], seeds: list[int],
                  variants: Mapping[str, Mapping[str, Any]] = PUNR_VARIANTS,
                  user_profiles: pd.DataFrame | None = None, scratch_dir: str | Path | None = None,
                  threads: int | None = None, log: Callable[[str], None] = print) -> PunrAblation:
    """Train one user encoder per (variant, seed) and Table 2's CTR grid (``news+user``) over its user vectors.

    The test day is ``split.test``'s single day D. Encoders train on ``behaviors``' histories before D with
    ``user_config`` plus the variant's overrides and the seed; users are encoded with the history known on D (as
    the ``user_encoder`` / ``user_embeddings`` assets do). ``ctr_params``: the grid's shared ``CtrConfig`` values
    (each run sets model, plug-in and seed; the CTR seed is the encoder's). Encoders go to ``scratch_dir``
    (a temporary folder when None); ``threads``: torch CPU threads for the whole ablation (None: unchanged).
    """
    configs = variant_configs(user_config, variants)
    if not seeds or not models:
        raise ValueError(f"the PUNR ablation needs at least one model and one seed, got models={models}, "
                         f"seeds={seeds}")
    for model in models:   # unknown models or CtrConfig keys fail here, before any encoder trains
        CtrConfig.from_dict({**ctr_params, "model": model, "prec": PREC_PLUG_IN})
    if len(split.test.days) != 1:
        raise ValueError(f"split.test must hold one day (the test day), it holds {split.test.days}")
    day = split.test.days[0]
    past = behaviors.before(day).histories
    if past.empty:
        raise ValueError(f"no histories before {day}: the user encoders train on earlier days; days present: "
                         f"{', '.join(behaviors.days)}")
    known = behaviors.histories[behaviors.histories["day"] <= day]
    labels = list(configs)
    runs: dict[tuple[str, str], list[GridRun]] = {(m, v): [] for m in models for v in labels}
    with ExitStack() as stack:
        stack.enter_context(torch_threads(threads))
        scratch = Path(scratch_dir) if scratch_dir is not None else Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="punr-")))
        grid = CtrGrid(split, news, news_vectors, ctr_params, log)
        log(f"PUNR ablation on {day}: {len(labels)} variants x {len(seeds)} seed(s) user encoders, "
            f"{len(models)} CTR model(s) each")
        for index, (label, config) in enumerate(configs.items()):
            for seed in seeds:
                started = time.perf_counter()
                result = train_user_encoder(past, news_vectors, config.replace(seed=seed),
                                            scratch / _folder(index, label, seed), user_profiles=user_profiles)
                users = encode_users(result.encoder_dir, known, news_vectors, as_of_day=day,
                                     user_profiles=user_profiles)
                log(f"PUNR {label} seed {seed}: user encoder ({', '.join(result.tasks)}) val/loss "
                    f"{result.metrics.get('val/loss', float('nan')):.4f}, {len(users.ids)} users on {day}, "
                    f"{time.perf_counter() - started:.0f} s")
                for model in models:   # one user table in memory at a time
                    runs[model, label].append(grid.run(model, PREC_PLUG_IN, seed, users, label))
    return _summarise(runs, models, labels, day)


def _summarise(runs: dict[tuple[str, str], list[GridRun]], models: list[str], labels: list[str],
               day: str) -> PunrAblation:
    reference = labels[0]
    rows, differences = [], []
    for model in models:
        for label in labels:
            row = summary_row(model, label, label, runs[model, label])
            if label != reference:
                for metric in METRIC_KEYS:
                    diff, n_imps = paired_metric_difference(runs[model, label], runs[model, reference], metric)
                    differences.append({"model": model, "variant": label, "metric": metric,
                                        "estimate": diff.estimate, "low": diff.low, "high": diff.high,
                                        "n_impressions": n_imps, "verdict": diff.verdict()})
                    if metric == "auc":
                        row.update(auc_diff=diff.estimate, auc_diff_low=diff.low, auc_diff_high=diff.high,
                                   n_test_impressions=n_imps)
            rows.append(row)
    return PunrAblation(pd.DataFrame(rows), pd.DataFrame(differences), reference, day)


def punr_markdown(ablation: PunrAblation, extra: dict[str, dict[str, Any]] | None = None) -> str:
    """Table 2's markdown of the ablation (``extra``: reference rows such as the popularity floor), the
    differences against the reference variant for every metric, and PUNR's published AUC gains, labelled as
    another baseline."""
    ref = ablation.reference
    lines = [f"PUNR ablation on {ablation.day}: CTR models over the user vectors of each user pre-training "
             f"(plug-in {PREC_PLUG_IN}).", "", table2_markdown(ablation.table, extra or {}, reference=ref).rstrip(),
             "", f"Difference to {ref} (× 100; 95 % paired bootstrap interval over the test impressions where the "
             "metric is defined); a variant helps a model when its AUC interval lies above 0:", "",
             "| model | variant | " + " | ".join(METRIC_LABELS[m] for m in METRIC_KEYS) + " | AUC verdict |",
             "|---|---|" + "---|" * (len(METRIC_KEYS) + 1)]
    diffs = ablation.differences
    for (model, variant), group in diffs.groupby(["model", "variant"], sort=False):
        by_metric = group.set_index("metric")
        cells = [f"{100 * r.estimate:+.2f} [{100 * r.low:+.2f}, {100 * r.high:+.2f}]"
                 for r in (by_metric.loc[m] for m in METRIC_KEYS)]
        lines.append(f"| {model} | {variant} | " + " | ".join(cells) + f" | {by_metric.loc['auc', 'verdict']} |")
    published_ref = PUNR_PUBLISHED_AUC_GAIN["user modelling"]
    lines += ["", "Published reference, **a different baseline** (PUNR on MIND-large, AUC gain in points over "
              "NRMS-BERT; not our data, models or reference, so not comparable cell by cell):", "",
              "| PUNR published arm | AUC − NRMS-BERT | AUC − user modelling |", "|---|---:|---:|"]
    for arm, gain in PUNR_PUBLISHED_AUC_GAIN.items():
        over_ref = "" if arm == "user modelling" else f"{gain - published_ref:+.2f}"
        lines.append(f"| {arm} | {gain:+.2f} | {over_ref} |")
    return "\n".join(lines) + "\n"
