"""The query-list protocol on one partition (docs/query_lists_protocol.md): its days, each target day's
retriever, the arms' lists and their recall@K, and the recipe (warm start, then GRPO) at one model size.

The assets (``assets/query_lists.py``) compose these; nothing here knows Dagster or MLflow.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from training.config_dict import ConfigDict
from training.metrics.intervals import Interval, format_mean_std, paired_difference
from training.query_lists.query_list import QueryListSpec
from training.query_lists.rewards import RewardWeights, list_union, retrieval_reward
from training.query_lists.warm_start import TARGET_SOURCES, warm_start_targets
from training.slm.prompts import normalise_query

if TYPE_CHECKING:
    from training.prec.news_encoder_store import SavedNewsEncoder
    from training.query_lists.grpo import GrpoResult, GrpoSettings
    from training.query_lists.rewards import QualityScorer
    from training.query_lists.trl_rewards import Retriever
    from training.retrieval.live_news import LiveWindow
    from training.retrieval.news_index import NewsIndex
    from training.slm.lora_sft import LoraSftConfig
    from training.slm.query_generation import GenerationConfig

#: Days before the partition day whose clicks are the train targets (t + 1), and the selection day's offset.
TRAIN_OFFSETS = (4, 3, 2)
SELECTION_OFFSET = 1
#: Columns of :func:`list_recalls`' frame (``union``: the news retrieved, in the list's round-robin order).
RECALL_COLUMNS = ("row", "n_queries", "n_retrieved", "recall", "union")


def _back(day: str, n: int) -> str:
    return str((pd.Timestamp(day) - pd.Timedelta(days=n)).date())


@dataclass(frozen=True)
class ProtocolDays:
    """Target days (t + 1) of the protocol's roles: train D−4..D−2, selection D−1, report D. A target day is
    usable when it and the day before it are in the log. A short log (the test projects) trains on D−1 and has
    no selection day: then the last GRPO step's policy is kept, and ``note`` says so."""

    train: tuple[str, ...]
    selection: str | None
    report: str
    note: str = ""

    @classmethod
    def of(cls, partition: str, days: Sequence[str]) -> ProtocolDays:
        present = set(map(str, days))
        if partition not in present or _back(partition, 1) not in present:
            raise ValueError(f"partition {partition} and the day before it must be in the behaviour log (its "
                             f"prompts show day t, its targets are day t + 1); days present: {sorted(present)}")

        def usable(day: str) -> bool:
            return day in present and _back(day, 1) in present

        train = tuple(d for d in (_back(partition, n) for n in TRAIN_OFFSETS) if usable(d))
        selection = _back(partition, SELECTION_OFFSET)
        if not usable(selection):
            raise ValueError(f"the selection day {selection} needs the day before it in the log; days present: "
                             f"{sorted(present)}")
        if train:
            return cls(train, selection, partition)
        return cls((selection,), None, partition,
                   note=f"the log has no target day before {selection} with a day before it: the policy trains on "
                        f"{selection}'s targets and keeps its last GRPO step (no selection day)")

    @property
    def all(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.train, *((self.selection,) if self.selection else ()), self.report)))


def day_retrievers(encoder: SavedNewsEncoder, news: pd.DataFrame, index: NewsIndex, window: LiveWindow,
                   days: Sequence[str], per_query: int, cache: str | Path | None = None) -> dict[str, Retriever]:
    """Per target day: query texts -> the top ``per_query`` news among those live that day (Q''s query space)."""
    from training.retrieval.qprime import qprime_index, query_retriever

    return {day: query_retriever(encoder, qprime_index(encoder, news, index, window.day_news(day), cache=cache),
                                 per_query) for day in dict.fromkeys(days)}


def list_recalls(lists: Sequence[Sequence[str]], rows: pd.DataFrame, retrievers: Mapping[str, Retriever],
                 spec: QueryListSpec) -> pd.DataFrame:
    """Per row (``target_day``, ``clicks``) and its list: the queries, the news their union retrieves (each query's
    top ``per_query``, round robin, cut at K), their number and recall@K of the clicks (:data:`RECALL_COLUMNS`)."""
    if len(lists) != len(rows):
        raise ValueError(f"{len(lists)} lists for {len(rows)} rows")
    days = rows["target_day"].astype(str).tolist()
    found: dict[tuple[str, str], list[str]] = {}
    for day in dict.fromkeys(days):
        queries = list(dict.fromkeys(q for d, lst in zip(days, lists) if d == day for q in lst))
        if day not in retrievers:
            raise KeyError(f"no retriever for target day {day}; have {sorted(retrievers)}")
        results = retrievers[day](queries) if queries else []
        found.update({(day, q): r for q, r in zip(queries, results)})
    records = []
    for row, (day, written, clicks) in enumerate(zip(days, lists, rows["clicks"])):
        union = list_union([found[day, q] for q in written], spec)
        records.append((row, len(written), len(union), retrieval_reward(union, clicks, spec.k), union))
    return pd.DataFrame(records, columns=list(RECALL_COLUMNS))


