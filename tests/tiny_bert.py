"""The 2-layer, 4-head, 32-wide eager BERT (no pooler) the head-importance and head-gating tests share."""
import methods  # noqa: F401  (torchvision shim before transformers)
import torch
from transformers import BertConfig, BertModel

LAYERS, HEADS, HIDDEN, VOCAB = 2, 4, 32, 50


def make_model(seed: int = 0) -> BertModel:
    config = BertConfig(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                        intermediate_size=64, vocab_size=VOCAB)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    return BertModel(config, add_pooling_layer=False).eval()
