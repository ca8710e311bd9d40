"""LoRA vs full fine-tuning (training tokens/s) and base vs merged-adapter generation (tokens/s), CPU fp32.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_lora.py [--tiny] [--threads 2] [--steps 8]
        [--batch-size 8] [--n-prompts 32] [--max-new-tokens 32]

Model: SmolLM2-135M-Instruct via ``training.quality.smollm.smollm2_dir(<NEWSFORGE_HOME or .newsforge>/cache/llm)``,
or the tiny test model with ``--tiny``. Training: the same batches (chat prompt + target, ~80 tokens each)
for LoRA and full fine-tuning, one untimed warm-up step, then ``--steps`` timed steps each. Generation:
the same prompts, greedy, for the base model and the LoRA adapter (saved, reloaded, merged), measured
two ways, best of ``--rounds`` alternating rounds: through ``generate_texts`` (stops at eos) and
at a fixed length (``min_new_tokens`` =
``max_new_tokens``: the same work for both, the fair speed ratio). Target: merged >= 0.95x base.
"""
from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from pathlib import Path

import _paths  # noqa: F401  (repository root and tests/ on sys.path)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from builders.slm import news_corpus, tiny_causal_lm  # noqa: E402
from tabulate import tabulate  # noqa: E402

from training.slm.lora_sft import (  # noqa: E402
    LoraSftConfig,
    collate,
    load_causal_lm,
    load_generator_model,
    save_adapter,
    sft_examples,
    with_lora,
)
from training.slm.prompts import chat_prompt, format_target, news_prompt  # noqa: E402
from training.slm.query_generation import GenerationConfig, generate_texts  # noqa: E402
from training.slm.query_targets import key_phrase  # noqa: E402


def model_dir(args: argparse.Namespace, tmp: Path) -> Path:
    if args.tiny:
        return tiny_causal_lm(tmp / "tiny")
    from training.quality.smollm import smollm2_dir
    from training.settings import cache_dir

    return smollm2_dir(cache_dir("llm"))


def toy_pairs(n: int) -> tuple[list[str], list[str]]:
    """(news message, target answer) pairs from news-like titles; targets are neighbours' key phrases."""
    titles = news_corpus(max(n + 6, 64))[: n + 6]
    prompts = [news_prompt(t, category="news") for t in titles[:n]]
    targets = [format_target([key_phrase(t) for t in titles[i + 1: i + 5]]) for i in range(n)]
    return prompts, targets


def time_training(directory: Path, batches: list[dict], config: LoraSftConfig, steps: int) -> dict:
    """Seconds per step and tokens/s over ``steps`` timed steps after one warm-up step."""
    model, _ = load_causal_lm(directory, config.torch_threads)
    torch.manual_seed(config.seed)
    if config.full_finetune:
        model.requires_grad_(True)
    else:
        model = with_lora(model, config)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr)
    model.train()
    seconds, tokens, losses = 0.0, 0, []
    for step in range(steps + 1):
        batch = batches[step % len(batches)]
        start = time.perf_counter()
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step:                                  # step 0 is the warm-up
            seconds += time.perf_counter() - start
            tokens += int(batch["attention_mask"].sum())
        losses.append(float(loss.detach()))
    model.eval()
    return {"model": model, "trainable": sum(p.numel() for p in params), "seconds": seconds,
            "step_s": seconds / steps, "tokens": tokens, "tok_s": tokens / seconds, "losses": losses}


def fixed_length_tok_s(model, tokenizer, prompts: list[str], config: GenerationConfig) -> float:
    """Decode tokens/s with every answer forced to ``max_new_tokens`` (eos ignored): equal work per model."""
    batch = tokenizer(prompts, add_special_tokens=False, padding=True, padding_side="left", return_tensors="pt")
    tokens, start = 0, time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(prompts), config.batch_size):
            part = {k: v[i: i + config.batch_size] for k, v in batch.items()}
            out = model.generate(**part, max_new_tokens=config.max_new_tokens,
                                 min_new_tokens=config.max_new_tokens, do_sample=False, num_beams=1,
                                 pad_token_id=tokenizer.pad_token_id)
            tokens += (out.shape[1] - part["input_ids"].shape[1]) * out.shape[0]
    return tokens / (time.perf_counter() - start)


