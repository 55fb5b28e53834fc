"""Saving a trained solver (safetensors + JSON + digest manifest) and loading it back, verified, with its
tokenizer and data setup."""
from __future__ import annotations

from pathlib import Path

import torch

from acbench.errors import StageInputMissing
from acbench.safe_io import load_folder_json, load_folder_tensors, save_folder, verify_folder

from acbench.solver.encoders import EncoderSpec, build_encoder
from acbench.solver.examples import OutputVocab
from acbench.solver.model import MWPSolver
from acbench.solver.tokenizers import tokenizer_from_json

WEIGHTS, META = "solver.safetensors", "solver.json"


def build_solver(meta: dict, tokenizer) -> MWPSolver:
    vocab = OutputVocab(tuple(meta["constants"]), meta["max_slots"])
    encoder = build_encoder(EncoderSpec(**meta["encoder"]), tokenizer.vocab_size, getattr(tokenizer, "kept", None))
    d = meta["decoder"]
    return MWPSolver(encoder, vocab, d["layers"], d["heads"], d["max_steps"], d["dropout"])


def save_solver(folder: Path, model: MWPSolver, meta: dict) -> None:
    save_folder(folder, {WEIGHTS: model.state_dict()}, {META: meta})


def load_solver(folder: Path) -> tuple[MWPSolver, object, dict]:
    """(model in eval mode, tokenizer, meta) of a solver saved by :func:`save_solver`."""
    folder = Path(folder)
    if not (folder / META).is_file():
        raise StageInputMissing(f"no trained solver in {folder} (missing {META})", "run the teacher stage first")
    fix = f"delete {folder} and re-run the teacher stage that trained it"
    verify_folder(folder, fix)
    meta = load_folder_json(folder, META, fix)
    tokenizer = tokenizer_from_json(meta["tokenizer"])
    model = build_solver(meta, tokenizer)
    model.load_state_dict(load_folder_tensors(folder, WEIGHTS, fix))
    return model.eval(), tokenizer, meta


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
