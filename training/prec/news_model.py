"""PREC news encoder: token + position + view embeddings -> BERT-style Transformer -> pooling."""
from __future__ import annotations

import logging

import torch
from torch import nn
from transformers import BertConfig, BertModel

from training.prec.config import NewsPretrainConfig
from training.prec.tokenization import MASK, NewsTokenizer, minilm_dir

log = logging.getLogger(__name__)


class NewsEncoder(nn.Module):
    """Encodes ``[CLS] view_1 [SEP] view_2 [SEP] ...`` sequences into one vector per news."""

    def __init__(self, backbone_config: BertConfig, n_views: int, pooling: str = "mean") -> None:
        super().__init__()
        self.backbone = BertModel(backbone_config, add_pooling_layer=False)
        self.view_embeddings = nn.Embedding(n_views + 1, backbone_config.hidden_size)
        nn.init.normal_(self.view_embeddings.weight, std=backbone_config.initializer_range)
        self.pooling = pooling

    @property
    def hidden_size(self) -> int:
        return int(self.backbone.config.hidden_size)

    @property
    def word_embeddings(self) -> nn.Embedding:
        return self.backbone.embeddings.word_embeddings

    def hidden_states(self, input_ids: torch.Tensor, view_ids: torch.Tensor,
                      attention_mask: torch.Tensor) -> torch.Tensor:
        """Contextual token states ``(batch, length, hidden)``; the backbone adds positions."""
        embeds = self.word_embeddings(input_ids) + self.view_embeddings(view_ids)
        return self.backbone(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state

    def pool(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "cls":
            return states[:, 0]
        weights = attention_mask.unsqueeze(-1).to(states.dtype)
        return (states * weights).sum(1) / weights.sum(1).clamp_min(1.0)

    def forward(self, input_ids: torch.Tensor, view_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> torch.Tensor:
        """News vectors ``(batch, hidden)``."""
        return self.pool(self.hidden_states(input_ids, view_ids, attention_mask), attention_mask)


def scratch_backbone_config(config: NewsPretrainConfig, tokenizer: NewsTokenizer) -> BertConfig:
    return BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=config.hidden_size,
        num_hidden_layers=config.num_layers, num_attention_heads=config.num_heads,
        intermediate_size=config.intermediate_size, max_position_embeddings=config.max_len,
        type_vocab_size=1, hidden_dropout_prob=config.dropout, attention_probs_dropout_prob=config.dropout,
        pad_token_id=tokenizer.pad_id,
    )


def build_news_encoder(config: NewsPretrainConfig, tokenizer: NewsTokenizer) -> NewsEncoder:
    """Randomly initialised encoder (scratch) or one initialised from MiniLM (``config.pretrained``).

    Uses the current torch RNG: seed it first for reproducible initialisation.
    """
    n_views = len(config.views)
    if not config.pretrained:
        return NewsEncoder(scratch_backbone_config(config, tokenizer), n_views, config.pooling)
    directory = minilm_dir(config.pretrained_dir)
    pretrained = BertModel.from_pretrained(str(directory))  # with its pooler, so all checkpoint keys match
    if config.max_len > pretrained.config.max_position_embeddings:
        raise ValueError(f"max_len={config.max_len} exceeds MiniLM's {pretrained.config.max_position_embeddings}")
    old_vocab = pretrained.config.vocab_size
    pretrained.resize_token_embeddings(tokenizer.vocab_size, mean_resizing=False)
    encoder = NewsEncoder(pretrained.config, n_views, config.pooling)
    encoder.backbone.load_state_dict(
        {k: v for k, v in pretrained.state_dict().items() if not k.startswith("pooler.")})
    with torch.no_grad():
        mask_row = encoder.word_embeddings.weight[tokenizer.tokenizer.token_to_id(MASK)].clone()
        for mask_id in tokenizer.view_mask_ids:  # new [MASK_i] rows start as MiniLM's [MASK]
            if mask_id >= old_vocab:
                encoder.word_embeddings.weight[mask_id] = mask_row
        encoder.view_embeddings.weight.zero_()  # new view embeddings: start exactly at MiniLM
    log.info("news encoder initialised from MiniLM at %s (vocab %d -> %d)", directory, old_vocab, tokenizer.vocab_size)
    return encoder
