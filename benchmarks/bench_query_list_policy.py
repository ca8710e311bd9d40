"""Query-list policy costs (issue 24): SmolLM2-135M-Instruct vs its first 8 decoder layers, side by side, CPU fp32.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_query_list_policy.py [--threads 1 2] [--keep-layers 8]
        [--timed-steps 3] [--rounds 2] [--quick] [--tiny] [--model-dir DIR]

Model: ``smollm2_dir(<NEWSFORGE_HOME or .newsforge>/cache/llm)`` (or ``--model-dir``; ``--tiny``: the 30-layer tiny
test LM); the small one is ``policy.truncated_copy(model, --keep-layers)``, saved beside for ``train_lora``. Weights
are the bare base's (cost does not depend on them). Per torch thread count, each measure runs for both models back
to back (background load hits them alike):

* generation: greedy lists for 16 made-up ``user_prompt`` users in one batch, max 48 new tokens: stopped at eos
  (``generate_texts``, the path of ``greedy_lists``) and at a fixed 48 tokens (the same shared-prefix decoding,
  eos ignored: equal work for both models, the cost of a list of 6 queries of ~8 tokens); best of ``--rounds``;
* GRPO: ``train_grpo`` (TRL), 4 prompts x 4 completions, max 48 tokens, LoRA r=16, the format reward only (through
  ``ListRetrievals`` and a fake retriever: retrieval is not what is measured);
* on-policy distillation: ``distill_on_policy``, teacher = full, student = truncated (all its weights), 8 prompts;
* LoRA SFT: ``train_lora`` (r=8 q/k/v/o, batch 8, max_len 128, ``user`` task) on 16 made-up prompt/target pairs.

A training step's time is the interval between consecutive optimizer steps (a global ``torch.optim`` post-hook:
generation, scoring, forward, backward, update), mean over ``--timed-steps`` after 1 warm-up step. The projection
multiplies those means out: S GRPO steps, and lists for U users at 16 a batch (fixed 48 tokens: an upper bound).
Under Dagster's multiprocess executor (the demo) each step process runs 1 torch thread unless its config names
``torch_threads`` (``orchestration/executors.py``). Each figure is also printed to stderr as it comes. On a
loaded 2-core machine ``--quick`` took 24 min; ``--quick --threads 1`` (the demo's setting) takes about a third.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import _paths  # noqa: F401  (repository root and tests/ on sys.path)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402
from torch.optim.optimizer import register_optimizer_step_post_hook  # noqa: E402

from training.query_lists.distill import DistillSettings, distill_on_policy  # noqa: E402
from training.query_lists.grpo import GrpoSettings, train_grpo  # noqa: E402
from training.query_lists.policy import truncated_copy  # noqa: E402
from training.query_lists.query_list import parse_list  # noqa: E402
from training.query_lists.sampling import list_prompts  # noqa: E402
from training.query_lists.trl_rewards import ListRetrievals, reward_functions  # noqa: E402
from training.slm.lora_sft import LoraSftConfig, load_causal_lm, train_lora  # noqa: E402
from training.slm.prompts import format_target, user_prompt  # noqa: E402
from training.slm.query_generation import GenerationConfig, generate_texts  # noqa: E402
from training.slm.shared_prefix import PromptOpening, greedy_continue  # noqa: E402

TITLES = (
    "Fed signals pause in interest rate hikes", "Lakers beat Celtics in overtime thriller",
    "Winter storm brings heavy snow to the Midwest", "Apple unveils new iPhone with faster chip",
    "Senate passes bipartisan infrastructure bill", "NASA delays moon rocket launch again",
    "Home prices climb for the sixth straight month", "Flu season arrives early this year, doctors warn",
    "Oil prices fall as supply concerns ease", "Tesla recalls thousands of vehicles over software bug",
    "World Cup qualifier ends in dramatic draw", "New study links sleep to heart health",
    "City council approves budget for new park", "Farmers struggle with drought across the plains",
    "Streaming service raises monthly prices", "Best hiking trails to visit this fall",
    "Stock market rallies on strong jobs report", "Vaccine makers prepare updated boosters",
    "NFL quarterback injury shakes up playoff race", "Recipe: easy weeknight chicken dinners",
)
SEARCHES = ("mortgage rates", "nba standings", "snow forecast", "iphone review", "flu symptoms",
            "electric cars", "world cup schedule", "budget travel")
QUERIES = ("interest rates news", "nba scores tonight", "winter storm warning", "new iphone features",
           "infrastructure bill details", "moon mission update", "housing market forecast", "flu shot near me")
DEMO_STEPS = (10, 20, 40)
DEMO_USERS = (400, 2000)
STEP_BUDGET_S = 120.0


def user_messages(n: int) -> list[str]:
    """``n`` made-up ``user`` task messages: four recent titles each, a search for every other user."""
    return [user_prompt([TITLES[(3 * i + j) % len(TITLES)] for j in range(4)],
                        searches=[SEARCHES[i % len(SEARCHES)]] if i % 2 == 0 else ()) for i in range(n)]


def sft_targets(n: int) -> list[str]:
    """``n`` made-up six-query target lists."""
    return [format_target([QUERIES[(i + j) % len(QUERIES)] for j in range(6)]) for i in range(n)]


class StepClock:
    """Times of every optimizer step in the block (a global ``torch.optim`` post-hook)."""

    def __enter__(self) -> StepClock:
        self.times: list[float] = []
        self._handle = register_optimizer_step_post_hook(
            lambda *_: self.times.append(time.perf_counter()))
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()

    def seconds_per_step(self) -> float:
        """Mean interval between consecutive steps: the first step (warm-up) is left out."""
        if len(self.times) < 2:
            raise RuntimeError(f"{len(self.times)} optimizer steps seen; need a warm-up and a timed one")
        return float(np.diff(self.times).mean())


def fixed_length_seconds(model, tokenizer, prompts: list[str], new_tokens: int) -> float:
    """Seconds of one batch of greedy decoding as ``generate_texts`` does it (shared prompt opening once, left
    padding), every row writing exactly ``new_tokens`` tokens (no eos stops it)."""
    start = time.perf_counter()
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    with torch.inference_mode():
        opening = PromptOpening.of(model, encoded)
        own = [ids[opening.length:] for ids in encoded]
        width = max(len(ids) for ids in own)
        ids = torch.full((len(own), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(own), width), dtype=torch.long)
        for row, tokens in enumerate(own):
            ids[row, width - len(tokens):] = torch.tensor(tokens, dtype=torch.long)
            mask[row, width - len(tokens):] = 1
        out = greedy_continue(model, opening, ids, mask, new_tokens, tokenizer.pad_token_id, -1)
    if out.shape[1] != new_tokens:
        raise RuntimeError(f"decoded {out.shape[1]} tokens, expected {new_tokens}")
    return time.perf_counter() - start


def time_generation(models: dict, tokenizer, messages: list[str], threads: int, new_tokens: int,
                    rounds: int) -> dict[str, dict]:
    """Per model: best-of-``rounds`` seconds of one batch to eos (with tokens and parsed queries per list) and at a
    fixed length; the models alternate within each round."""
    prompts = list_prompts(tokenizer, messages)
    config = GenerationConfig(max_new_tokens=new_tokens, batch_size=len(prompts), torch_threads=threads)
    out = {name: {"eos_s": np.inf, "fixed_s": np.inf} for name in models}
    for model in models.values():   # warm-up
        generate_texts(model, tokenizer, prompts[:2], config.replace(max_new_tokens=4))
    for _ in range(rounds):
        for name, model in models.items():
            texts, stats = generate_texts(model, tokenizer, prompts, config)
            torch.set_num_threads(threads)
            fixed = fixed_length_seconds(model, tokenizer, prompts, new_tokens)
            best = out[name]
            best.update(eos_s=min(best["eos_s"], stats.seconds), fixed_s=min(best["fixed_s"], fixed),
                        tokens=stats.tokens / len(prompts), sample=texts[0],
                        queries=float(np.mean([len(parse_list(t).queries) for t in texts])))
    return out


def fake_retrieve(queries: list[str]) -> list[list[str]]:
    """Three fixed news ids per query: the rewards' retrieval costs nothing."""
    return [["N1", "N2", "N3"] for _ in queries]


