"""A goal-driven tree-structured decoder (GTS; Xie & Sun, IJCAI 2019) over the solver's prefix outputs.

GTS writes the expression tree top-down in prefix order. Every node has a *goal* vector: the root's
comes from the problem encoding; an operator's left child gets a goal made from its parent's goal,
context and operator; its right child gets one made from the parent and the finished *left subtree's
embedding*; a finished operator node merges its operator and two subtree embeddings into one. Each
goal, with its attention context over the encoder states, scores the operators (a linear layer) and
the numbers: the learned constants and the text's number slots (their encoder states), by
``w·tanh(W[goal; context; number])``. What it adds to a sequence decoder is that structure: a right
operand is predicted from what its left operand computes, not from the token history.

The interface is :class:`acbench.solver.model.MWPSolver`'s: ``forward(batch)`` gives teacher-forced
logits over the same output vocabulary, one row per gold prefix step (so the task loss and the
output-distribution KD apply unchanged), and ``decode(batch)`` gives grammar-complete prefix
expressions. Written here because no maintained package ships GTS as a module: MWPToolkit and the
authors' code are research scripts tied to their own data pipelines and RNN encoders.
"""
from __future__ import annotations

import torch
from torch import nn

from acbench.solver.examples import OutputVocab
from acbench.solver.model import NEG, SolverOutput


class _Gate(nn.Module):
    """``sigmoid(W_g x) * tanh(W_t x)``: GTS's gated update, used for child goals and subtree merges."""

    def __init__(self, inputs: int, hidden: int, dropout: float):
        super().__init__()
        self.gate, self.value, self.drop = nn.Linear(inputs, hidden), nn.Linear(inputs, hidden), nn.Dropout(dropout)

    def forward(self, *parts: torch.Tensor) -> torch.Tensor:
        x = self.drop(torch.cat(parts, dim=-1))
        return torch.sigmoid(self.gate(x)) * torch.tanh(self.value(x))


class _Node:
    """An operator whose subtrees are being written: its goal, context and embedding, its left subtree."""

    __slots__ = ("goal", "context", "embedding", "left")

    def __init__(self, goal, context, embedding):
        self.goal, self.context, self.embedding, self.left = goal, context, embedding, None


