"""Exception types of the MWP expression tools."""


class ExpressionError(ValueError):
    """An expression is malformed or cannot be evaluated (division by zero, bad exponent, ...)."""


class LiteralError(ExpressionError):
    """A string is not one numeric literal."""
