"""The shared opening of a call's prompts runs once: same logits and greedy answers as whole prompts."""
from __future__ import annotations

import pytest
import torch
from builders.slm import tiny_causal_lm

from training.slm.lora_sft import load_causal_lm
from training.slm.shared_prefix import PromptOpening, cache_argument, greedy_continue, shared_prefix_length


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return load_causal_lm(tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm")), torch_threads=1)


def test_shared_prefix_length_leaves_each_sequence_a_token():
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5, 6], [1, 2, 7]]) == 2
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3, 4]]) == 2     # the shorter keeps its last token
    assert shared_prefix_length([[1, 2, 3]]) == 2
    assert shared_prefix_length([[5], [5, 6]]) == 0
    assert shared_prefix_length([]) == 0


def _left_padded(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = 1
    return ids, mask


def test_opening_then_padded_rows_equals_whole_prompts(lm):
    model, tokenizer = lm
    opening_ids = tokenizer("read the news and write what comes next", add_special_tokens=False)["input_ids"]
    rows = [opening_ids + tokenizer(t, add_special_tokens=False)["input_ids"]
            for t in ("storm", "rates rise again today", "a mid length title")]
    assert len({len(r) for r in rows}) == 3
    with torch.inference_mode():
        opening = PromptOpening.of(model, rows, min_tokens=2)
        assert opening is not None and opening.length == len(opening_ids)
        assert opening.argument == cache_argument(model)
        ids, mask = _left_padded([r[opening.length:] for r in rows], pad=0)
        shared = opening.forward(model, ids, mask).logits[:, -1]
        for i, r in enumerate(rows):
            whole = model(input_ids=torch.tensor([r])).logits[0, -1]
            torch.testing.assert_close(shared[i], whole, atol=1e-4, rtol=1e-4)
        eos = tokenizer.eos_token_id
        greedy = greedy_continue(model, opening, ids, mask, 5, pad_id=0, eos_id=eos)
        for i, r in enumerate(rows):
            whole = torch.tensor([r])
            expected = model.generate(input_ids=whole, attention_mask=torch.ones_like(whole), max_new_tokens=5,
                                      do_sample=False, num_beams=1, pad_token_id=0, eos_token_id=eos)
            new = expected[0, len(r):].tolist()
            assert greedy[i, :len(new)].tolist() == new
    assert PromptOpening.of(model, [[1, 2], [3, 4]]) is None           # nothing shared: run whole
    assert PromptOpening.of(model, rows, min_tokens=10**6) is None
