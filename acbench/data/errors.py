"""The one exception type of the dataset layer, and how it shows paths."""
from __future__ import annotations

from pathlib import Path

from acbench import paths
from acbench.errors import AcbenchError

ENV_ROOT = "ACBENCH_DATA_ROOT"
ENV_CACHE = "ACBENCH_CACHE_DIR"
MIRROR_HINT = (
    f"set {ENV_ROOT} (or pass root=...) to a directory laid out like the data mirror, "
    "<root>/<folder>/<file> (see datasets/README.md)"
)


class DataError(AcbenchError):
    """A dataset file is missing, corrupt or malformed, or a declaration is invalid.

    Every message names the file concerned and says how to fix the problem.
    """


def show(path: Path | str) -> str:
    """``path`` relative to the repository root when it lies inside it, else absolute."""
    p = Path(path)
    try:
        return p.resolve().relative_to(paths.repo_root()).as_posix()
    except ValueError:
        return str(p)
