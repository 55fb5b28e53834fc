"""Find a model's attention blocks and edit their heads through per-family adapters.

An adapter wraps one attention block and exposes its heads by ORIGINAL index: a head keeps
its index after other heads of the block are removed. Removed heads are recorded on the
block itself in ``pruned_heads`` (a set of original indices), the attribute Hugging Face
BERT-style blocks already use, so the record survives ``copy.deepcopy``.

Adapters are looked up by the block's exact class (``module.qualname``); subclasses are not
matched because they may override ``forward``. Add a family with :func:`register_adapter`.

Layer index = position of the block among supported blocks in ``model.modules()`` order
(for BERT/RoBERTa encoders: ``encoder.layer[i].attention``; a decoder with cross-attention
numbers each layer's self- and cross-attention block consecutively).
"""
from __future__ import annotations

import abc
import operator
from typing import Iterable, Mapping

import torch
from torch import nn

__all__ = [
    "HeadAdapter",
    "BertAttentionAdapter",
    "TimmAttentionAdapter",
    "NoHeadsSelfAttention",
    "register_adapter",
    "adapter_for",
    "attention_layers",
    "num_heads_per_layer",
    "resolve_heads",
]


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _head_index(positions: list[int], head_dim: int, device: torch.device) -> torch.Tensor:
    """Feature indices of the heads at ``positions`` in a (heads * head_dim) layout."""
    pos = torch.tensor(positions, dtype=torch.long, device=device)
    return (pos[:, None] * head_dim + torch.arange(head_dim, device=device)).reshape(-1)


def _keep(linear: nn.Linear, index: torch.Tensor, dim: int) -> None:
    """Keep output rows (dim=0) or input columns (dim=1) ``index`` of ``linear``, in place."""
    weight = linear.weight
    linear.weight = nn.Parameter(weight.detach().index_select(dim, index).clone(), weight.requires_grad)
    if dim == 0:
        if linear.bias is not None:
            bias = linear.bias
            linear.bias = nn.Parameter(bias.detach().index_select(0, index).clone(), bias.requires_grad)
        linear.out_features = index.numel()
    else:
        linear.in_features = index.numel()


class HeadAdapter(abc.ABC):
    """One attention block. Subclasses implement the family-specific attributes and removal."""

    def __init__(self, module: nn.Module):
        self.module = module

    @classmethod
    def unsupported_reason(cls, module: nn.Module) -> str | None:
        """Why this block cannot be handled at all (None when it can)."""
        return None

    def removal_blocker(self) -> str | None:
        """Why heads of this block cannot be removed exactly (None when they can)."""
        return None

    @property
    @abc.abstractmethod
    def num_heads(self) -> int:
        """Current number of heads."""

    @property
    @abc.abstractmethod
    def head_dim(self) -> int:
        """Width of one head."""

    @property
    @abc.abstractmethod
    def output_projection(self) -> nn.Linear:
        """Linear whose input is the concatenated per-head context, (..., num_heads * head_dim)."""

    @abc.abstractmethod
    def _remove_positions(self, keep: list[int]) -> None:
        """Physically keep only the heads at current positions ``keep``."""

    @property
    def removed_heads(self) -> set[int]:
        """Original indices of the heads removed so far."""
        return set(getattr(self.module, "pruned_heads", ()))

    @property
    def original_num_heads(self) -> int:
        return self.num_heads + len(self.removed_heads)

    def kept_heads(self) -> list[int]:
        """Original indices of the remaining heads, in their current order."""
        removed = self.removed_heads
        return [h for h in range(self.original_num_heads) if h not in removed]

    def remove(self, heads: Iterable[int]) -> list[int]:
        """Remove heads (original indices; already removed ones are ignored); return those removed."""
        new = set(heads) - self.removed_heads
        if new:
            self._remove_positions([i for i, h in enumerate(self.kept_heads()) if h not in new])
            self.module.pruned_heads = self.removed_heads | new
        return sorted(new)


class NoHeadsSelfAttention(nn.Module):
    """Stand-in for a BERT-style self-attention whose heads were all removed.

    Returns an empty context (batch, seq, 0), so the block's output projection yields its bias,
    exactly as when all heads are masked; attention weights are (batch, 0, seq, kv_seq).
    """

    def __init__(self, attention_head_size: int, layer_idx: int | None = None, is_decoder: bool = False):
        super().__init__()
        self.num_attention_heads = 0
        self.attention_head_size = attention_head_size
        self.all_head_size = 0
        self.layer_idx = layer_idx
        self.is_decoder = is_decoder

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask=None,
        head_mask=None,
        encoder_hidden_states=None,
        past_key_values=None,
        output_attentions: bool = False,
        cache_position=None,
        **kwargs,
    ):
        if past_key_values is not None:
            raise ValueError(
                f"self-attention (layer_idx={self.layer_idx}) has all heads removed and cannot use a KV cache "
                "(an empty key tensor reads as an empty cache); call the model with use_cache=False"
            )
        batch, seq = hidden_states.shape[:2]
        kv_seq = seq if encoder_hidden_states is None else encoder_hidden_states.shape[1]
        context = hidden_states.new_zeros(batch, seq, 0)
        probs = hidden_states.new_zeros(batch, 0, seq, kv_seq) if output_attentions else None
        return context, probs


_BERT_SELF_ATTENTION = {
    f"transformers.models.{m}.modeling_{m}.{p}{kind}"
    for m, p in (("bert", "Bert"), ("roberta", "Roberta"))
    for kind in ("SelfAttention", "SdpaSelfAttention")
} | {_qualname(NoHeadsSelfAttention)}