def random_lists(rows: pd.DataFrame, news: pd.DataFrame, window: LiveWindow, spec: QueryListSpec,
                 seed: int = 0) -> list[list[str]]:
    """The random-queries arm at equal coverage: per row, N normalised titles of distinct random news live on its
    target day, each cut at ``max_words`` words (the Q' baseline's construction)."""
    titles = dict(zip(news["news_id"].astype(str), news["title"].fillna("").astype(str)))
    rng = np.random.default_rng(seed)
    pools: dict[str, np.ndarray] = {}
    out = []
    for day in rows["target_day"].astype(str):
        if day not in pools:
            pools[day] = np.array(sorted(n for n in window.day_news(day) if titles.get(n, "").strip()), dtype=object)
        pool = pools[day]
        if len(pool) < spec.n_queries:
            raise ValueError(f"{len(pool)} titled news live on {day}; the random arm needs {spec.n_queries}")
        picks = rng.choice(pool, size=spec.n_queries, replace=False)
        out.append([normalise_query(" ".join(titles[p].split()[: spec.max_words])) for p in picks])
    return out


@dataclass(frozen=True)
class PolicyRecipe(ConfigDict):
    """The recipe at one model size: the base's first ``keep_layers`` decoder layers (0: all), LoRA SFT on the
    warm-start targets of ``targets`` (``warm_start.TARGET_SOURCES``), then GRPO on the weighted rewards with
    the steps chosen on the selection day."""

    keep_layers: int = 0
    selection_users: int = 48   # selection-day rows a checkpoint is scored on (first by user id; 0: all)
    targets: str = TARGET_SOURCES[0]

    def __post_init__(self) -> None:
        if self.keep_layers < 0 or self.selection_users < 0:
            raise ValueError("PolicyRecipe needs keep_layers >= 0 (0: all) and selection_users >= 0 (0: all)")
        if self.targets not in TARGET_SOURCES:
            raise ValueError(f"PolicyRecipe.targets must be one of {list(TARGET_SOURCES)}, got {self.targets!r}")


@dataclass
class PolicyFit:
    """One :func:`train_policy`: the folders (base; warm start: an adapter over the base, or with
    ``warm_start_is_model`` a whole model, fully fine-tuned; policy adapter) and the training record."""

    base_dir: Path
    warm_start_dir: Path
    policy_dir: Path
    warm_start_version: str
    policy_version: str
    sft_losses: list[float]
    grpo: GrpoResult
    n_train_rows: int
    n_target_rows: int
    warm_start_is_model: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    n_cut_prompts: int = 0      # warm-start examples whose prompt lost its opening to the SFT's max_len

    def load_warm_start(self, torch_threads: int = 0) -> tuple[Any, Any]:
        """``(model, tokenizer)`` of the warm start, for generation."""
        return load_warm_start(self.base_dir, self.warm_start_dir, self.warm_start_is_model, torch_threads)

    def load_policy(self, torch_threads: int = 0) -> tuple[Any, Any]:
        """``(model, tokenizer)`` of the GRPO policy, for generation."""
        from training.query_lists.policy import load_policy

        if self.warm_start_is_model:
            return load_policy(self.warm_start_dir, self.policy_dir, None, torch_threads)
        return load_policy(self.base_dir, self.policy_dir, self.warm_start_dir, torch_threads)


def load_warm_start(base_dir: str | Path, warm_start_dir: str | Path, is_model: bool,
                    torch_threads: int = 0) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a warm start: a whole model folder, or an adapter merged into ``base_dir``."""
    from training.slm.lora_sft import load_causal_lm, load_generator_model

    if is_model:
        return load_causal_lm(warm_start_dir, torch_threads)
    return load_generator_model(base_dir, warm_start_dir, merge=True, torch_threads=torch_threads)


def capped(rows: pd.DataFrame, n: int) -> pd.DataFrame:
    """The first ``n`` rows by (target day, user id) (0: all): the protocol's evaluation cap."""
    ordered = rows.sort_values(["target_day", "user_id"], kind="stable").reset_index(drop=True)
    return ordered if n <= 0 else ordered.head(n).reset_index(drop=True)


