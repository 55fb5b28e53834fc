"""Training and decoder settings of the MWP solver, shared by every stage that trains one."""
from __future__ import annotations

from pydantic import Field

from acbench.config import Strict
from acbench.training import TrainSettings


class SolverTrainSettings(TrainSettings):
    decoder_lr: float | None = Field(None, gt=0, description="learning rate of everything but the encoder "
                                     "(default: lr)")


class DecoderSettings(Strict):
    layers: int = Field(2, ge=1)
    heads: int = Field(4, ge=1)
    max_steps: int = Field(24, ge=2)
    dropout: float = Field(0.1, ge=0, lt=1)


def param_groups(model, settings: SolverTrainSettings) -> list[dict]:
    encoder = [p for p in model.encoder.parameters()]
    ids = {id(p) for p in encoder}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return [{"params": encoder, "lr": settings.lr}, {"params": rest, "lr": settings.decoder_lr or settings.lr}]
