"""The solver: a BERT encoder and a Transformer decoder that writes the equation in prefix form.

Why seq2seq over prefix tokens rather than a GTS tree decoder: teacher forcing gives every output
step's distribution in one batched pass, which is what the output-distribution KD term needs, and
it runs unchanged under DDP. Prefix order is a tree walk, and decoding is constrained by the
grammar (an operator opens one more operand, an operand closes one), so every output is a
complete, well-formed expression. Numbers are copied by pointing: slot ``Ni`` is scored against,
and embedded from, the encoder state of the i-th number of the text (as GTS and ATHENA do).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from acbench.solver.examples import OutputVocab

NEG = -1e4  # logit of an impossible output (finite so that KL stays defined)


@dataclass
class SolverOutput:
    logits: torch.Tensor  # (batch, steps, vocab.size)


class MWPSolver(nn.Module):
    def __init__(self, encoder: nn.Module, vocab: OutputVocab, decoder_layers: int = 2, decoder_heads: int = 4,
                 max_steps: int = 24, dropout: float = 0.1):
        super().__init__()
        hidden = encoder.config.hidden_size
        self.encoder, self.vocab, self.max_steps = encoder, vocab, max_steps
        self.fixed_embedding = nn.Embedding(len(vocab.fixed) + 1, hidden)  # + go
        self.slot_embedding = nn.Linear(hidden, hidden)
        self.position = nn.Embedding(max_steps, hidden)
        layer = nn.TransformerDecoderLayer(hidden, decoder_heads, 2 * hidden, dropout, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, decoder_layers, norm=nn.LayerNorm(hidden))
        self.fixed_head = nn.Linear(hidden, len(vocab.fixed))
        self.slot_key = nn.Linear(hidden, hidden)

    def encode(self, batch: dict):
        """Encoder states and the states of the number slots. Attention maps are not returned: derive them
        from captured Q/K (:mod:`methods.attention_capture`), which are free of attention dropout."""
        states = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        index = batch["slot_positions"].unsqueeze(-1).expand(-1, -1, states.shape[-1])
        return states, torch.gather(states, 1, index)

    def _embed(self, tokens: torch.Tensor, slot_states: torch.Tensor) -> torch.Tensor:
        n_fixed = len(self.vocab.fixed)
        is_slot = (tokens >= n_fixed) & (tokens < self.vocab.size)
        fixed_ids = torch.where(tokens == self.vocab.go, n_fixed, tokens.clamp(max=n_fixed - 1))
        fixed = self.fixed_embedding(torch.where(is_slot, 0, fixed_ids))
        slot_ids = (tokens - n_fixed).clamp(0, slot_states.shape[1] - 1)
        slots = self.slot_embedding(torch.gather(slot_states, 1, slot_ids.unsqueeze(-1).expand(-1, -1, slot_states.shape[-1])))
        steps = torch.arange(tokens.shape[1], device=tokens.device)
        return torch.where(is_slot.unsqueeze(-1), slots, fixed) + self.position(steps)

    def _logits(self, decoder_input, states, slot_states, batch) -> torch.Tensor:
        steps = decoder_input.shape[1]
        causal = torch.triu(torch.full((steps, steps), float("-inf"), device=states.device), diagonal=1)
        h = self.decoder(self._embed(decoder_input, slot_states), states, tgt_mask=causal,
                         memory_key_padding_mask=batch["attention_mask"] == 0)
        fixed = self.fixed_head(h)
        slots = torch.einsum("bth,bsh->bts", h, self.slot_key(slot_states)) / math.sqrt(h.shape[-1])
        slots = slots.masked_fill(~batch["slot_mask"].unsqueeze(1), NEG)
        pad = self.vocab.max_slots - slots.shape[-1]
        if pad > 0:
            slots = torch.cat([slots, slots.new_full((*slots.shape[:2], pad), NEG)], dim=-1)
        return torch.cat([fixed, slots], dim=-1)

    def forward(self, batch: dict) -> SolverOutput:
        """Teacher-forced output logits for ``batch["decoder_input"]``."""
        states, slot_states = self.encode(batch)
        return SolverOutput(self._logits(batch["decoder_input"], states, slot_states, batch))

    @torch.no_grad()
    def decode(self, batch: dict) -> list[list[str]]:
        """Greedy, grammar-constrained decoding; every result is a complete prefix expression."""
        states, slot_states = self.encode(batch)
        size, vocab = states.shape[0], self.vocab
        tokens = torch.full((size, 1), vocab.go, dtype=torch.long, device=states.device)
        open_slots = torch.ones(size, dtype=torch.long, device=states.device)
        is_op = torch.tensor([vocab.is_operator(i) for i in range(vocab.size)], device=states.device)
        outputs: list[list[int]] = [[] for _ in range(size)]
        for step in range(self.max_steps):
            logits = self._logits(tokens, states, slot_states, batch)[:, -1]
            room = self.max_steps - step - 1  # steps left after this one
            op_allowed = (open_slots + 1) <= room
            logits = logits.masked_fill(is_op.unsqueeze(0) & ~op_allowed.unsqueeze(1), NEG * 10)
            choice = logits.argmax(-1)
            for i in range(size):
                if open_slots[i] > 0:
                    outputs[i].append(int(choice[i]))
            open_slots = torch.where(open_slots > 0, open_slots + torch.where(is_op[choice], 1, -1), open_slots)
            if (open_slots == 0).all():
                break
            tokens = torch.cat([tokens, choice.unsqueeze(1)], dim=1)
        return [[vocab.tokens[t] for t in out] for out in outputs]
