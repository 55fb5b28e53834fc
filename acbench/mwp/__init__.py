"""Math-word-problem expression tools: number finding and masking, infix/prefix notation,
exact evaluation, answer parsing and checking, and the gold-equation audit."""
