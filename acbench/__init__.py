"""acbench: replication harness for attention-centric model compression (the engine package)."""
from acbench.compat import ensure_torchvision_importable

ensure_torchvision_importable()

__version__ = "0.1.0"
