"""The math word-problem solver: an attention encoder plus a prefix-expression decoder over number slots."""
