"""The query-list warm start's SFT settings on development data (protocol of issue 24, change 11).

    DAGSTER_HOME=<project>/.newsforge/dagster HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/sweep_warm_start.py \
        [--partition 2019-11-14] [--users 100] [--threads 2] [--max-len 320] [--keep-layers 8] \
        [--arms full-1e-3-24 lora-1e-3-48 ...] [--targets next_day filled] [--seeds 1 2]

Run it in a project whose data is the development data (generator seed 7 in ``params.yaml``, then ``make data``
and ``dagster asset materialize --select '*news_index' --partition <D>``): it reads ``mind_news``,
``mind_behaviors``, ``news_index`` and ``news_encoder`` from that project's Dagster instance. Each arm trains the
warm start as ``query_list_policy`` does (SmolLM2's first ``--keep-layers`` layers, the first 400 train rows of
D−4..D−2, batch 8) for each target source (``training.query_lists.warm_start.TARGET_SOURCES``) and SFT seed,
and writes one greedy list for each of the selection day D−1's first ``--users`` users; the report day D is not
read. Prints per run: the loss, parseable queries per list, distinct lists, recall@30 ×100 of the users' D−1
clicks, SFT seconds, and the first lists; then per arm and source the mean ± std over seeds, and the rule's
pick: change 11's (one source: the arm) or change 14's (two sources: the source, per arm, with the paired
difference filled − next_day and its 95 % bootstrap interval over the users, each user averaged over seeds).
"""
from __future__ import annotations

import argparse
import os
import time

import _paths  # noqa: F401  (repository root and tests/ on sys.path)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from dagster import AssetKey, DagsterInstance  # noqa: E402
from tabulate import tabulate  # noqa: E402

from orchestration.resources import DvcData  # noqa: E402
from training.data.prepared import load_user_signals  # noqa: E402
from training.metrics.intervals import format_mean_std, paired_difference  # noqa: E402
from training.prec import load_news_encoder  # noqa: E402
from training.quality.smollm import smollm2_dir  # noqa: E402
from training.query_lists.experiment import ProtocolDays, capped, day_retrievers, list_recalls  # noqa: E402
from training.query_lists.policy import merged_copy, truncated_base  # noqa: E402
from training.query_lists.prompt_rows import user_day_rows  # noqa: E402
from training.query_lists.query_list import QueryListSpec  # noqa: E402
from training.query_lists.sampling import greedy_lists  # noqa: E402
from training.query_lists.warm_start import TARGET_SOURCES, warm_start_targets  # noqa: E402
from training.retrieval.live_news import LIVE_DAYS, LiveWindow  # noqa: E402
from training.retrieval.news_index import NewsIndex  # noqa: E402
from training.retrieval.qprime import VECTOR_CACHE  # noqa: E402
from training.settings import cache_dir  # noqa: E402
from training.slm.lora_sft import LoraSftConfig, sft_examples, train_lora  # noqa: E402
from training.slm.query_generation import GenerationConfig  # noqa: E402

