"""Shared test set-up. Importing acbench first installs the torchvision shim (see acbench/compat.py)."""
import os

import acbench  # noqa: F401  (must precede any transformers/timm/torchvision import)

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
