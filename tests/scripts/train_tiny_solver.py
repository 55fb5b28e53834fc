"""Train a tiny solver for the trainer tests; run directly or under torchrun.

usage: train_tiny_solver.py CHECKPOINT_DIR RESULT_JSON [--nan-at STEP]
Writes (rank 0) the final loss history and a checksum of the weights to RESULT_JSON.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

import acbench  # noqa: E402,F401
from acbench.solver.encoders import EncoderSpec, build_encoder  # noqa: E402
from acbench.solver.examples import Example, OutputVocab, collate  # noqa: E402
from acbench.solver.losses import task_loss  # noqa: E402
from acbench.solver.model import MWPSolver  # noqa: E402
from acbench.training import TrainSettings, distributed_context, train  # noqa: E402


def tiny_examples(n: int = 24) -> list[Example]:
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        length = 6 + i % 5
        ids = (torch.randint(5, 40, (length,), generator=g)).tolist()
        out.append(Example(str(i), ids, [1, 3], [2, 3], [i % 4, 5 + i % 2, 6 - i % 2], "0"))
    return out


def main() -> None:
    ckpt, result = Path(sys.argv[1]), Path(sys.argv[2])
    nan_at = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--nan-at" else None
    torch.set_num_threads(1)
    ctx = distributed_context()
    vocab = OutputVocab(("1",), 2)
    torch.manual_seed(0)
    spec = EncoderSpec(kind="scratch", num_layers=1, num_heads=2, hidden=16, intermediate=32, dropout=0.0)
    model = MWPSolver(build_encoder(spec, 40), vocab, decoder_layers=1, decoder_heads=2, max_steps=8, dropout=0.0)
    settings = TrainSettings(epochs=3, batch_size=8, lr=1e-2, checkpoint_every=2, warmup_ratio=0.2)

    def loss_fn(module, batch, step):
        loss = task_loss(module(batch).logits, batch["labels"])
        if nan_at is not None and step + 1 == nan_at:
            loss = loss * float("nan")
        return loss, {}

    out = train(model, tiny_examples(), lambda b: collate(b, vocab), loss_fn, settings, ckpt, ctx, desc="tiny")
    if ctx.is_main:
        weights = {k: v.double().sum().item() for k, v in model.state_dict().items()}
        result.write_text(json.dumps({"losses": out.losses, "weights": weights, "resumed_from": out.resumed_from}))


if __name__ == "__main__":
    main()
