"""How much of SmolLM2 survives a layer cut, before any training (protocol of issue 24, change 15).

    DAGSTER_HOME=<project>/.newsforge/dagster HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/probe_truncated_layers.py \
        [--partition 2019-11-14] [--examples 64] [--threads 2]

Run it in a project whose data is the development data (as ``benchmarks/sweep_warm_start.py``). For each layer
subset of SmolLM2-135M-Instruct (``training.query_lists.policy.layer_subset``): the mean loss of the warm-start
targets' tokens (next-day targets of the first ``--examples`` train rows of D−4..D−2, chat prompt as in SFT,
``max_len`` 320) and the greedy answer to the first of those prompts. No weight is trained; the report day is
not read. ln 49,152 ≈ 10.8 is the loss of a uniform guess.
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
from dagster import AssetKey, DagsterInstance  # noqa: E402

from orchestration.resources import DvcData  # noqa: E402
from training.data.prepared import load_user_signals  # noqa: E402
from training.quality.smollm import smollm2_dir  # noqa: E402
from training.query_lists.experiment import ProtocolDays, capped  # noqa: E402
from training.query_lists.policy import layer_subset  # noqa: E402
from training.query_lists.prompt_rows import user_day_rows  # noqa: E402
from training.query_lists.warm_start import warm_start_targets  # noqa: E402
from training.settings import cache_dir  # noqa: E402
from training.slm.lora_sft import collate, load_causal_lm, sft_examples  # noqa: E402
from training.slm.prompts import chat_prompt  # noqa: E402

TRAIN_ROWS, MAX_LEN, BATCH = 400, 320, 8


def subsets(total: int) -> dict[str, list[int]]:
    """The cuts compared: the demo's (first 8), 8 layers taken elsewhere, 12 layers, and the whole model."""
    return {"all": list(range(total)), "first 8 (the demo's)": list(range(8)),
            "first 7 + last 1": [*range(7), total - 1], "first 6 + last 2": [*range(6), total - 2, total - 1],
            "first 4 + last 4": [*range(4), *range(total - 4, total)],
            "8 spread evenly": sorted({int(i) for i in np.round(np.linspace(0, total - 1, 8))}),
            "first 12": list(range(12)), "first 6 + last 6": [*range(6), *range(total - 6, total)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--partition", default="2019-11-14")
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from orchestration.definitions import defs

    instance = DagsterInstance.get()
    news, behaviors = (defs.load_asset_value(AssetKey(n), instance=instance) for n in ("mind_news", "mind_behaviors"))
    days = ProtocolDays.of(args.partition, behaviors.days)
    rows = user_day_rows(behaviors.histories, behaviors.impressions, news, days.train,
                         load_user_signals(DvcData().prepared_path))
    targets = warm_start_targets(capped(rows, TRAIN_ROWS), news)
    model, tokenizer = load_causal_lm(smollm2_dir(cache_dir("llm")), torch_threads=args.threads)
    examples = sft_examples(tokenizer, targets.messages[: args.examples], targets.targets[: args.examples], MAX_LEN,
                            task="user")
    prompt = tokenizer(chat_prompt(tokenizer, targets.messages[0], task="user"), return_tensors="pt",
                       add_special_tokens=False)
    records = []
    for name, keep in subsets(int(model.config.num_hidden_layers)).items():
        cut = layer_subset(model, keep).eval()
        with torch.no_grad():
            losses = [float(cut(**collate(examples[i: i + BATCH], tokenizer.pad_token_id)).loss)
                      for i in range(0, len(examples), BATCH)]
            answer = cut.generate(**prompt, max_new_tokens=24, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        text = tokenizer.decode(answer[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)
        records.append({"layers": name, "n": len(keep), "target-token loss": f"{np.mean(losses):.2f}",
                        "greedy answer (first 60 characters)": " / ".join(text.split("\n"))[:60]})
        print(records[-1], flush=True)
        del cut
    print(f"\n{len(examples)} warm-start examples of {', '.join(days.train)}; target: {targets.targets[0]!r}\n")
    print(pd.DataFrame(records).to_markdown(index=False))


if __name__ == "__main__":
    main()
