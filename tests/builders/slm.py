"""A tiny chat-capable causal LM (Llama, byte-level BPE) built from scratch in about a second.

The tokenizer is trained on the fly on generated news-like lines; its chat template writes
``<|im_start|>role\\n...<|im_end|>`` turns like SmolLM2's. Nothing is downloaded.
"""
from __future__ import annotations

import itertools
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

_SUBJECTS = ("stocks", "the fed", "lakers", "a storm", "apple", "the senate", "vaccine makers", "oil prices",
             "the city council", "tesla", "a new study", "farmers", "nasa", "the world cup", "home prices")
_VERBS = ("rise after", "fall before", "win against", "warn about", "report on", "prepare for",
          "delay", "announce", "react to", "debate", "celebrate", "review")
_OBJECTS = ("interest rates", "the election", "heavy snow", "record profits", "a trade deal", "the playoffs",
            "new rules", "flu season", "climate change", "job growth", "the budget", "a recall",
            "mortgage rates", "space launch", "weather forecast")
_WORDS = ("news search queries related topics reader title category abstract recently read most recent "
          "system user assistant write one query per line lowercase numbering explore next interests "
          "finance sports weather health politics tech travel")


def news_corpus(n_lines: int = 400) -> list[str]:
    """Deterministic news-like English lines for training the tokenizer."""
    combos = itertools.product(_SUBJECTS, _VERBS, _OBJECTS)
    lines = [f"{s.capitalize()} {v} {o}" for s, v, o in itertools.islice(combos, n_lines)]
    return lines + [_WORDS, _WORDS.upper(), "0 1 2 3 4 5 6 7 8 9 - . , : ? ! ' \" ( )"]


def tiny_tokenizer(vocab_size: int = 500):
    """A byte-level BPE ``PreTrainedTokenizerFast`` with pad/eos tokens and the chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(news_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>", bos_token="<|im_start|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_causal_lm(directory: str | Path, *, hidden: int = 32, layers: int = 2, heads: int = 4,
                   intermediate: int = 64, initializer_range: float = 0.3,
                   seed: int = 0) -> Path:
    """Save a randomly initialised tiny ``LlamaForCausalLM`` + tokenizer into ``directory``; return it.

    ``initializer_range`` is larger than Llama's 0.02 so the tied output embeddings give logits large
    enough for a few LoRA steps to memorise a toy set (at 0.02 the loss hardly moves)."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    directory = Path(directory)
    tokenizer = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=heads, intermediate_size=intermediate, max_position_embeddings=1024,
        initializer_range=initializer_range, tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory
