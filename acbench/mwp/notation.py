"""Infix/prefix notation: tokenizer, parser, and conversion with minimal parentheses.

Tokens: operators ``+ - * / ^`` (``**`` is read as ``^``), parentheses (``[ ]`` are read as
``( )``), slot tokens ``N0``, ``N1``, ... and unsigned number literals (see
``acbench.mwp.literals``: ``12``, ``3.5``, ``20%``, fraction ``(1/6)``, mixed number ``3(1/2)``).
Constants are plain number literals such as ``3.14``.

Unary minus is written ``-`` in infix and ``neg`` in prefix. Precedence, lowest first:
``+ -`` (left-assoc.), ``* /`` (left-assoc.), unary minus, ``^`` (right-assoc.), so ``-2^2 = -4``
and ``2^-1 = 1/2``. Trees are nested tuples: a leaf is its token, ``("neg", x)`` or ``(op, a, b)``.
"""
from __future__ import annotations

import re
from typing import Sequence, Union

from acbench.mwp.errors import ExpressionError

BINARY_OPS = ("+", "-", "*", "/", "^")
NEG = "neg"
PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, NEG: 3, "^": 4}

Tree = Union[str, tuple]

_TOKEN_RE = re.compile(
    r"\s*(?:"
    r"(?P<slot>N\d+)"
    r"|(?P<num>\d+\(\d+/\d+\)|\(\d+/\d+\)|\d+(?:\.\d+)?[%％]?)"
    r"|(?P<op>\*\*|[-+*/^()\[\]])"
    r")"
)
_SLOT_RE = re.compile(r"N(\d+)")


def tokenize(expression: str) -> list[str]:
    """Split an infix expression into tokens; raises ``ExpressionError`` on other characters."""
    tokens, pos, end = [], 0, len(expression.rstrip())
    while pos < end:
        m = _TOKEN_RE.match(expression, pos)
        if not m or m.end() == pos:
            raise ExpressionError(f"unexpected character {expression[pos:pos + 1]!r} at {pos} in {expression!r}")
        tok = m.group("slot") or m.group("num") or {"**": "^", "[": "(", "]": ")"}.get(m.group("op"), m.group("op"))
        tokens.append(tok)
        pos = m.end()
    return tokens


def expression_of(equation: str) -> str:
    """The expression side of an equation: ``"x=(11-1)*2" -> "(11-1)*2"``, ``"5+7=12" -> "5+7"``."""
    eq = equation.strip()
    if "=" not in eq:
        return eq
    left, right = eq.split("=", 1)
    if left.strip().lower() == "x":
        return right.strip()
    return left.strip()


def slot_index(token: str) -> int | None:
    """``"N3" -> 3``; ``None`` for other tokens."""
    m = _SLOT_RE.fullmatch(token)
    return int(m.group(1)) if m else None


def is_operand(token: str) -> bool:
    """True for slot and number-literal tokens."""
    return token not in PRECEDENCE and token not in ("(", ")")


class _Parser:
    def __init__(self, tokens: Sequence[str]):
        self.tokens, self.pos = list(tokens), 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise ExpressionError("unexpected end of expression")
        self.pos += 1
        return tok

    def expr(self) -> Tree:
        node = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            node = (op, node, self.term())
        return node

    def term(self) -> Tree:
        node = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()
            node = (op, node, self.unary())
        return node

    def unary(self) -> Tree:
        if self.peek() == "-":
            self.take()
            return (NEG, self.unary())
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self) -> Tree:
        base = self.atom()
        if self.peek() == "^":
            self.take()
            return ("^", base, self.unary())
        return base

    def atom(self) -> Tree:
        tok = self.take()
        if tok == "(":
            node = self.expr()
            closing = self.peek()
            if closing != ")":
                found = "end of expression" if closing is None else repr(closing)
                raise ExpressionError(f"expected ')' at token {self.pos}, found {found}")
            self.take()
            return node
        if not is_operand(tok):
            raise ExpressionError(f"unexpected token {tok!r} at token {self.pos - 1}")
        return tok


def parse_infix(expression: str | Sequence[str]) -> Tree:
    """Parse an infix string or token list into a tree."""
    tokens = tokenize(expression) if isinstance(expression, str) else list(expression)
    if not tokens:
        raise ExpressionError("empty expression")
    parser = _Parser(tokens)
    try:
        tree = parser.expr()
    except RecursionError:
        raise ExpressionError("expression nested too deeply") from None
    if parser.peek() is not None:
        raise ExpressionError(f"unexpected token {parser.peek()!r} at token {parser.pos}")
    return tree


def parse_prefix(tokens: Sequence[str]) -> Tree:
    """Parse a prefix token list (operators + - * / ^ and ``neg``) into a tree."""
    stack: list[Tree] = []
    for tok in reversed(list(tokens)):
        if tok in BINARY_OPS:
            if len(stack) < 2:
                raise ExpressionError(f"operator {tok!r} lacks operands")
            left, right = stack.pop(), stack.pop()
            stack.append((tok, left, right))
        elif tok == NEG:
            if not stack:
                raise ExpressionError("'neg' lacks an operand")
            stack.append((NEG, stack.pop()))
        elif tok in ("(", ")"):
            raise ExpressionError("parentheses in a prefix expression")
        else:
            stack.append(tok)
    if len(stack) != 1:
        raise ExpressionError(f"prefix expression leaves {len(stack)} operands" if stack else "empty expression")
    return stack[0]


def tree_to_prefix(tree: Tree) -> list[str]:
    """Prefix token list of a tree."""
    out, pending = [], [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, str):
            out.append(node)
        else:
            out.append(node[0])
            pending.extend(reversed(node[1:]))
    return out


def _prec(node: Tree) -> int:
    return 99 if isinstance(node, str) else PRECEDENCE[node[0]]


def tree_to_infix(tree: Tree) -> list[str]:
    """Infix tokens with the fewest parentheses that re-parse to the same tree.

    A negation that is the right operand of a binary operator, or the base of ``^``, is
    parenthesised for readability: ``a*(-b)``, ``(-a)^2``.
    """
    if isinstance(tree, str):
        return [tree]
    if tree[0] == NEG:
        child = tree[1]
        inner = tree_to_infix(child)
        wrap = _prec(child) < PRECEDENCE["^"] and not isinstance(child, str)
        return ["-"] + (["("] + inner + [")"] if wrap else inner)
    op, left, right = tree
    p = PRECEDENCE[op]
    lp, rp = _prec(left), _prec(right)
    wrap_left = lp < p or (op == "^" and lp <= p)
    right_neg = isinstance(right, tuple) and right[0] == NEG
    wrap_right = rp < p or (rp == p and op != "^") or right_neg
    lt, rt = tree_to_infix(left), tree_to_infix(right)
    return (["("] + lt + [")"] if wrap_left else lt) + [op] + (["("] + rt + [")"] if wrap_right else rt)


def infix_to_prefix(tokens: str | Sequence[str]) -> list[str]:
    """Infix (string or tokens) -> prefix tokens; unary minus becomes ``neg``."""
    return tree_to_prefix(parse_infix(tokens))


def prefix_to_infix(tokens: Sequence[str]) -> list[str]:
    """Prefix tokens -> infix tokens with minimal parentheses (join with ``""`` for a string)."""
    return tree_to_infix(parse_prefix(tokens))
