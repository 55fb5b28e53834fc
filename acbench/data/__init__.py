"""The dataset layer: declarations in ``datasets/*.yaml``, loaders in ``datasets/<name>.py``.

``load_split("math23k", "test")`` finds the files (``root`` argument, ``ACBENCH_DATA_ROOT``, or a
download into ``ACBENCH_CACHE_DIR``), verifies their checksums and returns the split.
"""
from acbench.data.declaration import Declaration, FileSpec, load_declaration
from acbench.data.errors import DataError
from acbench.data.loading import load_split, resolve_files
from acbench.data.registry import get_declaration, list_datasets
from acbench.data.types import MWPProblem

__all__ = [
    "DataError",
    "Declaration",
    "FileSpec",
    "MWPProblem",
    "get_declaration",
    "list_datasets",
    "load_declaration",
    "load_split",
    "resolve_files",
]