def train_policy(base_dir: str | Path, train_rows: pd.DataFrame, selection_rows: pd.DataFrame | None,
                 news: pd.DataFrame, retrievers: Mapping[str, Retriever], out_dir: str | Path, *,
                 recipe: PolicyRecipe, sft: LoraSftConfig, grpo: GrpoSettings, weights: RewardWeights,
                 spec: QueryListSpec, generation: GenerationConfig, quality: QualityScorer | None = None,
                 progress: bool = True, log: Callable[[str], None] = print) -> PolicyFit:
    """Warm start (SFT on ``warm_start_targets``: a LoRA, or every weight with ``sft.full_finetune``), then GRPO
    of a new LoRA on it, saved under ``out_dir`` (``warm_start/``: the adapter or the whole model; ``policy/``).
    ``base_dir`` is used as given (truncate it first with ``policy.truncated_base``). With ``selection_rows`` and
    ``grpo.eval_every`` > 0 the kept policy is the checkpoint of best recall@K on them."""
    from training.query_lists.grpo import train_grpo
    from training.query_lists.policy import merged_copy
    from training.query_lists.sampling import greedy_lists
    from training.query_lists.trl_rewards import ListRetrievals, reward_functions
    from training.slm.lora_sft import base_version, save_adapter, train_lora

    out = Path(out_dir)
    targets = warm_start_targets(train_rows, news, spec, recipe.targets)
    if targets.examples.empty:
        raise ValueError(f"no warm-start targets among {len(train_rows)} train rows (no clicked news with a usable "
                         "key phrase)")
    started = time.perf_counter()
    fit = train_lora(base_dir, targets.messages, targets.targets, sft.replace(task="user"), progress=progress)
    if sft.full_finetune:
        fit.model.save_pretrained(str(out / "warm_start"))
        fit.tokenizer.save_pretrained(str(out / "warm_start"))
        warm_version, grpo_base, base_adapter = base_version(out / "warm_start"), out / "warm_start", None
    else:
        warm_version = save_adapter(fit.model, out / "warm_start", base_dir, sft.replace(task="user"))
        grpo_base, base_adapter = Path(base_dir), out / "warm_start"
    seconds = {"sft": time.perf_counter() - started}
    log(f"warm start: {len(targets.examples)} lists, {fit.n_steps} steps, loss {fit.first_loss:.3f} -> "
        f"{fit.last_loss:.3f}, {seconds['sft']:.0f} s")
    tokenizer, sft_losses, n_cut = fit.tokenizer, [float(x) for x in fit.losses], fit.n_cut_prompts
    warm = fit.model.eval() if sft.full_finetune else merged_copy(fit.model)
    del fit
    functions = reward_functions(ListRetrievals(retrievers, spec), quality, weights)
    reward_weights = weights.of([f.__name__ for f in functions])
    select = None
    selection = capped(selection_rows, recipe.selection_users) if selection_rows is not None else None
    if selection is not None and not selection.empty and grpo.eval_every > 0:
        messages = selection["message"].astype(str).tolist()

        def select(model: Any) -> float:
            lists = greedy_lists(model, tokenizer, messages, spec, generation)
            return float(list_recalls(lists, selection, retrievers, spec)["recall"].mean())
    else:
        grpo = grpo.replace(eval_every=0)
    started = time.perf_counter()
    columns = [c for c in ("message", "clicks", "target_day") if c in train_rows.columns]
    result = train_grpo(warm, tokenizer, train_rows[columns].reset_index(drop=True), functions, grpo,
                        reward_weights, progress=progress, select=select)
    policy_version = save_adapter(result.model, out / "policy", grpo_base, grpo, base_adapter_dir=base_adapter)
    seconds["grpo"] = time.perf_counter() - started
    log(f"GRPO: {len(result.steps)} steps, reward {result.steps['reward'].iloc[0]:.3f} -> "
        f"{result.steps['reward'].iloc[-1]:.3f}, kept step {result.best_step}, {seconds['grpo']:.0f} s")
    return PolicyFit(Path(base_dir), out / "warm_start", out / "policy", warm_version, policy_version,
                     sft_losses, result, len(train_rows), len(targets.examples), sft.full_finetune, seconds, n_cut)


