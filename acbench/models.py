"""Building the transformer encoders the experiments measure, from a stated geometry (no hub access)."""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from acbench.config import Strict


class EncoderGeometry(Strict):
    """A BERT/RoBERTa-family encoder geometry; the defaults are RoBERTa-base (ATHENA-base's backbone)."""

    family: Literal["roberta", "bert"] = "roberta"
    num_layers: int = Field(12, ge=1)
    num_heads: int = Field(12, ge=1)
    hidden: int = Field(768, ge=1)
    intermediate: int = Field(3072, ge=1)
    vocab_size: int = Field(50265, ge=8)
    max_position: int = Field(514, ge=8)
    pooler: bool = False

    def model_post_init(self, __context) -> None:
        if self.hidden % self.num_heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by num_heads ({self.num_heads})")


def build_encoder(geometry: EncoderGeometry, seed: int,
                  attn_implementation: str = "eager") -> torch.nn.Module:
    """A randomly initialised encoder (seeded) in eval mode.

    ``eager`` attention by default: with sdpa, fvcore counts no FLOPs for attention and
    ``output_attentions`` returns nothing useful.
    """
    from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

    config_cls, model_cls = {"roberta": (RobertaConfig, RobertaModel),
                             "bert": (BertConfig, BertModel)}[geometry.family]
    config = config_cls(
        vocab_size=geometry.vocab_size, hidden_size=geometry.hidden,
        num_hidden_layers=geometry.num_layers, num_attention_heads=geometry.num_heads,
        intermediate_size=geometry.intermediate, max_position_embeddings=geometry.max_position)
    config._attn_implementation = attn_implementation
    torch.manual_seed(seed)
    return model_cls(config, add_pooling_layer=geometry.pooler).eval()


def token_inputs(batch: int, seq: int, vocab_size: int, seed: int) -> dict[str, torch.Tensor]:
    """Random token ids (avoiding the first special ids) with a full attention mask."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (batch, seq), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
