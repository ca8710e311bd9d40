"""Cross-encoder over (trigger, candidate) news pairs with a click head (1 logit) and a quality head (5 logits)."""
from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import BertConfig, PreTrainedModel

from training.cross_encoder.config import N_QUALITY, CrossEncoderConfig
from training.cross_encoder.pair_inputs import HFPairInputs, NewsPairInputs, PairInputs
from training.prec.news_encoder_store import load_news_encoder
from training.prec.news_model import NewsEncoder
from training.prec.tokenization import NewsTokenizer, minilm_dir

log = logging.getLogger(__name__)


class NewsPairEncoder(nn.Module):
    """A PREC ``NewsEncoder`` (BERT + view embeddings) plus a trigger/candidate segment embedding.

    Input embeddings = word + view + segment (the backbone adds positions). With a zero segment embedding the
    token states equal the news encoder's ``hidden_states`` on the same ids and view ids.
    """

    def __init__(self, news_encoder: NewsEncoder, zero_segments: bool) -> None:
        super().__init__()
        self.news = news_encoder
        self.segment_embeddings = nn.Embedding(2, news_encoder.hidden_size)
        if zero_segments:
            nn.init.zeros_(self.segment_embeddings.weight)
        else:
            nn.init.normal_(self.segment_embeddings.weight, std=news_encoder.backbone.config.initializer_range)

    @property
    def hidden_size(self) -> int:
        return self.news.hidden_size

    @property
    def backbone_config(self) -> Any:
        return self.news.backbone.config

    @property
    def max_positions(self) -> int:
        return int(self.news.backbone.config.max_position_embeddings)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        embeds = (self.news.word_embeddings(batch["input_ids"]) + self.news.view_embeddings(batch["view_ids"])
                  + self.segment_embeddings(batch["segment_ids"]))
        return self.news.backbone(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).last_hidden_state


class HFPairEncoder(nn.Module):
    """A Hugging Face ``AutoModel`` backbone fed ``input_ids`` / ``attention_mask`` (/ ``token_type_ids``)."""

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.model = model
        self.takes_token_types = "token_type_ids" in inspect.signature(model.forward).parameters

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def backbone_config(self) -> Any:
        return self.model.config

    @property
    def max_positions(self) -> int:
        config = self.model.config
        limit = int(config.max_position_embeddings)
        pad = getattr(config, "pad_token_id", None)
        if getattr(config, "model_type", "") in ("mpnet", "roberta", "xlm-roberta", "camembert") and pad is not None:
            limit -= pad + 1  # positions start after the padding index
        return limit

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        kwargs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if self.takes_token_types and "token_type_ids" in batch:
            kwargs["token_type_ids"] = batch["token_type_ids"]
        return self.model(**kwargs).last_hidden_state