def time_grpo(model, tokenizer, messages: list[str], threads: int, args: argparse.Namespace
              ) -> tuple[float, float]:
    """(seconds per GRPO step, mean completion tokens of the timed steps)."""
    rows = pd.DataFrame({"message": messages})
    reward = [f for f in reward_functions(ListRetrievals(fake_retrieve)) if f.__name__ == "format"]
    settings = GrpoSettings(steps=1 + args.timed_steps, prompts_per_step=4, group_size=4,
                            max_completion_length=args.new_tokens, torch_threads=threads)
    with StepClock() as clock:
        result = train_grpo(model, tokenizer, rows, reward, settings, progress=False)
    if len(clock.times) != settings.steps:
        raise RuntimeError(f"{len(clock.times)} optimizer steps seen for {settings.steps} GRPO steps")
    return clock.seconds_per_step(), float(result.steps["completion_length"].iloc[1:].mean())


def time_distill(teacher, student, tokenizer, messages: list[str], threads: int, args: argparse.Namespace) -> float:
    """Seconds per on-policy distillation step (``student`` is trained in place)."""
    settings = DistillSettings(steps=1 + args.timed_steps, prompts_per_step=8, max_new_tokens=args.new_tokens,
                               torch_threads=threads)
    with StepClock() as clock:
        distill_on_policy(student, teacher, tokenizer, messages, settings, progress=False)
    return clock.seconds_per_step()