#: The protocol's grid (change 11): name -> (every weight?, learning rate, steps).
ARMS = {
    "full-1e-3-24": (True, 1e-3, 24),
    "full-1e-4-24": (True, 1e-4, 24),
    "full-3e-5-24": (True, 3e-5, 24),
    "full-1e-4-48": (True, 1e-4, 48),
    "full-3e-5-48": (True, 3e-5, 48),
    "lora-1e-3-48": (False, 1e-3, 48),
    "lora-3e-3-48": (False, 3e-3, 48),
}
KEEP_LAYERS, TRAIN_ROWS, MIN_QUERIES = 8, 400, 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--partition", default="2019-11-14")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-len", type=int, default=320, help="SFT tokens per example (prompt + list)")
    parser.add_argument("--keep-layers", type=int, default=KEEP_LAYERS,
                        help="SmolLM2's first N decoder layers (0: all 30, make reproduce's policy)")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--targets", nargs="+", default=[TARGET_SOURCES[0]], choices=list(TARGET_SOURCES),
                        help="warm-start target sources (protocol change 14)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1], help="SFT seeds per arm and source")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from orchestration.definitions import defs

    instance = DagsterInstance.get()

    def value(name: str):   # these four are unpartitioned
        return defs.load_asset_value(AssetKey(name), instance=instance)

    news, behaviors, index, encoder = (value(n) for n in ("mind_news", "mind_behaviors", "news_index",
                                                          "news_encoder"))
    days = ProtocolDays.of(args.partition, behaviors.days)
    if days.selection is None:
        raise SystemExit(f"{args.partition}: the log has no selection day (days: {days})")
    rows = user_day_rows(behaviors.histories, behaviors.impressions, news, days.all,
                         load_user_signals(DvcData().prepared_path))
    train = capped(rows[rows["target_day"].isin(days.train)], TRAIN_ROWS)
    selection = capped(rows[rows["target_day"] == days.selection], args.users)
    spec = QueryListSpec()
    window = LiveWindow.from_impressions(behaviors.impressions, LIVE_DAYS)
    retrievers = day_retrievers(load_news_encoder(encoder.local_dir, "cpu"), news, NewsIndex.load(index), window,
                                [days.selection], spec.per_query, cache_dir(VECTOR_CACHE))
    targets = {source: warm_start_targets(train, news, spec, source) for source in args.targets}
    base = truncated_base(smollm2_dir(cache_dir("llm")), args.keep_layers, cache_dir("llm"))
    generation = GenerationConfig(max_new_tokens=64, batch_size=8, torch_threads=args.threads)
    print(f"SmolLM2, {args.keep_layers or 'all'} decoder layers; development data: {len(train)} train rows "
          f"({', '.join(days.train)}); selection day {days.selection}: {len(selection)} users")
    for source, target in targets.items():
        lengths = target.examples["queries"].map(len)
        print(f"  {source} targets: {len(target.examples)} lists, {lengths.mean():.2f} queries a list (median "
              f"{lengths.median():g}), {target.n_filled_queries} from the reading history; "
              f"{100 * cut_prompts(base, target, args.max_len):.1f} % of the SFT examples longer than --max-len "
              f"{args.max_len} (their prompt's opening is cut)")

    records, recalls, samples = [], {}, {}
    for name in args.arms:
        full, lr, steps = ARMS[name]
        for source in args.targets:
            for seed in args.seeds:
                started = time.perf_counter()
                fit = train_lora(base, targets[source].messages, targets[source].targets,
                                 LoraSftConfig(full_finetune=full, lr=lr, max_steps=steps, batch_size=8,
                                               max_len=args.max_len, seed=seed, task="user",
                                               torch_threads=args.threads), progress=False)
                seconds = time.perf_counter() - started
                model = fit.model.eval() if full else merged_copy(fit.model)
                lists = greedy_lists(model, fit.tokenizer, selection["message"].astype(str).tolist(), spec, generation)
                frame = list_recalls(lists, selection, retrievers, spec)
                recalls[name, source, seed] = frame["recall"].to_numpy()
                records.append({"arm": name, "targets": source, "seed": seed,
                                "weights": "every" if full else "LoRA r8", "lr": lr, "steps": steps,
                                "loss": f"{fit.first_loss:.2f} -> {fit.last_loss:.2f}",
                                "queries/list": frame["n_queries"].mean(),
                                "distinct lists": len(set(map(tuple, lists))),
                                "recall@30 x100": 100 * frame["recall"].mean(), "SFT s": seconds})
                samples[name, source, seed] = [" · ".join(q) or "(none)" for q in lists[:3]]
                print(tabulate([shown(records[-1])], headers="keys", disable_numparse=True), flush=True)
                del fit, model

    table = pd.DataFrame(records)
    print("\n" + pd.DataFrame([shown(r) for r in records]).to_markdown(index=False, disable_numparse=True))
    for (name, source, seed), lists_shown in samples.items():
        print(f"\n{name}, {source} targets, seed {seed}:\n" + "\n".join(f"  {s}" for s in lists_shown))
    summary = (table.groupby(["arm", "targets"], sort=False)
               .agg(queries=("queries/list", list), recall=("recall@30 x100", list)).reset_index())
    print("\nmean ± std over seeds " + ", ".join(map(str, args.seeds)) + ":\n" + pd.DataFrame({
        "arm": summary["arm"], "targets": summary["targets"],
        "queries / list": summary["queries"].map(format_mean_std),
        "recall@30 x100": summary["recall"].map(format_mean_std)}).to_markdown(index=False))
    if len(args.targets) > 1:
        target_rule(summary, recalls, args.arms, args.seeds)
        return
    per_arm = table.groupby("arm", sort=False)[["queries/list", "recall@30 x100", "steps"]].agg(
        {"queries/list": "min", "recall@30 x100": "mean", "steps": "first"}).reset_index()
    eligible = per_arm[per_arm["queries/list"] >= MIN_QUERIES]
    if eligible.empty:
        print(f"\nno arm writes {MIN_QUERIES:g} or more queries a list: the settings stay (protocol change 11)")
    else:
        best = eligible.sort_values(["recall@30 x100", "steps"], ascending=[False, True]).iloc[0]
        print(f"\nprotocol rule picks {best['arm']} (recall@30 x100 {best['recall@30 x100']:.2f}, "
              f"{best['queries/list']:.2f} queries a list)")


def target_rule(summary: pd.DataFrame, recalls: dict, arms: list[str], seeds: list[int]) -> None:
    """Protocol change 14, per arm: ``filled`` is adopted if each of its seeds writes >= 3 queries a list and its
    mean recall@30 is higher than ``next_day``'s; printed with the paired interval over users."""
    for name in arms:
        rows = summary[summary["arm"] == name].set_index("targets")
        if not {"next_day", "filled"} <= set(rows.index):
            continue
        diff = paired_difference(np.stack([recalls[name, "filled", s] for s in seeds]),
                                 np.stack([recalls[name, "next_day", s] for s in seeds]))
        filled, next_day = rows.loc["filled"], rows.loc["next_day"]
        adopted = min(filled["queries"]) >= MIN_QUERIES and np.mean(filled["recall"]) > np.mean(next_day["recall"])
        print(f"\n{name}: filled − next_day recall@30 x100 = {100 * diff.estimate:+.2f} "
              f"[{100 * diff.low:+.2f}, {100 * diff.high:+.2f}]; fewest queries a list of a filled seed: "
              f"{min(filled['queries']):.2f}; protocol change 14 rule: "
              f"{'filled adopted' if adopted else 'next_day stays'}")


def shown(record: dict) -> dict:
    """A record for printing: the learning rate as written in ARMS, other floats to 2 decimals."""
    return {k: f"{v:g}" if k == "lr" else f"{v:.2f}" if isinstance(v, float) else v for k, v in record.items()}


def cut_prompts(base, targets, max_len: int) -> float:
    """The share of SFT examples whose prompt ``sft_examples`` cuts to fit ``max_len`` tokens."""
    from transformers import AutoTokenizer

    examples = sft_examples(AutoTokenizer.from_pretrained(str(base)), targets.messages, targets.targets, max_len,
                            task="user")
    return sum(e["prompt_cut"] > 0 for e in examples) / max(len(examples), 1)


if __name__ == "__main__":
    main()
