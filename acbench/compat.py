"""Make torchvision importable next to the CPU-only torch wheel.

torchvision 0.28.0 is the only release built for torch 2.13.0 and its PyPI wheel is a CUDA build.
With the CPU torch its C++ extension cannot load, and ``import torchvision`` then dies in
``torchvision/_meta_registrations.py``, which registers fake kernels for ``torchvision::nms`` and
``torchvision::qnms`` without checking that those operators exist. timm imports torchvision, and so
does transformers' model loading, so both would fail too.

``ensure_torchvision_importable()`` defines the two operator schemas, only when the native extension
is missing, before torchvision is first imported. Where the extension loads (a matching CUDA torch)
it does nothing. The C++-only ops (``torchvision.io`` decoding, ``roi_pool``, ``deform_conv2d``) stay
unavailable: decode images with Pillow.

``install_import_hooks()`` (called by ``import acbench``) applies that patch lazily, when torchvision
is first imported, so a process that never touches torch (summaries, the report) does not pay for
importing it. The same hook keeps transformers from importing scikit-learn: transformers' generation
code imports ``sklearn.metrics`` at load time (about 1.5 s here) only for assisted decoding, which
nothing in acbench uses; the pipeline's many short stages each paid that. Set
``ACBENCH_TRANSFORMERS_SKLEARN=1`` to leave transformers' own check alone.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_library = None  # keeps the torch.library.Library alive for the whole process


def _native_extension_loads() -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # torchvision absent: nothing to patch
    import glob
    import os

    import torch

    for folder in spec.submodule_search_locations:
        for lib in glob.glob(os.path.join(folder, "_C*.so")):
            try:
                torch.ops.load_library(lib)
                return True
            except (OSError, RuntimeError):
                return False
    return False


def ensure_torchvision_importable() -> bool:
    """Define the missing schemas if needed. Returns True when a patch was applied."""
    global _library
    if "torchvision" in sys.modules or _library is not None:
        return False
    if _native_extension_loads():
        return False
    if _library is not None:  # the lookup above reached the import hook, which patched already
        return False
    import torch

    _library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS.values():
        _library.define(schema)
    return True


def hide_sklearn_from_transformers() -> bool:
    """Mark scikit-learn unavailable to transformers (see the module docstring). True when applied."""
    if os.environ.get("ACBENCH_TRANSFORMERS_SKLEARN") == "1":
        return False
    import_utils = sys.modules.get("transformers.utils.import_utils")
    if import_utils is None or not hasattr(import_utils, "_sklearn_available"):
        return False
    import_utils._sklearn_available = False
    return True


class _LazyPatches(importlib.abc.MetaPathFinder):
    """Applies the patches just before the module they concern is imported; finds nothing itself."""

    def __init__(self):
        self._busy = False

    def find_spec(self, name, path=None, target=None):
        if self._busy or name not in ("torchvision", "transformers.generation"):
            return None
        self._busy = True  # ensure_torchvision_importable looks torchvision up itself
        try:
            if name == "torchvision":
                ensure_torchvision_importable()
            else:
                hide_sklearn_from_transformers()
        finally:
            self._busy = False
        return None


def install_import_hooks() -> None:
    """Install the lazy patches once; patch at once what is already imported."""
    if any(isinstance(finder, _LazyPatches) for finder in sys.meta_path):
        return
    if "torchvision" not in sys.modules and "torch" in sys.modules:
        ensure_torchvision_importable()  # cheap now; keeps the old eager behaviour when torch is loaded
    sys.meta_path.insert(0, _LazyPatches())
