"""Commands that need no model do not import torch (what made `acbench list` and `check` take 6-8 s).
The import, not a stopwatch, is asserted; `time python -m acbench list` measures it."""
from __future__ import annotations

import subprocess
import sys

import pytest

CODE = """
import sys
from acbench.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "transformers", "safetensors.torch") if m in sys.modules)
print("HEAVY", heavy)
"""


@pytest.mark.parametrize("argv", [["list"], ["check", "--profile", "smoke"], ["data", "verify"], ["--help"],
                                  ["data", "list"]])
def test_no_torch_import(argv):
    proc = subprocess.run([sys.executable, "-c", CODE.format(argv=argv)], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in proc.stdout, proc.stdout[-500:] + proc.stderr[-1500:]
