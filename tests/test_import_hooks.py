"""The import hooks of acbench.compat: torchvision loads, transformers skips scikit-learn, torch stays lazy."""
import subprocess
import sys

import pytest


def _run(code: str, **env) -> str:
    import os

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, **env})
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def test_import_acbench_does_not_import_torch():
    assert _run("import sys, acbench; print('torch' in sys.modules)") == "False"


@pytest.mark.slow
def test_bert_loads_without_sklearn_and_torchvision_works():
    out = _run("import sys, acbench, torch\n"
               "from transformers import BertModel\n"
               "import torchvision\n"
               "print('sklearn' in sys.modules, 'torchvision' in sys.modules)")
    assert out == "False True"


@pytest.mark.slow
def test_sklearn_hiding_can_be_switched_off():
    code = ("import sys, acbench\nfrom transformers import BertModel\n"
            "from transformers.utils import is_sklearn_available\nprint(is_sklearn_available())")
    assert _run(code, ACBENCH_TRANSFORMERS_SKLEARN="1") == "True"
    assert _run(code) == "False"
