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
"""
from __future__ import annotations

import importlib.util
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
    import torch

    _library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS.values():
        _library.define(schema)
    return True