def time_sft(model_dir: Path, messages: list[str], threads: int, args: argparse.Namespace) -> tuple[float, float]:
    """(seconds per LoRA SFT step, tokens per example)."""
    config = LoraSftConfig(max_steps=1 + args.timed_steps, batch_size=8, task="user", torch_threads=threads)
    with StepClock() as clock:
        result = train_lora(model_dir, messages, sft_targets(len(messages)), config, progress=False)
    return clock.seconds_per_step(), result.train_tokens / (result.n_steps * config.batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts to measure")
    parser.add_argument("--keep-layers", type=int, default=8, help="decoder layers of the truncated model")
    parser.add_argument("--timed-steps", type=int, default=3, help="timed training steps (after 1 warm-up)")
    parser.add_argument("--rounds", type=int, default=2, help="generation: best of N alternating rounds")
    parser.add_argument("--users", type=int, default=16, help="user prompts in the generation batch")
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--quick", action="store_true", help="2 timed steps, 1 generation round")
    parser.add_argument("--tiny", action="store_true", help="the tiny 30-layer test LM instead of SmolLM2")
    parser.add_argument("--model-dir", type=Path, help="a SmolLM2-like transformers folder (default: smollm2_dir)")
    args = parser.parse_args()
    if args.quick:
        args.timed_steps, args.rounds = min(args.timed_steps, 2), 1
    started = time.perf_counter()
    messages = user_messages(args.users)
    records: list[dict] = []
    samples: dict[str, str] = {}

    def record(model: str, threads: int, metric: str, value: float) -> None:
        records.append({"model": model, "threads": threads, "metric": metric, "value": value})
        if not metric.startswith("  "):
            print(f"[{time.perf_counter() - started:5.0f} s] {model}, {threads} thread(s): {metric} {value:.2f}",
                  file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-qlp-") as tmp_name:
        tmp = Path(tmp_name)
        if args.tiny:
            from builders.slm import tiny_causal_lm

            full_dir = tiny_causal_lm(tmp / "tiny", layers=30)
        elif args.model_dir is not None:
            full_dir = args.model_dir
        else:
            from training.quality.smollm import smollm2_dir
            from training.settings import cache_dir

            full_dir = smollm2_dir(cache_dir("llm"))
        full, tokenizer = load_causal_lm(full_dir, args.threads[0])
        small_name = f"first {args.keep_layers}"
        small_dir = tmp / "truncated"
        small = truncated_copy(full, args.keep_layers)
        small.save_pretrained(str(small_dir))
        tokenizer.save_pretrained(str(small_dir))
        models = {"full": full, small_name: small}
        dirs = {"full": full_dir, small_name: small_dir}
        params = {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}
        layers = {name: m.config.num_hidden_layers for name, m in models.items()}
        prompt_tokens = np.mean([len(tokenizer(p, add_special_tokens=False)["input_ids"])
                                 for p in list_prompts(tokenizer, messages)])

        for threads in args.threads:
            torch.set_num_threads(threads)
            timed = time_generation(models, tokenizer, messages, threads, args.new_tokens, args.rounds)
            for name, t in timed.items():
                record(name, threads, f"greedy lists x{args.users}, to eos (s)", t["eos_s"])
                record(name, threads, f"greedy lists x{args.users}, {args.new_tokens} tok fixed (s)", t["fixed_s"])
                record(name, threads, "  tokens / list to eos", t["tokens"])
                record(name, threads, "  parsed queries / list", t["queries"])
                samples[name] = t["sample"]
            for name, model in models.items():
                step_s, length = time_grpo(model, tokenizer, messages, threads, args)
                record(name, threads, f"GRPO step 4x4, {args.new_tokens} tok (s)", step_s)
                record(name, threads, "  GRPO completion tokens", length)
                gc.collect()
            for name in models:
                step_s, tokens = time_sft(dirs[name], messages, threads, args)
                record(name, threads, "LoRA SFT step, batch 8 (s)", step_s)
                record(name, threads, "  SFT tokens / example", tokens)
                gc.collect()
            student = truncated_copy(full, args.keep_layers)
            record(f"full -> {small_name}", threads, f"distill step, 8 x {args.new_tokens} tok (s)",
                   time_distill(full, student, tokenizer, messages, threads, args))
            del student
            gc.collect()

    frame = pd.DataFrame(records)
    name = "tiny (30 layers)" if args.tiny else "SmolLM2-135M-Instruct"
    print(f"\n{name}: full = {layers['full']} layers, {params['full'] / 1e6:.1f} M params; {small_name} = "
          f"{layers[small_name]} layers, {params[small_name] / 1e6:.1f} M params; chat prompts {prompt_tokens:.0f} "
          f"tokens (mean). fp32 CPU, "
          f"{os.cpu_count()} cores; training steps: mean of {args.timed_steps} after 1 warm-up; generation: best of "
          f"{args.rounds}; run {time.perf_counter() - started:.0f} s")
    print(tabulate(frame.values.tolist(), headers=list(frame.columns), floatfmt=".2f"))

    ratios = []
    for (metric, threads), group in frame[frame["model"].isin(models)].groupby(["metric", "threads"], sort=False):
        if metric.startswith("  "):
            continue
        by = dict(zip(group["model"], group["value"]))
        ratios.append([metric, threads, by["full"] / by[small_name]])
    print(f"\nratio full / {small_name} (time: > 1 means the truncated model is faster)")
    print(tabulate(ratios, headers=["metric", "threads", "full / truncated"], floatfmt=".2f"))

    value = frame.set_index(["model", "threads", "metric"])["value"]
    projection = []
    for threads in args.threads:
        for model in models:
            grpo = value[(model, threads, f"GRPO step 4x4, {args.new_tokens} tok (s)")]
            fixed = value[(model, threads, f"greedy lists x{args.users}, {args.new_tokens} tok fixed (s)")]
            eos = value[(model, threads, f"greedy lists x{args.users}, to eos (s)")]
            projection.append([model, threads, *[s * grpo for s in DEMO_STEPS], STEP_BUDGET_S / grpo,
                               *[u / args.users * fixed for u in DEMO_USERS],
                               *[u / args.users * eos for u in DEMO_USERS]])
    print(f"\nprojection (seconds; lists at {args.users} a batch)")
    print(tabulate(projection, floatfmt=".0f", headers=[
        "model", "threads", *[f"GRPO S={s}" for s in DEMO_STEPS], f"GRPO steps in {STEP_BUDGET_S:.0f} s",
        *[f"lists U={u} fixed" for u in DEMO_USERS], *[f"lists U={u} to eos" for u in DEMO_USERS]]))
    for model, text in samples.items():
        print(f"sample greedy list ({model}): {text[:160]!r}")


if __name__ == "__main__":
    main()