class GTSSolver(nn.Module):
    def __init__(self, encoder: nn.Module, vocab: OutputVocab, max_steps: int = 24, dropout: float = 0.5):
        super().__init__()
        hidden = encoder.config.hidden_size
        self.encoder, self.vocab, self.max_steps = encoder, vocab, max_steps
        n_ops, n_const = len(vocab.fixed) - len(vocab.constants), len(vocab.constants)
        self.n_ops = n_ops
        self.drop = nn.Dropout(dropout)
        self.root = nn.Linear(hidden, hidden)
        self.attn_goal, self.attn_state = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden, bias=False)
        self.attn_score = nn.Linear(hidden, 1, bias=False)
        self.op_head = nn.Linear(2 * hidden, n_ops)
        self.constant_embedding = nn.Parameter(torch.randn(max(n_const, 1), hidden) * 0.02)
        self.score_query, self.score_number = nn.Linear(2 * hidden, hidden), nn.Linear(hidden, hidden, bias=False)
        self.score_out = nn.Linear(hidden, 1, bias=False)
        self.op_embedding = nn.Embedding(n_ops, hidden)
        self.left_goal = _Gate(3 * hidden, hidden, dropout)
        self.right_goal = _Gate(4 * hidden, hidden, dropout)
        self.merge = _Gate(3 * hidden, hidden, dropout)

    def encode(self, batch: dict):
        """Encoder states, the number slots' states and the root goals (masked mean of the states)."""
        states = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        index = batch["slot_positions"].unsqueeze(-1).expand(-1, -1, states.shape[-1])
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return states, torch.gather(states, 1, index), torch.tanh(self.root(self.drop(pooled)))

    def _context(self, goals, states, attention_mask):
        energy = self.attn_score(torch.tanh(self.attn_goal(goals).unsqueeze(1) + self.attn_state(states))).squeeze(-1)
        weights = torch.softmax(energy.masked_fill(attention_mask == 0, NEG), dim=-1)
        return torch.einsum("bl,blh->bh", weights, states)

    def _scores(self, goals, contexts, slot_states, slot_mask):
        """Logits over operators, constants and slots for ``goals`` (b, h) of the examples ``slot_states`` (b, s, h)."""
        query = self.drop(torch.cat([goals, contexts], dim=-1))
        ops = self.op_head(query)
        q = self.score_query(query).unsqueeze(1)
        n_const = len(self.vocab.constants)
        const = self.score_out(torch.tanh(q + self.score_number(self.drop(self.constant_embedding[:n_const])))).squeeze(-1)
        slots = self.score_out(torch.tanh(q + self.score_number(self.drop(slot_states))))
        slots = slots.squeeze(-1).masked_fill(~slot_mask, NEG)
        pad = self.vocab.max_slots - slots.shape[-1]
        if pad > 0:
            slots = torch.cat([slots, slots.new_full((slots.shape[0], pad), NEG)], dim=-1)
        return torch.cat([ops, const, slots], dim=-1)

    def _number_embedding(self, token: int, slot_states_i: torch.Tensor) -> torch.Tensor:
        n_fixed = len(self.vocab.fixed)
        if token < n_fixed:
            return self.constant_embedding[token - self.n_ops]
        return slot_states_i[token - n_fixed]

    def _step(self, token: int, stack: list[_Node], goal, context, slot_states_i):
        """Apply ``token`` at a node; the next node's goal, or None when the tree is complete."""
        if self.vocab.is_operator(token):
            embedding = self.op_embedding.weight[token]
            stack.append(_Node(goal, context, embedding))
            return self.left_goal(goal, context, embedding)
        subtree = self._number_embedding(token, slot_states_i)
        while stack:
            node = stack[-1]
            if node.left is None:
                node.left = subtree
                return self.right_goal(node.goal, node.context, node.embedding, subtree)
            stack.pop()
            subtree = self.merge(node.embedding, node.left, subtree)
        return None

    def _run(self, batch: dict, labels: torch.Tensor | None):
        """Walk the trees: gold prefix tokens (``labels``) or greedy, grammar-constrained choices."""
        states, slot_states, roots = self.encode(batch)
        size, mask, slot_mask = states.shape[0], batch["attention_mask"], batch["slot_mask"]
        steps = labels.shape[1] if labels is not None else self.max_steps
        goals: list = [roots[i] for i in range(size)]
        stacks: list[list[_Node]] = [[] for _ in range(size)]
        rows: list[torch.Tensor] = []
        outputs: list[list[int]] = [[] for _ in range(size)]
        is_op = torch.arange(self.vocab.size, device=states.device) < self.n_ops
        for step in range(steps):
            active = [i for i in range(size) if goals[i] is not None
                      and (labels is None or int(labels[i, step]) != -100)]
            if not active:
                break
            index = torch.tensor(active, device=states.device)
            goal = torch.stack([goals[i] for i in active])
            context = self._context(goal, states[index], mask[index])
            logits = self._scores(goal, context, slot_states[index], slot_mask[index])
            if labels is not None:
                row = logits.new_zeros(size, logits.shape[-1]).index_copy(0, index, logits)
                rows.append(row)
                tokens = [int(labels[i, step]) for i in active]
            else:
                room = self.max_steps - step - 1  # steps left after this one
                open_slots = torch.tensor([len(stacks[i]) + 1 - sum(n.left is not None for n in stacks[i])
                                           for i in active], device=states.device)
                blocked = is_op.unsqueeze(0) & ((open_slots + 1) > room).unsqueeze(1)
                tokens = logits.masked_fill(blocked, NEG * 10).argmax(-1).tolist()
            for j, (i, token) in enumerate(zip(active, tokens)):
                outputs[i].append(token)
                goals[i] = self._step(token, stacks[i], goal[j], context[j], slot_states[i])
        return rows, outputs

    def forward(self, batch: dict) -> SolverOutput:
        """Teacher-forced logits (batch, steps, vocab.size) along the gold prefix ``batch["labels"]``;
        rows past an example's end are zeros (their labels are -100)."""
        labels = batch["labels"]
        rows, _ = self._run(batch, labels)
        logits = torch.stack(rows, dim=1)
        if logits.shape[1] < labels.shape[1]:
            logits = torch.cat([logits, logits.new_zeros(labels.shape[0], labels.shape[1] - logits.shape[1],
                                                         logits.shape[-1])], dim=1)
        return SolverOutput(logits)

    @torch.no_grad()
    def decode(self, batch: dict) -> list[list[str]]:
        """Greedy decoding; operators are barred once the steps left could not close the tree."""
        _, outputs = self._run(batch, None)
        return [[self.vocab.tokens[t] for t in out] for out in outputs]