def time_generation(models: dict[str, tuple], prompts: list[str], config: GenerationConfig,
                    rounds: int) -> dict[str, dict]:
    """Per model: best-of-``rounds`` generate_texts tokens/s (eos-stopped) and fixed-length tokens/s; the
    models alternate within each round so background load hits them alike."""
    results = {name: {"tok_s": 0.0, "fixed_tok_s": 0.0} for name in models}
    for model, tokenizer in models.values():   # warm-up
        generate_texts(model, tokenizer, prompts[: config.batch_size], config.replace(max_new_tokens=4))
    for _ in range(rounds):
        for name, (model, tokenizer) in models.items():
            texts, stats = generate_texts(model, tokenizer, prompts, config)
            fixed = fixed_length_tok_s(model, tokenizer, prompts, config)
            best = results[name]
            best.update(texts=texts, tokens=stats.tokens, tok_s=max(best["tok_s"], stats.tokens_per_second),
                        fixed_tok_s=max(best["fixed_tok_s"], fixed))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="use the tiny test model instead of SmolLM2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8, help="timed training steps (after 1 warm-up)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-len", type=int, default=128)
    parser.add_argument("--n-prompts", type=int, default=32)
    parser.add_argument("--gen-batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="generation: best of N alternating rounds")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        directory = model_dir(args, tmp)
        config = LoraSftConfig(batch_size=args.batch_size, max_len=args.max_len, torch_threads=args.threads)
        _, tokenizer = load_causal_lm(directory, args.threads)
        prompts, targets = toy_pairs(args.batch_size * (args.steps + 1))
        examples = sft_examples(tokenizer, prompts, targets, config.max_len)
        batches = [collate(examples[i: i + args.batch_size], tokenizer.pad_token_id)
                   for i in range(0, len(examples), args.batch_size)]
        mean_len = sum(len(e["input_ids"]) for e in examples) / len(examples)

        full = time_training(directory, batches, config.replace(full_finetune=True, lr=1e-5), args.steps)
        del full["model"]
        gc.collect()
        lora = time_training(directory, batches, config, args.steps)
        version = save_adapter(lora["model"], tmp / "adapter", directory, config)

        gen_config = GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=args.gen_batch_size,
                                      torch_threads=args.threads)
        gen_prompts = [chat_prompt(tokenizer, news_prompt(t, category="news"))
                       for t in news_corpus(args.n_prompts + 100)[100: 100 + args.n_prompts]]
        base_model, base_tok = load_generator_model(directory, None, torch_threads=args.threads)
        merged_model, merged_tok = load_generator_model(directory, tmp / "adapter", merge=True,
                                                        torch_threads=args.threads)
        timed = time_generation({"base": (base_model, base_tok), "merged": (merged_model, merged_tok)},
                                gen_prompts, gen_config, args.rounds)
        base, merged = timed["base"], timed["merged"]
        check = tokenizer(gen_prompts[:2], add_special_tokens=False, padding=True, return_tensors="pt")
        with torch.inference_mode():
            merge_diff = float((merged_model(**check).logits - lora["model"](**check).logits).abs().max())

    name = "tiny" if args.tiny else "SmolLM2-135M-Instruct"
    print(f"\nmodel {name}, fp32 CPU, {args.threads} threads; train batch {args.batch_size} x {mean_len:.0f} tokens "
          f"(mean), {args.steps} timed steps after 1 warm-up; generation {args.n_prompts} prompts, batch "
          f"{args.gen_batch_size}, greedy, max {args.max_new_tokens} new tokens; adapter {version[:12]}")
    train_rows = [
        ["LoRA (r=8, q/k/v/o)", f"{lora['trainable']:,}", f"{lora['step_s']:.2f}", f"{lora['tok_s']:.0f}",
         f"{lora['losses'][0]:.3f} -> {lora['losses'][-1]:.3f}"],
        ["full fine-tune", f"{full['trainable']:,}", f"{full['step_s']:.2f}", f"{full['tok_s']:.0f}",
         f"{full['losses'][0]:.3f} -> {full['losses'][-1]:.3f}"],
        ["ratio LoRA / full", "", f"{lora['step_s'] / full['step_s']:.2f}x", f"{lora['tok_s'] / full['tok_s']:.2f}x",
         ""],
    ]
    print(tabulate(train_rows, headers=["training", "trainable params", "s/step", "tokens/s", "loss"]))
    gen_rows = [
        ["base", f"{base['tok_s']:.1f}", base["tokens"], f"{base['fixed_tok_s']:.1f}"],
        ["merged adapter", f"{merged['tok_s']:.1f}", merged["tokens"], f"{merged['fixed_tok_s']:.1f}"],
        ["ratio merged / base", f"{merged['tok_s'] / base['tok_s']:.2f}x", "",
         f"{merged['fixed_tok_s'] / base['fixed_tok_s']:.2f}x"],
    ]
    print()
    print(tabulate(gen_rows, headers=["generation", "tokens/s (to eos)", "tokens", "tokens/s (fixed length)"]))
    ratio = merged["fixed_tok_s"] / base["fixed_tok_s"]
    print(f"\nmerged >= 0.95x base (fixed length): {'yes' if ratio >= 0.95 else 'NO'} ({ratio:.2f}x); "
          f"max |logit| diff merged vs in-memory LoRA: {merge_diff:.2e}")
    print(f"sample base answer: {base['texts'][0]!r}\nsample merged answer: {merged['texts'][0]!r}")


if __name__ == "__main__":
    main()
