"""Saving a trained solver (safetensors + JSON) and loading it back with its tokenizer and data setup."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from acbench.solver.encoders import EncoderSpec, build_encoder
from acbench.solver.examples import OutputVocab
from acbench.solver.model import MWPSolver
from acbench.solver.tokenizers import tokenizer_from_json

WEIGHTS, META = "solver.safetensors", "solver.json"


def build_solver(meta: dict, tokenizer) -> MWPSolver:
    vocab = OutputVocab(tuple(meta["constants"]), meta["max_slots"])
    encoder = build_encoder(EncoderSpec(**meta["encoder"]), tokenizer.vocab_size)
    d = meta["decoder"]
    return MWPSolver(encoder, vocab, d["layers"], d["heads"], d["max_steps"], d["dropout"])


def save_solver(folder: Path, model: MWPSolver, meta: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, folder / WEIGHTS)
    (folder / META).write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")


def load_solver(folder: Path) -> tuple[MWPSolver, object, dict]:
    """(model in eval mode, tokenizer, meta) of a solver saved by :func:`save_solver`."""
    folder = Path(folder)
    if not (folder / META).is_file():
        raise FileNotFoundError(f"no trained solver in {folder} (missing {META}): run the teacher stage first")
    meta = json.loads((folder / META).read_text(encoding="utf-8"))
    tokenizer = tokenizer_from_json(meta["tokenizer"])
    model = build_solver(meta, tokenizer)
    model.load_state_dict(load_file(folder / WEIGHTS))
    return model.eval(), tokenizer, meta


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