@dataclass(frozen=True)
class ArmRecall:
    """Per-row recall@K of one arm, per seed: ``values`` has shape (n_seeds, n_rows), rows aligned across arms."""

    name: str
    values: np.ndarray
    queries: float
    retrieved: float


def arms_table(arms: Sequence[ArmRecall], reference: str, scale: float = 100.0) -> tuple[pd.DataFrame, str]:
    """(frame, Markdown) of recall@K per arm (mean ± std over seeds) and each arm minus ``reference`` with its
    95 % paired bootstrap interval over rows (the protocol's decision: the interval above 0)."""
    by_name = {a.name: a for a in arms}
    if reference not in by_name:
        raise KeyError(f"reference arm {reference!r} is not among {list(by_name)}")
    ref = by_name[reference]
    records = []
    for arm in arms:
        per_seed = arm.values.mean(axis=1)
        diff: Interval | None = None if arm.name == reference else paired_difference(arm.values, ref.values)
        records.append({"arm": arm.name, "seeds": arm.values.shape[0], "users": arm.values.shape[1],
                        "recall_at_k": float(per_seed.mean()), "recall": format_mean_std(per_seed, scale),
                        "queries": arm.queries, "retrieved": arm.retrieved,
                        "diff": diff.estimate if diff else np.nan, "low": diff.low if diff else np.nan,
                        "high": diff.high if diff else np.nan,
                        "vs_reference": diff.format(scale) + f" ({diff.verdict()})" if diff else "reference"})
    frame = pd.DataFrame(records)
    shown = frame[["arm", "seeds", "users", "recall", "queries", "retrieved", "vs_reference"]].rename(columns={
        "recall": "recall@K x100", "queries": "queries / list", "retrieved": "news retrieved",
        "vs_reference": f"− {reference} [95 % CI]"})
    return frame, shown.to_markdown(index=False, floatfmt=".1f")


def newest_reads(histories: pd.DataFrame, users: Sequence[str], day: str) -> dict[str, str]:
    """User -> the newest news of their latest history shown before ``day``: the trigger article of their next
    impression, whose candidates the trigger recall paths hold. Users without one are left out."""
    from training.query_lists.prompt_rows import utc_naive

    wanted = set(map(str, users))
    shown = histories[histories["user_id"].astype(str).isin(wanted)]
    shown = shown.assign(_time=utc_naive(shown["time"]))
    shown = shown[shown["_time"] < pd.Timestamp(day)].sort_values("_time", kind="stable")
    last = shown.groupby(shown["user_id"].astype(str))["history"].last()
    return {user: str(list(history)[-1]) for user, history in last.items() if history is not None and len(history)}


def path_recalls(candidates: pd.DataFrame, triggers: Mapping[str, str], rows: pd.DataFrame,
                 interest: Sequence[Sequence[str]], k: int) -> pd.DataFrame:
    """Recall@``k`` of each row's clicks (one row per user) per recall path: every trigger path of
    ``candidates`` (trigger_id, path, rank, news_id) at the user's trigger (``triggers``; none: nothing found),
    the user's ``interest`` path (their list's union) and ``union+interest`` (the trigger paths' union and the
    interest path, round robin, cut at ``k``). One row per (row, path)."""
    from training.query_lists.query_list import round_robin
    from training.retrieval.recall_paths import RecallPath

    if len(interest) != len(rows):
        raise ValueError(f"{len(interest)} interest lists for {len(rows)} rows")
    ranked = candidates.sort_values(["trigger_id", "path", "rank"], kind="stable")
    by_key = {key: group["news_id"].astype(str).tolist() for key, group in ranked.groupby(["trigger_id", "path"])}
    paths = list(dict.fromkeys(ranked["path"].astype(str)))
    records = []
    for row, (user, clicks, found) in enumerate(zip(rows["user_id"].astype(str), rows["clicks"], interest)):
        trigger = triggers.get(user)
        lists = {path: by_key.get((trigger, path), [])[:k] for path in paths}
        lists[str(RecallPath.INTEREST)] = list(found)[:k]
        lists[f"{RecallPath.UNION}+{RecallPath.INTEREST}"] = round_robin(
            [by_key.get((trigger, str(RecallPath.UNION)), []), list(found)], limit=k)
        records += [(row, path, retrieval_reward(news, clicks, k)) for path, news in lists.items()]
    return pd.DataFrame(records, columns=["row", "path", "recall"])
