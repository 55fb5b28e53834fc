"""Local stand-ins for what the ``paper`` profile fetches, so its code path runs on CPU in the tests.

- Hub encoders (``hub:roberta-base``, ``hub:hfl/chinese-roberta-wwm-ext``): tiny random models of
  the same architecture and tokenizer kind, written with ``save_pretrained`` (config.json,
  safetensors, tokenizer files) under a folder that ``ACBENCH_HUB_DIR`` points at;
- CIFAR-100 (downloaded at ``paper``, absent from the mirror): random uint8 images of 100 classes;
- OFA-KD's released CIFAR-100 teacher (``init: release``): a random timm model of the same architecture,
  saved under the release's file name in a download cache that ``ACBENCH_CACHE_DIR`` points at, so
  the stage finds it as an earlier download and its own fetch, checksum and loading run;
- the scale: each stage's ``smoke`` config merged over its ``paper`` config (sizes, schedules,
  latency rounds), keeping the paper's identity (encoder, dataset, initialisation, student shape),
  ``device: cpu``, and one optimizer step per training phase where the stage sets its own training subset
  or trains on its ``teacher`` stage's (the attention-distillation students).
"""
from __future__ import annotations

from pathlib import Path

import torch

from acbench.config import deep_merge

KEEP_FROM_PAPER = ("encoder", "student", "init", "dataset")  # what makes a stage the paper's


def _texts() -> list[str]:
    return ["Tom has 3 apples and buys 5 more. How many apples does he have now?",
            "A box holds 12 pens; 4 are red. How many are not red?",
            "小明有3个苹果，又买了5个，现在有多少个苹果？"] * 4


def save_roberta(folder: Path, layers: int = 2, heads: int = 4) -> None:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_texts(), vocab_size=400, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(folder))
    tokenizer = RobertaTokenizerFast(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"))
    tokenizer.save_pretrained(str(folder))
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=48, num_hidden_layers=layers, num_attention_heads=heads,
                           intermediate_size=96, max_position_embeddings=130, pad_token_id=1)
    torch.manual_seed(0)
    RobertaModel(config).save_pretrained(str(folder))


def save_chinese_bert(folder: Path) -> None:
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    chars = sorted({c for text in _texts() for c in text if not c.isspace()} | set("0123456789.%"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), tokenize_chinese_chars=True).save_pretrained(str(folder))
    config = BertConfig(vocab_size=len(vocab), hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=96, max_position_embeddings=256)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(folder))


def make_hub(root: Path, roberta_depth: bool = False) -> Path:
    """``roberta_depth``: the roberta-base stand-in has roberta-base's 12 layers and 12 heads (still 48 wide),
    for stages whose students need a teacher that deep (the attention-distillation students)."""
    save_roberta(root / "roberta-base", *((12, 12) if roberta_depth else ()))
    save_chinese_bert(root / "hfl" / "chinese-roberta-wwm-ext")
    return root


def make_release_cache(root: Path, url: str, name: str, num_classes: int = 100) -> Path:
    """``root`` as a download cache holding a random ``name`` timm model where ``url``'s file would be kept."""
    import timm
    from urllib.parse import urlparse

    target = root / "teachers" / Path(urlparse(url).path).name
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(timm.create_model(name, pretrained=False, num_classes=num_classes).state_dict(), target)
    return root


def fake_cifar(split: str, limit: int | None = None, seed: int = 0, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """A class-balanced random stand-in of a CIFAR split (``limit`` images, 100 classes for cifar100)."""
    classes = 100 if kwargs.get("dataset") == "cifar100" else 10
    n = limit or 200
    g = torch.Generator().manual_seed(seed + (split == "test"))
    return (torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
            torch.arange(n, dtype=torch.int64) % classes)


def _drop_identity(smoke: dict) -> dict:
    out = {}
    for key, value in smoke.items():
        if key in KEEP_FROM_PAPER:
            continue
        out[key] = _drop_identity(value) if isinstance(value, dict) else value
    return out


def shrunk_paper_config(replication, stage: str) -> dict:
    """The paper config of ``stage`` with the smoke scale merged over it (see the module docstring)."""
    params = replication.params
    paper = deep_merge(params.common.get(stage, {}), params.profiles["paper"][stage])
    shrunk = deep_merge(paper, _drop_identity(params.profiles["smoke"][stage]))
    if "device" in shrunk:
        shrunk["device"] = "cpu"
    limit = shrunk.get("data", {}).get("train_limit") or _teacher_train_limit(shrunk.get("teacher"))
    for key in ("train", "distill", "finetune"):  # one optimizer step per training phase
        train = shrunk.get(key)
        if limit and isinstance(train, dict) and "batch_size" in train:
            train["epochs"] = train["batch_size"] / limit
    return shrunk


def _teacher_train_limit(teacher: str | None) -> int | None:
    """The training subset of a student stage that trains on its ``teacher`` stage's data (``<rep>/<stage>``)."""
    from acbench.config import load_replication

    if not isinstance(teacher, str) or "/" not in teacher:
        return None
    name, stage = teacher.split("/")
    return shrunk_paper_config(load_replication(name, validate_stages=False), stage).get("data", {}).get("train_limit")