class BertAttentionAdapter(HeadAdapter):
    """transformers 4.x ``BertAttention``/``RobertaAttention``: ``self.{query,key,value}`` + ``output.dense``.

    Works for the eager and sdpa self-attention classes. When the last head goes, ``self`` is
    replaced by :class:`NoHeadsSelfAttention`.
    """

    @classmethod
    def unsupported_reason(cls, module):
        inner = _qualname(type(module.self))
        return None if inner in _BERT_SELF_ATTENTION else f"unsupported self-attention class {inner}"

    @property
    def num_heads(self):
        return self.module.self.num_attention_heads

    @property
    def head_dim(self):
        return self.module.self.attention_head_size

    @property
    def output_projection(self):
        return self.module.output.dense

    def _remove_positions(self, keep):
        sa, d = self.module.self, self.head_dim
        index = _head_index(keep, d, self.output_projection.weight.device)
        for linear in (sa.query, sa.key, sa.value):
            _keep(linear, index, 0)
        _keep(self.output_projection, index, 1)
        sa.num_attention_heads = len(keep)
        sa.all_head_size = len(keep) * d

    def remove(self, heads):
        removed = super().remove(heads)
        sa = self.module.self
        if sa.num_attention_heads == 0 and not isinstance(sa, NoHeadsSelfAttention):
            # Also repairs a block emptied by transformers' own prune_heads, whose forward then fails.
            self.module.self = NoHeadsSelfAttention(sa.attention_head_size, sa.layer_idx, sa.is_decoder)
        return removed


class TimmAttentionAdapter(HeadAdapter):
    """timm ``timm.layers.attention.Attention`` (ViT/DeiT): fused ``qkv`` + optional ``gate`` + ``proj``.

    Zero heads need no replacement: reshape, sdpa and the manual path all accept 0 heads.
    """

    def removal_blocker(self):
        if not isinstance(self.module.norm, nn.Identity):
            return "scale_norm normalises across all heads, so removing heads changes the kept heads' output"
        return None

    @property
    def num_heads(self):
        return self.module.num_heads

    @property
    def head_dim(self):
        return self.module.head_dim

    @property
    def output_projection(self):
        return self.module.proj

    def _remove_positions(self, keep):
        m, d = self.module, self.head_dim
        index = _head_index(keep, d, m.proj.weight.device)
        _keep(m.qkv, torch.cat([index + s * m.attn_dim for s in range(3)]), 0)
        if getattr(m, "gate", None) is not None:
            _keep(m.gate, index, 0)
        _keep(m.proj, index, 1)
        m.num_heads = len(keep)
        m.attn_dim = len(keep) * d


_ADAPTERS: dict[str, type[HeadAdapter]] = {}


def register_adapter(module_type: type | str, adapter: type[HeadAdapter]) -> None:
    """Handle blocks of exactly ``module_type`` (a class or its ``module.qualname``) with ``adapter``."""
    _ADAPTERS[module_type if isinstance(module_type, str) else _qualname(module_type)] = adapter


for _family in ("bert", "roberta"):
    register_adapter(
        f"transformers.models.{_family}.modeling_{_family}.{_family.capitalize()}Attention", BertAttentionAdapter
    )
register_adapter("timm.layers.attention.Attention", TimmAttentionAdapter)


def adapter_for(module: nn.Module) -> HeadAdapter | None:
    """The adapter for ``module``, or None when its class is not registered or its variant unsupported."""
    cls = _ADAPTERS.get(_qualname(type(module)))
    if cls is None or cls.unsupported_reason(module) is not None:
        return None
    return cls(module)


def attention_layers(model: nn.Module) -> list[tuple[int, HeadAdapter]]:
    """``(layer_index, adapter)`` for every supported attention block, in ``model.modules()`` order."""
    found = (adapter_for(m) for m in model.modules())
    return list(enumerate(a for a in found if a is not None))


def num_heads_per_layer(model: nn.Module) -> list[int]:
    """Current number of heads of each supported attention layer."""
    return [a.num_heads for _, a in attention_layers(model)]


def _no_attention_error(model: nn.Module) -> ValueError:
    names = sorted({type(m).__name__ for m in model.modules() if "attention" in type(m).__name__.lower()})
    seen = f"; unsupported attention modules found: {', '.join(names)}" if names else ""
    supported = ", ".join(sorted(_ADAPTERS))
    return ValueError(f"no supported attention module in {type(model).__name__} (supported: {supported}){seen}")


def resolve_heads(
    model: nn.Module, heads: Mapping[int, Iterable[int]]
) -> dict[int, tuple[HeadAdapter, set[int]]]:
    """Validate ``{layer: heads}`` (original indices) against ``model``; nothing is modified."""
    layers = dict(attention_layers(model))
    if not layers:
        raise _no_attention_error(model)
    plan = {}
    for layer, layer_heads in heads.items():
        if isinstance(layer, bool) or not hasattr(layer, "__index__") or operator.index(layer) not in layers:
            raise ValueError(
                f"layer index {layer!r} out of range: {type(model).__name__} has {len(layers)} "
                f"supported attention layers (0..{len(layers) - 1})"
            )
        layer = operator.index(layer)
        adapter, chosen = layers[layer], set()
        n = adapter.original_num_heads
        for head in layer_heads:
            if isinstance(head, bool) or not hasattr(head, "__index__"):
                raise ValueError(f"layer {layer}: head index {head!r} is not an integer")
            head = operator.index(head)
            if not 0 <= head < n:
                raise ValueError(
                    f"layer {layer} ({type(adapter.module).__name__}): head index {head} out of range, "
                    f"the layer has {n} heads (original indices 0..{n - 1})"
                )
            chosen.add(head)
        plan[layer] = (adapter, chosen)
    return plan
