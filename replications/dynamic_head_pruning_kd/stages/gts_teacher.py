"""Teacher variant "gts": the MWP teacher of ``mwp.teacher`` with a GTS tree decoder in place of the
sequence decoder (README, "Teacher variant: gts"; :mod:`acbench.solver.gts`).

Everything but the decoder is ``mwp.teacher``'s (data, tokenizer, encoder, schedule, validation
selection, records): this stage runs that experiment with its solver builder swapped for one that
builds :class:`~acbench.solver.gts.GTSSolver`. Why a swap rather than a ``kind`` in
:func:`acbench.solver.io.build_solver`: that function is code of every solver stage, so changing it
re-keys all of them (and their committed results) for a variant none of them uses. It learns the kind
when downstream stages switch to a GTS teacher, which re-runs them anyway.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import Field

from acbench.config import Strict
from acbench.experiments.mwp import teacher as base
from acbench.solver.encoders import EncoderSpec, build_encoder
from acbench.solver.examples import OutputVocab
from acbench.solver.gts import GTSSolver

CHECKPOINTS = base.CHECKPOINTS
ITEMS = base.ITEMS


class GTSDecoderSettings(Strict):
    kind: Literal["gts"] = "gts"
    max_steps: int = Field(24, ge=2)
    dropout: float = Field(0.5, ge=0, lt=1, description="GTS's own value (its official code)")


class Config(base.Config):
    decoder: GTSDecoderSettings = GTSDecoderSettings()


def build_gts_solver(meta: dict, tokenizer) -> GTSSolver:
    """The solver of a ``solver.json`` whose decoder is ``{kind: gts, ...}``."""
    decoder = GTSDecoderSettings(**meta["decoder"])
    vocab = OutputVocab(tuple(meta["constants"]), meta["max_slots"])
    encoder = build_encoder(EncoderSpec(**meta["encoder"]), tokenizer.vocab_size, getattr(tokenizer, "kept", None))
    return GTSSolver(encoder, vocab, decoder.max_steps, decoder.dropout)


@contextmanager
def _gts_builder():
    previous = base.build_solver
    base.build_solver = build_gts_solver
    try:
        yield
    finally:
        base.build_solver = previous


def run(config: Config, out_dir: Path) -> dict[str, float]:
    with _gts_builder():
        return base.run(config, out_dir)