class CrossEncoder(nn.Module):
    """``forward(batch) -> (click_logit (B,), quality_logits (B, 5))`` over the joint pair states:
    pool ("mean" over tokens or "cls") -> dense + tanh (BERT-style pooler) -> dropout -> the two linear heads.

    ``inputs`` (the pair layout with its tokenizer) travels with the model, so a saved cross-encoder is
    self-contained: ``score_pairs(model, news, ...)`` needs nothing else.
    """

    def __init__(self, config: CrossEncoderConfig, encoder: NewsPairEncoder | HFPairEncoder,
                 inputs: PairInputs) -> None:
        super().__init__()
        assert config.max_len is not None  # CrossEncoderConfig.__post_init__ resolves it
        if config.max_len > encoder.max_positions:
            raise ValueError(f"max_len={config.max_len} exceeds the backbone's {encoder.max_positions} positions; "
                             f"lower CrossEncoderConfig.max_len")
        self.config = config
        self.encoder = encoder
        self.inputs = inputs
        self.dropout = nn.Dropout(config.dropout)
        #: BERT-style pooler shared by both heads (dense + tanh), so they can read non-linear pair features
        self.pooler = nn.Sequential(nn.Linear(encoder.hidden_size, encoder.hidden_size), nn.Tanh())
        self.click_head = nn.Linear(encoder.hidden_size, 1)
        self.quality_head = nn.Linear(encoder.hidden_size, N_QUALITY)
        self.model_version: str | None = None  # set by save_cross_encoder / load_cross_encoder

    @property
    def hidden_size(self) -> int:
        return self.encoder.hidden_size

    @property
    def tokenizer(self) -> Any:
        return self.inputs.tokenizer

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def hidden_states(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Joint token states ``(B, L, hidden)`` of the pair sequences."""
        return self.encoder(batch)

    def pool(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.config.pooling == "cls":
            return states[:, 0]
        weights = attention_mask.unsqueeze(-1).to(states.dtype)
        return (states * weights).sum(1) / weights.sum(1).clamp_min(1.0)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.dropout(self.pooler(self.pool(self.hidden_states(batch), batch["attention_mask"])))
        return self.click_head(pooled).squeeze(-1), self.quality_head(pooled)


# ----------------------------------------------------------------------------------------------- builders
def scratch_bert_config(config: CrossEncoderConfig, tokenizer: NewsTokenizer) -> BertConfig:
    assert config.max_len is not None  # CrossEncoderConfig.__post_init__ resolves it
    return BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=config.hidden_size, num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads, intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_len, type_vocab_size=1, hidden_dropout_prob=config.dropout,
        attention_probs_dropout_prob=config.dropout, pad_token_id=tokenizer.pad_id,
    )


def news_cross_encoder(config: CrossEncoderConfig, news_encoder: NewsEncoder, tokenizer: NewsTokenizer,
                       view_ids: tuple[int, ...], zero_segments: bool) -> CrossEncoder:
    """Cross-encoder on a PREC-style backbone (used by the builder and by ``load_cross_encoder``)."""
    assert config.views is not None and config.max_len is not None  # resolved by CrossEncoderConfig
    inputs = NewsPairInputs(tokenizer, config.views, view_ids, int(config.max_len))
    return CrossEncoder(config, NewsPairEncoder(news_encoder, zero_segments), inputs)


def hf_cross_encoder(config: CrossEncoderConfig, backbone: PreTrainedModel, tokenizer: Any) -> CrossEncoder:
    """Cross-encoder on a Hugging Face ``AutoModel`` and its tokenizer (e.g. one built from a config)."""
    encoder = HFPairEncoder(backbone)
    use_types = encoder.takes_token_types and "token_type_ids" in getattr(tokenizer, "model_input_names", [])
    assert config.views is not None and config.max_len is not None  # resolved by CrossEncoderConfig
    inputs = HFPairInputs(tokenizer, config.views, int(config.max_len), use_types)
    return CrossEncoder(config, encoder, inputs)


def auto_model(source: str | Path | Any, from_config: bool = False) -> PreTrainedModel:
    """``AutoModel`` without the pooler when the class has one (the cross-encoder pools itself)."""
    from transformers import AutoModel

    load = AutoModel.from_config if from_config else AutoModel.from_pretrained
    source = str(source) if isinstance(source, Path) else source
    try:
        return load(source, add_pooling_layer=False)
    except TypeError:
        return load(source)


def add_view_embeddings(encoder: NewsEncoder, n: int) -> None:
    """Give ``encoder`` ``n`` more view-embedding rows (views it was not pre-trained on, e.g. ``source``), each
    starting at the mean of its text views' rows, so a new view's tokens start as plain text."""
    if n <= 0:
        return
    old = encoder.view_embeddings
    grown = torch.nn.Embedding(old.num_embeddings + n, old.embedding_dim)
    with torch.no_grad():
        grown.weight[: old.num_embeddings] = old.weight
        grown.weight[old.num_embeddings:] = old.weight[1:].mean(dim=0)
    encoder.view_embeddings = grown


def build_cross_encoder(config: CrossEncoderConfig, news_encoder_dir: str | Path | None = None,
                        seed: int | None = 42) -> CrossEncoder:
    """A new cross-encoder (eval mode, CPU); ``news_encoder_dir`` (a PREC news encoder) for "prec" / "scratch".

    Random parts (heads, and for "scratch" everything) are drawn under ``seed`` without touching the global
    torch RNG (None: the current RNG).
    """
    if config.backbone in ("prec", "scratch") and news_encoder_dir is None:
        raise ValueError(f"backbone={config.backbone!r} needs news_encoder_dir (a PREC news encoder directory)")
    assert config.views is not None  # resolved by CrossEncoderConfig
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        if config.backbone == "prec":
            assert news_encoder_dir is not None  # checked above
            saved = load_news_encoder(news_encoder_dir)
            known = list(saved.views) + [v for v in config.views if v not in saved.views]
            add_view_embeddings(saved.model, len(known) - len(saved.views))
            view_ids = tuple(known.index(v) + 1 for v in config.views)
            model = news_cross_encoder(config, saved.model, saved.tokenizer, view_ids, zero_segments=True)
            log.info("cross-encoder initialised from PREC news encoder %s (%s)", news_encoder_dir,
                     saved.model_version)
        elif config.backbone == "scratch":
            assert news_encoder_dir is not None  # checked above
            saved = load_news_encoder(news_encoder_dir)
            encoder = NewsEncoder(scratch_bert_config(config, saved.tokenizer), len(config.views))
            view_ids = tuple(range(1, len(config.views) + 1))
            model = news_cross_encoder(config, encoder, saved.tokenizer, view_ids, zero_segments=False)
        else:
            from transformers import AutoTokenizer

            directory = minilm_dir(config.pretrained_dir)
            tokenizer = AutoTokenizer.from_pretrained(str(directory))
            model = hf_cross_encoder(config, auto_model(directory), tokenizer)
    return model.eval()
