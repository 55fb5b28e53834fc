"""Parameter counts, split into named groups, each with a statement of what it includes.

Every count is over *unique* parameters (``model.named_parameters()`` drops tied duplicates, e.g. an
MLM decoder tied to the word embeddings is counted once, under its first name). Buffers are not
parameters and are never counted.

BERT/RoBERTa-family models (BERT, RoBERTa, XLM-R, ELECTRA, ... and HF ViT, which shares the
layout) are recognised by structure: a module with ``embeddings`` and ``encoder.layer`` whose layers
hold ``attention.self.{query,key,value}``, ``attention.output.dense``, ``intermediate.dense`` and
``output.dense``. Any other model gets the whole-model count only.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn

_QKVO = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense")
_FFN = ("intermediate.dense", "output.dense")
PARTITION = ("embeddings", "attention", "ffn", "other")


def _matches(name: str, prefix: str) -> bool:
    """True when parameter ``name`` lies in the module called ``prefix`` (dotted-boundary match)."""
    return prefix == "" or name == prefix or name.startswith(prefix + ".")


def _has(module: nn.Module, dotted: str) -> bool:
    try:
        module.get_submodule(dotted)
    except AttributeError:
        return False
    return True


def find_bert_backbone(model: nn.Module) -> str | None:
    """Module name of the first BERT-like backbone inside ``model`` ("" for the model itself), else None."""
    for name, module in model.named_modules():
        layers = getattr(getattr(module, "encoder", None), "layer", None)
        if not hasattr(module, "embeddings") or not isinstance(layers, nn.ModuleList) or len(layers) == 0:
            continue
        if all(_has(layer, path) for layer in layers for path in _QKVO + _FFN):
            return name
    return None


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def count_parameters(model: nn.Module) -> dict:
    """Count parameters per group.

    Returns ``{"family", "backbone", "groups", "counts", "partition"}``: ``groups`` is a list of
    ``{"name", "count", "description"}``; ``counts`` maps name to count; the groups named in
    ``partition`` (embeddings, attention, ffn, other) are disjoint and sum to ``total``. ``encoder``
    overlaps them: it is attention + ffn + the layers' layer norms (which are in ``other``).
    For a model that is not BERT-like, only ``total`` is given and ``partition`` is empty.
    """
    params = dict(model.named_parameters())
    total = sum(p.numel() for p in params.values())
    groups = [{"name": "total", "count": total,
               "description": "all unique parameters of the model (tied weights counted once, buffers excluded)"}]
    backbone = find_bert_backbone(model)
    if backbone is None:
        return {"family": "generic", "backbone": None, "groups": groups,
                "counts": {"total": total}, "partition": []}

    encoder_layers = _join(backbone, "encoder.layer")
    n_layers = len(model.get_submodule(encoder_layers))
    layer_prefixes = [f"{encoder_layers}.{i}" for i in range(n_layers)]
    prefixes = {
        "embeddings": [_join(backbone, "embeddings")],
        "encoder": [_join(backbone, "encoder")],
        "attention": [f"{lp}.{m}" for lp in layer_prefixes for m in _QKVO],
        "ffn": [f"{lp}.{m}" for lp in layer_prefixes for m in _FFN],
    }
    counts = {g: _count(params, ps) for g, ps in prefixes.items()}
    counts["other"] = total - counts["embeddings"] - counts["attention"] - counts["ffn"]
    descriptions = {
        "embeddings": f"'{prefixes['embeddings'][0]}': token, position and type embeddings and their layer norm",
        "encoder": f"'{prefixes['encoder'][0]}': all {n_layers} transformer layers (attention + ffn + layer norms)",
        "attention": f"Q, K, V and output projection weights+biases of the {n_layers} layers "
                     "(attention.self.query/key/value, attention.output.dense)",
        "ffn": f"feed-forward weights+biases of the {n_layers} layers (intermediate.dense, output.dense)",
        "other": "everything else: the layers' layer norms, pooler, task heads, any extra attention parameters "
                 "(e.g. relative position embeddings)",
    }
    for name in ("embeddings", "encoder", "attention", "ffn", "other"):
        groups.append({"name": name, "count": counts[name], "description": descriptions[name]})
    return {"family": "bert", "backbone": backbone, "groups": groups,
            "counts": {"total": total, **counts}, "partition": list(PARTITION)}


def _count(params: Mapping[str, nn.Parameter], prefixes: Sequence[str]) -> int:
    return sum(p.numel() for n, p in params.items() if any(_matches(n, pre) for pre in prefixes))


def count_parameters_by_prefix(model: nn.Module, groups: Mapping[str, str | Sequence[str]]) -> dict:
    """Count unique parameters in arbitrary named groups of module-name prefixes.

    A prefix matches a parameter when the parameter lies in that module (``"encoder.layer.1"`` matches
    ``encoder.layer.1.x`` but not ``encoder.layer.10.x``); ``""`` matches everything. Groups may
    overlap. Returns ``{"groups": [{"name", "count", "prefixes"}], "counts", "total", "unassigned"}``;
    ``unassigned`` counts parameters matched by no group.
    """
    params = dict(model.named_parameters())
    norm = {g: [ps] if isinstance(ps, str) else list(ps) for g, ps in groups.items()}
    rows = [{"name": g, "count": _count(params, ps), "prefixes": ps} for g, ps in norm.items()]
    everything = [pre for ps in norm.values() for pre in ps]
    assigned = _count(params, everything)
    total = sum(p.numel() for p in params.values())
    return {"groups": rows, "counts": {r["name"]: r["count"] for r in rows},
            "total": total, "unassigned": total - assigned}
